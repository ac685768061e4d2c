// Package token gets OAuth 2.0 access tokens with private_key_jwt: the
// client-credentials grant with a client assertion signed by a backend key
// (HelseID profile by default), optionally DPoP-bound (RFC 9449).
//
// A Client talks to one token endpoint (found by OpenID discovery from the
// issuer, or given). Every HTTP request it sends carries a freshly signed
// assertion with a new jti, retries included — HelseID refuses a reused jti,
// so the request is written here instead of through x/oauth2's auth-style
// probing, and redirects are never followed. It answers HelseID's
// use_dpop_nonce once with a new proof and assertion and remembers each
// server's nonce, retries 5xx and 429 with backoff (Retry-After honoured),
// and maps error responses to sentinels (ErrInvalidClient, ErrInvalidScope,
// ErrClockSkew, …) wrapped in *Error, which quotes the server and says what
// to check. Plain http is accepted only to loopback hosts (CheckURL).
//
// A Source is the oauth2.TokenSource on top: it caches until shortly
// before expires_in and refreshes once for all concurrent callers.
// NewHTTPClient authorizes resource requests with it, adding a DPoP proof
// with ath to each.
//
//	key, _ := keystore.Open(ctx, "file:keys/client.json", keystore.Options{})
//	s, _ := signer.New(key, jose.PS256)
//	c, _ := token.NewClient(token.Config{
//		Issuer:   "https://helseid-sts.test.nhn.no",
//		ClientID: "my-client",
//		Signer:   s,
//		Scopes:   []string{"nhn:cp-api/access-v2-dpop"},
//		DPoP:     true,
//	})
//	src := token.NewSource(c)
//	hc := token.NewHTTPClient(src, nil)
//	resp, _ := hc.Get("https://cpapi.test.grunndata.nhn.no/api/v1/communicationparty/123")
package token
