package azurekv

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/loopback"
	"github.com/jwkctl/jwkctl/keystore"
)

func init() { keystore.Register(New()) }

// Client is the part of the Key Vault keys API jwkctl uses; *azkeys.Client
// satisfies it.
type Client interface {
	CreateKey(ctx context.Context, name string, p azkeys.CreateKeyParameters, o *azkeys.CreateKeyOptions) (azkeys.CreateKeyResponse, error)
	GetKey(ctx context.Context, name, version string, o *azkeys.GetKeyOptions) (azkeys.GetKeyResponse, error)
	Sign(ctx context.Context, name, version string, p azkeys.SignParameters, o *azkeys.SignOptions) (azkeys.SignResponse, error)
	UpdateKey(ctx context.Context, name, version string, p azkeys.UpdateKeyParameters, o *azkeys.UpdateKeyOptions) (azkeys.UpdateKeyResponse, error)
	DeleteKey(ctx context.Context, name string, o *azkeys.DeleteKeyOptions) (azkeys.DeleteKeyResponse, error)
	NewListKeyPropertiesPager(o *azkeys.ListKeyPropertiesOptions) *runtime.Pager[azkeys.ListKeyPropertiesResponse]
	NewListKeyPropertiesVersionsPager(name string, o *azkeys.ListKeyPropertiesVersionsOptions) *runtime.Pager[azkeys.ListKeyPropertiesVersionsResponse]
}

// LoopbackToken is the bearer token sent to a loopback endpoint override
// (a test fake) instead of a real Entra ID token, so no real token ever
// reaches it.
const LoopbackToken = "jwkctl-loopback-test-token"

// SignTimeout bounds one Sign call, retries of throttled requests included
// (crypto.Signer has no context).
var SignTimeout = 30 * time.Second

// Backend talks to Key Vault and Managed HSM, one client per vault. The
// SDK client and the credential are built when a key is first used, so a
// command that uses no azurekv: key pays nothing for them.
type Backend struct {
	mu      sync.Mutex
	clients map[string]Client
	cred    azcore.TokenCredential
	// HTTPClient carries every request when set (tests: one that trusts
	// the fake's CA). Nil is the SDK's default transport.
	HTTPClient *http.Client
	// Credential makes the credential for real vaults; nil means
	// DefaultAzureCredential. It is called at most once.
	Credential func() (azcore.TokenCredential, error)
}

var (
	_ keystore.Backend         = (*Backend)(nil)
	_ keystore.Lister          = (*Backend)(nil)
	_ keystore.Deleter         = (*Backend)(nil)
	_ keystore.Disabler        = (*Backend)(nil)
	_ keystore.GenerateChecker = (*Backend)(nil)
)

// New returns a Backend with DefaultAzureCredential and the SDK's
// transport.
func New() *Backend { return &Backend{clients: map[string]Client{}} }

// Scheme is "azurekv".
func (b *Backend) Scheme() string { return keystore.SchemeAzureKV }

// vault is where a key's requests go and what answers must name.
type vault struct {
	n        *keystore.AzureKVName
	url      string // https://host or the endpoint override
	host     string // host[:port] of url: answers' kids must name it
	hsm      bool   // a Managed HSM: keys are always HSM keys
	override bool
	c        Client
	timeout  time.Duration // bounds one Sign (Options.KMSTimeout), 0: SignTimeout
}

func azName(u *keystore.URI) (*keystore.AzureKVName, error) {
	if u == nil || u.Scheme != keystore.SchemeAzureKV || u.AzureKV == nil {
		return nil, fmt.Errorf("%w: want an azurekv:// URI", keystore.ErrBadURI)
	}
	return u.AzureKV, nil
}

