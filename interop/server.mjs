// An independent, standards-compliant authorization server for jwkctl's
// interop test: panva/oidc-provider with client_credentials,
// private_key_jwt and DPoP. Loopback only; development use only.
//
//   node server.mjs PORT CLIENT_ID PUBLIC_JWKS_FILE SCOPE
import fs from 'node:fs';
import Provider from 'oidc-provider';

const [port, clientId, jwksFile, scope] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const jwks = JSON.parse(fs.readFileSync(jwksFile, 'utf8'));

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    token_endpoint_auth_method: 'private_key_jwt',
    jwks,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    scope,
  }],
  scopes: [scope],
  features: {
    clientCredentials: { enabled: true },
    dPoP: { enabled: true, nonceSecret: Buffer.alloc(32, 7), requireNonce: () => true },
    devInteractions: { enabled: false },
  },
  enabledJWA: {
    clientAuthSigningAlgValues: ['PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512'],
    dPoPSigningAlgValues: ['PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512'],
  },
});
provider.on('grant.error', (ctx, err) => console.error('grant.error', err.error, err.error_description));
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));
