package devsts_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/token"
)

type fixture struct {
	sts    *devsts.Server
	signer *signer.Signer
	other  *signer.Signer // not registered
	now    time.Time
	mu     sync.Mutex
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

var (
	keyOnce sync.Once
	k1, k2  *ecdsa.PrivateKey
)

func newFixture(t *testing.T, cfg devsts.Config) *fixture {
	t.Helper()
	keyOnce.Do(func() {
		k1, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k2, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
	f := &fixture{now: time.Unix(1_800_000_000, 0)}
	cfg.Now = f.clock
	sts, stop, err := devsts.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	f.sts = sts
	f.signer, _ = signer.New(k1, jose.ES256)
	f.other, _ = signer.New(k2, jose.ES256)
	if err := sts.RegisterClient("client-a", []jose.JSONWebKey{*f.signer.Public()}, []string{devsts.DemoScope, "nhn:other/x"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// post sends a token request with the given assertion and DPoP proof.
func (f *fixture) post(t *testing.T, form url.Values, proof string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.sts.TokenEndpoint(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body, resp.Header
}

func (f *fixture) assertionWith(t *testing.T, s *signer.Signer, cfg assertion.Config) string {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = "client-a"
	}
	if cfg.Audience == "" {
		cfg.Audience = f.sts.Issuer()
	}
	cfg.Now = f.clock
	c, err := assertion.NewClient(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Sign()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func form(a string, extra ...string) url.Values {
	v := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {token.AssertionType}, "client_assertion": {a}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

// hand signs arbitrary claims and headers with a key, for malformed
// assertions the assertion package would never make.
func hand(t *testing.T, alg jose.SignatureAlgorithm, key any, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTokenEndpointRefusals(t *testing.T) {
	f := newFixture(t, devsts.Config{NoNonce: true})
	iss := f.sts.Issuer()
	now := f.now.Unix()
	good := map[string]any{"iss": "client-a", "sub": "client-a", "aud": iss, "iat": now, "nbf": now, "exp": now + 10, "jti": "j-1"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		m["jti"] = "jti-" + k // refused before the jti is recorded
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	replayed := f.assertionWith(t, f.signer, assertion.Config{})
	if st, body, _ := f.post(t, form(replayed), ""); st != 200 {
		t.Fatalf("a good assertion was refused: %v", body)
	}
	tests := []struct {
		name string
		form url.Values
		code string
		want string
	}{
		{"replayed jti", form(replayed), "invalid_client", "replay"},
		{"wrong typ", form(hand(t, jose.ES256, k1, "JWT", good)), "invalid_client", "typ"},
		{"HS256", form(hand(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "client-authentication+jwt", good)), "invalid_client", "allowed algorithm"},
		{"wrong aud", form(hand(t, jose.ES256, k1, "client-authentication+jwt", with("aud", "https://other.example"))), "invalid_client", "aud"},
		{"expired", form(hand(t, jose.ES256, k1, "client-authentication+jwt", with("exp", now-60))), "invalid_client", "expired"},
		{"not yet valid", form(hand(t, jose.ES256, k1, "client-authentication+jwt", with("nbf", now+120))), "invalid_client", "not yet valid"},
		{"too long", form(hand(t, jose.ES256, k1, "client-authentication+jwt", with("exp", now+3600))), "invalid_client", "longer"},
		{"no jti", form(hand(t, jose.ES256, k1, "client-authentication+jwt", with("jti", nil))), "invalid_client", "jti"},
		{"sub differs", form(hand(t, jose.ES256, k1, "client-authentication+jwt", with("sub", "someone-else"))), "invalid_client", "iss and sub"},
		{"unknown client", form(f.assertionWith(t, f.signer, assertion.Config{ClientID: "nobody"})), "invalid_client", "unknown client"},
		{"unregistered key", form(f.assertionWith(t, f.other, assertion.Config{})), "invalid_client", "does not verify"},
		{"client_id mismatch", form(f.assertionWith(t, f.signer, assertion.Config{}), "client_id", "other"), "invalid_client", "client_id"},
		{"scope not granted", form(f.assertionWith(t, f.signer, assertion.Config{}), "scope", "nhn:secret/all"), "invalid_scope", "nhn:secret/all"},
		{"wrong grant", form(f.assertionWith(t, f.signer, assertion.Config{}), "grant_type", "password"), "unsupported_grant_type", "client_credentials"},
		{"wrong assertion type", form(f.assertionWith(t, f.signer, assertion.Config{}), "client_assertion_type", "x"), "invalid_client", "client_assertion_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body, _ := f.post(t, tt.form, "")
			if st != http.StatusBadRequest || body["error"] != tt.code || !strings.Contains(body["error_description"].(string), tt.want) {
				t.Fatalf("got %d %v, want 400 %s mentioning %q", st, body, tt.code, tt.want)
			}
		})
	}
}

func TestDPoPNonceAndBoundToken(t *testing.T) {
	f := newFixture(t, devsts.Config{})
	dp, _ := assertion.NewDPoP(f.signer, assertion.DPoPConfig{Now: f.clock})
	proof := func(nonce string) string {
		p, err := dp.Proof(assertion.ProofRequest{Method: "POST", URL: f.sts.TokenEndpoint(), Nonce: nonce})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	st, body, h := f.post(t, form(f.assertionWith(t, f.signer, assertion.Config{})), proof(""))
	if st != 400 || body["error"] != "use_dpop_nonce" || h.Get("DPoP-Nonce") == "" {
		t.Fatalf("first request: %d %v nonce=%q, want use_dpop_nonce with a nonce", st, body, h.Get("DPoP-Nonce"))
	}
	nonce := h.Get("DPoP-Nonce")
	st, body, _ = f.post(t, form(f.assertionWith(t, f.signer, assertion.Config{}), "scope", devsts.DemoScope), proof(nonce))
	if st != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("with nonce: %d %v", st, body)
	}
	// The token verifies with the STS's published JWKS and is bound to the
	// proof key.
	resp, err := http.Get(f.sts.Issuer() + devsts.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	at, err := jwt.ParseSigned(body["access_token"].(string), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := at.Claims(set.Keys[0].Key, &claims); err != nil {
		t.Fatalf("access token does not verify with the JWKS: %v", err)
	}
	if claims["client_id"] != "client-a" || claims["cnf"].(map[string]any)["jkt"] != f.signer.KeyID() || claims["scope"] != devsts.DemoScope {
		t.Fatalf("access token claims %v", claims)
	}
	// A proof for another URL, and a replayed proof, are refused.
	wrong, _ := dp.Proof(assertion.ProofRequest{Method: "POST", URL: f.sts.Issuer() + "/elsewhere", Nonce: nonce})
	if st, body, _ := f.post(t, form(f.assertionWith(t, f.signer, assertion.Config{})), wrong); st != 400 || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("wrong htu: %d %v", st, body)
	}
	p := proof(nonce)
	f.post(t, form(f.assertionWith(t, f.signer, assertion.Config{})), p)
	if st, body, _ := f.post(t, form(f.assertionWith(t, f.signer, assertion.Config{})), p); st != 400 || !strings.Contains(body["error_description"].(string), "replay") {
		t.Fatalf("replayed proof: %d %v", st, body)
	}
	// Nonces expire.
	f.advance(11 * time.Minute)
	if st, body, _ := f.post(t, form(f.assertionWith(t, f.signer, assertion.Config{})), proof(nonce)); st != 400 || body["error"] != "use_dpop_nonce" {
		t.Fatalf("stale nonce: %d %v", st, body)
	}
}

// The full client: token.Source with DPoP against the STS, then the demo
// resource through token.NewHTTPClient (which does the resource nonce
// dance and sends ath).
func TestEndToEndWithTokenLibrary(t *testing.T) {
	f := newFixture(t, devsts.Config{})
	c, err := token.NewClient(token.Config{Issuer: f.sts.Issuer(), ClientID: "client-a", Signer: f.signer,
		DPoP: true, Scopes: []string{devsts.DemoScope}, ParentOrg: "912345678", ChildOrg: "998877665", Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	src := token.NewSource(c)
	hc := token.NewHTTPClient(src, nil)
	resp, err := hc.Get(f.sts.Issuer() + devsts.DemoAPIPath + "8093400")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 || out["herId"] != "8093400" || out["dpopBound"] != true || out["calledBy"] != "client-a" {
		t.Fatalf("demo call: %d %v", resp.StatusCode, out)
	}
	r, err := src.Response(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	at, _ := jwt.ParseSigned(r.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	var claims map[string]any
	at.UnsafeClaimsWithoutVerification(&claims)
	if claims[devsts.ClaimOrgParent] != "912345678" || claims[devsts.ClaimOrgChild] != "998877665" {
		t.Fatalf("organisation numbers not carried into the token: %v", claims)
	}
	// Bearer use of a DPoP-bound token is refused.
	req, _ := http.NewRequest("GET", f.sts.Issuer()+devsts.DemoAPIPath+"1", nil)
	req.Header.Set("Authorization", "Bearer "+r.AccessToken)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 401 {
		t.Fatalf("bearer use of a DPoP token: %d", resp2.StatusCode)
	}
}

func TestRegisterRefusesPrivateKeys(t *testing.T) {
	f := newFixture(t, devsts.Config{})
	if err := f.sts.RegisterClient("x", []jose.JSONWebKey{{Key: k1}}, nil); err == nil {
		t.Fatal("a private JWK was registered")
	}
}

// Registered keys expire, as in Selvbetjening: after its expiration a key
// no longer authenticates the client, and the error says so.
func TestRegisteredKeysExpire(t *testing.T) {
	f := newFixture(t, devsts.Config{KeyLifetime: 48 * time.Hour})
	if st, body, _ := f.post(t, form(f.assertionWith(t, f.signer, assertion.Config{})), ""); st != 200 {
		t.Fatalf("fresh key refused: %v", body)
	}
	f.advance(49 * time.Hour)
	st, body, _ := f.post(t, form(f.assertionWith(t, f.signer, assertion.Config{})), "")
	if st != http.StatusBadRequest || body["error"] != "invalid_client" || !strings.Contains(body["error_description"].(string), "expired at") {
		t.Fatalf("expired key: %d %v", st, body)
	}
	// SetKeyExpiry moves it; the kid names the key.
	if err := f.sts.SetKeyExpiry("client-a", f.signer.KeyID(), f.clock().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st, body, _ := f.post(t, form(f.assertionWith(t, f.signer, assertion.Config{})), ""); st != 200 {
		t.Fatalf("key with a new expiry refused: %v", body)
	}
	if err := f.sts.SetKeyExpiry("client-a", f.other.KeyID(), f.clock()); err == nil {
		t.Fatal("SetKeyExpiry accepted a key the client does not have")
	}
}

// assertion_details as HelseID.Library sends it (one object) and as an
// array are both read; a multi-tenant value without a child
// (NO:ORGNR:<parent>:) gives the parent claim and no child claim.
func TestAssertionDetailsShapes(t *testing.T) {
	f := newFixture(t, devsts.Config{NoNonce: true})
	detail := func(system, value string) map[string]any {
		return map[string]any{"type": "helseid_authorization", "practitioner_role": map[string]any{
			"organization": map[string]any{"identifier": map[string]any{"system": system, "type": "ENH", "value": value}}}}
	}
	now := f.clock().Unix()
	for i, tc := range []struct {
		details       any
		parent, child any // nil: claim absent
		refused       bool
	}{
		{detail("urn:oid:1.0.6523", "NO:ORGNR:912345678:"), "912345678", nil, false},
		{[]any{detail("urn:oid:1.0.6523", "NO:ORGNR:912345678:998877665")}, "912345678", "998877665", false},
		{detail("urn:oid:2.16.578.1.12.4.1.4.101", "998877665"), nil, "998877665", false},
		{"not an object", nil, nil, true},
	} {
		claims := map[string]any{"iss": "client-a", "sub": "client-a", "aud": f.sts.Issuer(), "iat": now, "nbf": now, "exp": now + 10,
			"jti": fmt.Sprintf("details-%d", i), "assertion_details": tc.details}
		st, body, _ := f.post(t, form(hand(t, jose.ES256, k1, "client-authentication+jwt", claims)), "")
		if tc.refused {
			if st != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["error_description"]), "assertion_details") {
				t.Errorf("case %d: %d %v, want a refusal naming assertion_details", i, st, body)
			}
			continue
		}
		if st != 200 {
			t.Fatalf("case %d: %d %v", i, st, body)
		}
		at, _ := jwt.ParseSigned(body["access_token"].(string), []jose.SignatureAlgorithm{jose.ES256})
		var got map[string]any
		at.UnsafeClaimsWithoutVerification(&got)
		if got[devsts.ClaimOrgParent] != tc.parent || got[devsts.ClaimOrgChild] != tc.child {
			t.Errorf("case %d: parent %v child %v, want %v %v", i, got[devsts.ClaimOrgParent], got[devsts.ClaimOrgChild], tc.parent, tc.child)
		}
	}
}

// The demo API compares htu with the request after RFC 3986 normalisation
// (RFC 9449 §4.3): percent-encoded unreserved characters and lower-case
// hex are the same URL.
func TestHTUNormalised(t *testing.T) {
	f := newFixture(t, devsts.Config{})
	c, err := token.NewClient(token.Config{Issuer: f.sts.Issuer(), ClientID: "client-a", Signer: f.signer,
		DPoP: true, Scopes: []string{devsts.DemoScope}, Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	hc := token.NewHTTPClient(token.NewSource(c), nil)
	for _, p := range []string{"%7e1", "%c3%a6", "8093400"} {
		resp, err := hc.Get(f.sts.Issuer() + devsts.DemoAPIPath + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			t.Errorf("%s: 401 %s", p, b)
		}
	}
}