// open resolves the URI's vault, refusing a host that is not a vault
// unless an endpoint override is set, and returns its client.
func (b *Backend) open(u *keystore.URI, opts keystore.Options) (*vault, error) {
	n, err := azName(u)
	if err != nil {
		return nil, err
	}
	v := &vault{n: n, hsm: n.Kind() == "managedhsm", timeout: opts.KMSTimeout}
	if opts.Endpoint == "" {
		if n.Kind() == "" {
			return nil, fmt.Errorf("%w: %q is not a Key Vault host (NAME.vault.azure.net) or Managed HSM host (NAME.managedhsm.azure.net)", keystore.ErrBadURI, n.Host)
		}
		v.url, v.host = "https://"+n.Host, n.Host
	} else {
		ep := opts.Endpoint
		if !strings.Contains(ep, "://") {
			ep = "https://" + ep
		}
		e, err := url.Parse(ep)
		if err != nil || e.Scheme != "https" || !loopback.HostPort(e.Host) || (e.Path != "" && e.Path != "/") || e.RawQuery != "" || e.User != nil {
			return nil, fmt.Errorf("azurekv: endpoint %q: only a loopback https address (a test fake, e.g. https://127.0.0.1:8443) may stand in for a vault", opts.Endpoint)
		}
		v.url, v.host, v.override = "https://"+e.Host, e.Host, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[v.url]; ok {
		v.c = c
		return v, nil
	}
	var cred azcore.TokenCredential = staticToken{}
	if !v.override {
		if b.cred == nil {
			newCred := b.Credential
			if newCred == nil {
				newCred = defaultCredential
			}
			c, err := newCred()
			if err != nil {
				return nil, fmt.Errorf("%w: azurekv: Azure credentials: %s", keystore.ErrPermission, oneLine(err.Error()))
			}
			b.cred = chainCredential{c}
		}
		cred = b.cred
	}
	co := &azkeys.ClientOptions{
		// The fake's challenge names vault.azure.net, not the loopback host.
		DisableChallengeResourceVerification: v.override,
	}
	co.Retry.MaxRetries = maxRetries
	if b.HTTPClient != nil {
		co.Transport = b.HTTPClient
	}
	c, err := azkeys.NewClient(v.url, cred, co)
	if err != nil {
		return nil, fmt.Errorf("azurekv: client for %s: %v", v.url, err)
	}
	b.clients[v.url] = c
	v.c = c
	return v, nil
}

// Reset forgets the clients and the credential (tests that change the
// transport or credential between runs).
func (b *Backend) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clients, b.cred = map[string]Client{}, nil
}

// staticToken is the credential for a loopback endpoint override.
type staticToken struct{}

func (staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: LoopbackToken, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// kidOf checks that an answer's kid is the key asked about, at the vault
// asked, and returns its version. want is "" to accept any version.
func (v *vault) kidOf(kid *azkeys.ID, name, want string) (string, error) {
	if kid == nil {
		return "", fmt.Errorf("azurekv: the answer about %s names no key (no kid)", v.keyURI(name, want))
	}
	u, err := url.Parse(string(*kid))
	parts := []string{}
	if err == nil {
		parts = strings.Split(strings.Trim(u.Path, "/"), "/")
	}
	if err != nil || !strings.EqualFold(u.Host, v.host) || len(parts) < 2 || len(parts) > 3 || parts[0] != "keys" ||
		!strings.EqualFold(parts[1], name) || (want != "" && (len(parts) != 3 || !strings.EqualFold(parts[2], want))) {
		return "", fmt.Errorf("azurekv: asked about %s, the vault answered about %q; refusing an answer about another key", v.keyURI(name, want), string(*kid))
	}
	if len(parts) == 3 {
		return parts[2], nil
	}
	return "", nil
}

func (v *vault) keyURI(name, version string) string {
	n := keystore.AzureKVName{Host: v.n.Host, Key: name, Version: version}
	return n.String()
}

func (v *vault) uriOf(name, version string) *keystore.URI {
	return &keystore.URI{Scheme: keystore.SchemeAzureKV, AzureKV: &keystore.AzureKVName{Host: v.n.Host, Key: name, Version: version}}
}

// Open fetches the key's public half once (GetKey) and pins its version: a
// URI without a version means the key's current version, and signatures
// are made with that same version, so they always match the public key.
func (b *Backend) Open(ctx context.Context, u *keystore.URI, opts keystore.Options) (keystore.Key, error) {
	v, err := b.open(u, opts)
	if err != nil {
		return nil, err
	}
	if v.n.Key == "" {
		return nil, fmt.Errorf("%w: name a key: %s/NAME", keystore.ErrBadURI, v.n.KeyURI())
	}
	return v.openKey(ctx, v.n.Key, v.n.Version)
}

func (v *vault) openKey(ctx context.Context, name, version string) (*Key, error) {
	resp, err := v.c.GetKey(ctx, name, version, nil)
	if err != nil {
		return nil, v.mapErr(err, "read", name, version, opRead)
	}
	return v.keyFrom(resp.KeyBundle, name, version)
}

func (v *vault) keyFrom(kb azkeys.KeyBundle, name, version string) (*Key, error) {
	if kb.Key == nil {
		return nil, fmt.Errorf("azurekv: the vault's answer about %s has no key", v.keyURI(name, version))
	}
	ver, err := v.kidOf(kb.Key.KID, name, version)
	if err != nil {
		return nil, err
	}
	if ver == "" {
		return nil, fmt.Errorf("azurekv: the vault's answer about %s names no version", v.keyURI(name, version))
	}
	pub, err := publicKey(kb.Key)
	if err != nil {
		return nil, fmt.Errorf("azurekv: %s: %w", v.keyURI(name, ver), err)
	}
	if !slices.ContainsFunc(kb.Key.KeyOps, func(op *azkeys.KeyOperation) bool { return op != nil && *op == azkeys.KeyOperationSign }) {
		return nil, fmt.Errorf("azurekv: %s may not sign (its key_ops are %s); create a signing key with jwkctl keys generate", v.keyURI(name, ver), opsString(kb.Key.KeyOps))
	}
	if kb.Attributes != nil && kb.Attributes.Enabled != nil && !*kb.Attributes.Enabled {
		return nil, fmt.Errorf("azurekv: %s is disabled (jwkctl keys enable --key %s switches it back on)", v.keyURI(name, ver), v.keyURI(name, ver))
	}
	k := &Key{v: v, name: name, version: ver, uri: v.uriOf(name, ver), pub: pub}
	if a := kb.Tags[tagAlg]; a != nil {
		if alg := jose.SignatureAlgorithm(*a); slices.Contains(algsFor(pub), alg) {
			k.alg = alg
		}
	}
	return k, nil
}

func opsString(ops []*azkeys.KeyOperation) string {
	var s []string
	for _, op := range ops {
		if op != nil {
			s = append(s, string(*op))
		}
	}
	if len(s) == 0 {
		return "empty"
	}
	return strings.Join(s, ", ")
}

// publicKey turns Key Vault's JWK into a Go public key, checked with the
// rules every backend follows.
func publicKey(j *azkeys.JSONWebKey) (crypto.PublicKey, error) {
	if j.Kty == nil {
		return nil, errors.New("the key has no kty")
	}
	var pub crypto.PublicKey
	switch *j.Kty {
	case azkeys.KeyTypeRSA, azkeys.KeyTypeRSAHSM:
		e := new(big.Int).SetBytes(j.E)
		if len(j.N) == 0 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
			return nil, errors.New("the RSA key has no valid modulus or exponent")
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(j.N), E: int(e.Int64())}
	case azkeys.KeyTypeEC, azkeys.KeyTypeECHSM:
		if j.Crv == nil {
			return nil, errors.New("the EC key names no curve")
		}
		curve := map[azkeys.CurveName]elliptic.Curve{azkeys.CurveNameP256: elliptic.P256(), azkeys.CurveNameP384: elliptic.P384(), azkeys.CurveNameP521: elliptic.P521()}[*j.Crv]
		if curve == nil {
			return nil, fmt.Errorf("the EC key is on %s; jwkctl signs with P-256, P-384 or P-521 only", *j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(j.X) > size || len(j.Y) > size {
			return nil, errors.New("the EC key's point is too long for its curve")
		}
		raw := make([]byte, 1+2*size)
		raw[0] = 4
		copy(raw[1+size-len(j.X):1+size], j.X)
		copy(raw[1+2*size-len(j.Y):], j.Y)
		p, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return nil, fmt.Errorf("the EC key's point is not on its curve: %v", err)
		}
		pub = p
	default:
		return nil, fmt.Errorf("the key is of type %s, not RSA or EC: it cannot sign JWTs", *j.Kty)
	}
	if err := keystore.CheckPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// Key is one version of a Key Vault key. Its public key is fetched once;
// each signature is exactly one Sign call.
type Key struct {
	v             *vault
	name, version string
	uri           *keystore.URI
	pub           crypto.PublicKey
	alg           jose.SignatureAlgorithm // from the jwkctl-alg tag, if any
}

var (
	_ keystore.Key          = (*Key)(nil)
	_ keystore.ConcatSigner = (*Key)(nil)
	_ keystore.AlgRecorder  = (*Key)(nil)
)

// URI names the key and its version.
func (k *Key) URI() *keystore.URI { return k.uri }

// Public is the cached public key.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// RecordedAlg is the algorithm jwkctl generated the key for (its
// jwkctl-alg tag), or "" for a key made elsewhere.
func (k *Key) RecordedAlg() jose.SignatureAlgorithm { return k.alg }

// Sign implements crypto.Signer: RSA signatures as they are, ECDSA in
// ASN.1 DER (Key Vault returns r‖s, which SignConcat hands over as is).
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := k.sign(digest, opts)
	if err != nil {
		return nil, err
	}
	if _, ok := k.pub.(*ecdsa.PublicKey); ok {
		return keystore.ECDSADER(sig)
	}
	return sig, nil
}

// SignConcat implements keystore.ConcatSigner: an ECDSA signature as r‖s,
// the form Key Vault returns and JWS uses.
func (k *Key) SignConcat(digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.sign(digest, opts)
}

func (k *Key) sign(digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	alg, err := signAlg(k.pub, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("azurekv: %s: %w", k.uri, err)
	}
	timeout := SignTimeout
	if k.v.timeout > 0 {
		timeout = k.v.timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := k.v.c.Sign(ctx, k.name, k.version, azkeys.SignParameters{Algorithm: to.Ptr(alg), Value: digest}, nil)
	if err != nil {
		return nil, k.v.mapErr(err, "sign with", k.name, k.version, opSign)
	}
	if _, err := k.v.kidOf(resp.KID, k.name, k.version); err != nil {
		return nil, err
	}
	sig := resp.Result
	switch p := k.pub.(type) {
	case *rsa.PublicKey:
		if len(sig) != p.Size() {
			return nil, fmt.Errorf("azurekv: %s returned an RSA signature of %d bytes, want %d", k.uri, len(sig), p.Size())
		}
	case *ecdsa.PublicKey:
		if size := (p.Curve.Params().BitSize + 7) / 8; len(sig) != 2*size {
			return nil, fmt.Errorf("azurekv: %s returned an ECDSA signature of %d bytes, want r‖s of %d", k.uri, len(sig), 2*size)
		}
	}
	return sig, nil
}

// signAlg is the Key Vault algorithm for a digest and signer options. Key
// Vault signs PSS with a salt as long as the hash, and ECDSA only with the
// curve's own hash (ES256 on P-256 …).
func signAlg(pub crypto.PublicKey, digest []byte, opts crypto.SignerOpts) (azkeys.SignatureAlgorithm, error) {
	h := opts.HashFunc()
	bits := map[crypto.Hash]string{crypto.SHA256: "256", crypto.SHA384: "384", crypto.SHA512: "512"}[h]
	if bits == "" {
		return "", fmt.Errorf("Key Vault signs SHA-256, SHA-384 or SHA-512 digests, not %v", h)
	}
	if len(digest) != h.Size() {
		return "", fmt.Errorf("the digest is %d bytes, not a %v digest", len(digest), h)
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if pss.SaltLength != h.Size() && pss.SaltLength != rsa.PSSSaltLengthEqualsHash {
				return "", fmt.Errorf("Key Vault signs PSS with a salt as long as the hash, not %d bytes", pss.SaltLength)
			}
			return azkeys.SignatureAlgorithm("PS" + bits), nil
		}
		return azkeys.SignatureAlgorithm("RS" + bits), nil
	case *ecdsa.PublicKey:
		want := map[string]crypto.Hash{"P-256": crypto.SHA256, "P-384": crypto.SHA384, "P-521": crypto.SHA512}[p.Curve.Params().Name]
		if h != want {
			return "", fmt.Errorf("Key Vault signs with a %s key only %v digests, not %v", p.Curve.Params().Name, want, h)
		}
		return azkeys.SignatureAlgorithm("ES" + bits), nil
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}

// algsFor is the JOSE algorithms a Key Vault key can serve.
func algsFor(pub crypto.PublicKey) []jose.SignatureAlgorithm {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return []jose.SignatureAlgorithm{jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512}
	case *ecdsa.PublicKey:
		return map[string][]jose.SignatureAlgorithm{"P-256": {jose.ES256}, "P-384": {jose.ES384}, "P-521": {jose.ES512}}[p.Curve.Params().Name]
	}
	return nil
}
