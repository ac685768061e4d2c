package assertion_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/signer"
)

var (
	once   sync.Once
	ecKey  *ecdsa.PrivateKey
	rsaKey *rsa.PrivateKey
)

func keys(t testing.TB) (*ecdsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	once.Do(func() {
		ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048)
	})
	return ecKey, rsaKey
}

var fixedNow = time.Unix(1_800_000_000, 0)

// verify parses a compact JWS and checks it with only the public JWK, as a
// server would; it returns the header and claims.
func verify(t *testing.T, jws string, pub *jose.JSONWebKey, alg jose.SignatureAlgorithm) (map[string]any, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(pub)
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(b, &jwk); err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSignedCompact(jws, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("not a compact JWS: %v", err)
	}
	payload, err := obj.Verify(&jwk)
	if err != nil {
		t.Fatalf("signature does not verify with the public JWK: %v", err)
	}
	hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(jws, ".")[0])
	var hdr, claims map[string]any
	if err := json.Unmarshal(hb, &hdr); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return hdr, claims
}

func TestClientAssertionExact(t *testing.T) {
	ec, rk := keys(t)
	for _, tc := range []struct {
		key crypto.Signer
		alg jose.SignatureAlgorithm
	}{{ec, jose.ES256}, {rk, jose.PS256}, {rk, jose.RS256}} {
		t.Run(string(tc.alg), func(t *testing.T) {
			s, err := signer.New(tc.key, tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			// A deterministic rand: the jti is exactly these 32 bytes.
			r := bytes.NewReader(bytes.Repeat([]byte{0xAB}, 64))
			c, err := assertion.NewClient(s, assertion.Config{
				ClientID: "client-1", Audience: "https://helseid-sts.test.nhn.no",
				Now: func() time.Time { return fixedNow }, Rand: r,
				Details: []any{map[string]string{"type": "x"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			jws, err := c.Sign()
			if err != nil {
				t.Fatal(err)
			}
			hdr, cl := verify(t, jws, s.Public(), tc.alg)
			wantHdr := map[string]any{"alg": string(tc.alg), "kid": s.KeyID(), "typ": "client-authentication+jwt"}
			if len(hdr) != len(wantHdr) {
				t.Errorf("header %v has extra members", hdr)
			}
			for k, v := range wantHdr {
				if hdr[k] != v {
					t.Errorf("header %s = %v, want %v", k, hdr[k], v)
				}
			}
			now := float64(fixedNow.Unix())
			wantJTI := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xAB}, 32))
			want := map[string]any{"iss": "client-1", "sub": "client-1", "aud": "https://helseid-sts.test.nhn.no",
				"iat": now, "nbf": now, "exp": now + 10, "jti": wantJTI}
			for k, v := range want {
				if cl[k] != v {
					t.Errorf("claim %s = %v, want %v", k, cl[k], v)
				}
			}
			// One detail is sent as an object, as HelseID.Library does.
			if d, ok := cl["assertion_details"].(map[string]any); !ok || d["type"] != "x" {
				t.Errorf("assertion_details = %v", cl["assertion_details"])
			}
		})
	}
}

// Client ids and audiences with characters JSON must escape come out as
// the same strings, and the claims are exactly the RFC 7523 set.
func TestClaimsEscaping(t *testing.T) {
	ec, _ := keys(t)
	s, err := signer.New(ec, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	id := "quote\"back\\slash<&>\u2028æøå\x01"
	aud := "https://sts.example/a?b=\"c\""
	for _, details := range [][]any{nil, {map[string]any{"type": "helseid_authorization", "n": 1}}} {
		c, err := assertion.NewClient(s, assertion.Config{ClientID: id, Audience: aud, Details: details,
			Now: func() time.Time { return fixedNow }})
		if err != nil {
			t.Fatal(err)
		}
		jws, err := c.Sign()
		if err != nil {
			t.Fatal(err)
		}
		_, cl := verify(t, jws, s.Public(), jose.ES256)
		if cl["iss"] != id || cl["sub"] != id || cl["aud"] != aud {
			t.Errorf("iss/sub/aud = %q/%q/%q", cl["iss"], cl["sub"], cl["aud"])
		}
		want := 7
		if details != nil {
			want = 8
		}
		if len(cl) != want {
			t.Errorf("claims %v: %d members, want %d", cl, len(cl), want)
		}
	}
}

func TestJTIUniqueAndLong(t *testing.T) {
	ec, _ := keys(t)
	s, _ := signer.New(ec, jose.ES256)
	c, err := assertion.NewClient(s, assertion.Config{ClientID: "c", Audience: "https://as.example"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 200 {
		jws, err := c.Sign()
		if err != nil {
			t.Fatal(err)
		}
		_, cl := verify(t, jws, s.Public(), jose.ES256)
		jti := cl["jti"].(string)
		raw, err := base64.RawURLEncoding.DecodeString(jti)
		if err != nil || len(raw) < 16 {
			t.Fatalf("jti %q is not ≥128 bits of base64url", jti)
		}
		if seen[jti] {
			t.Fatalf("jti %s repeated", jti)
		}
		seen[jti] = true
	}
}

func TestConfigChecks(t *testing.T) {
	ec, _ := keys(t)
	s, _ := signer.New(ec, jose.ES256)
	tests := []struct {
		name string
		cfg  assertion.Config
		want string
	}{
		{"no client id", assertion.Config{Audience: "a"}, "client id"},
		{"no audience", assertion.Config{ClientID: "c"}, "audience"},
		{"too long", assertion.Config{ClientID: "c", Audience: "a", Lifetime: 61 * time.Second}, "longer than 1m0s"},
		{"too short", assertion.Config{ClientID: "c", Audience: "a", Lifetime: time.Millisecond}, "too short"},
	}
	for _, tt := range tests {
		if _, err := assertion.NewClient(s, tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
	c, err := assertion.NewClient(s, assertion.Config{ClientID: "c", Audience: "a", Lifetime: 5 * time.Minute, Force: true,
		Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatalf("forced lifetime refused: %v", err)
	}
	jws, _ := c.Sign()
	_, cl := verify(t, jws, s.Public(), jose.ES256)
	if cl["exp"].(float64)-cl["iat"].(float64) != 300 {
		t.Errorf("forced lifetime not applied: %v", cl)
	}
}

func TestDPoPProof(t *testing.T) {
	ec, rk := keys(t)
	for _, key := range []crypto.Signer{ec, rk} {
		alg, _ := signer.DefaultAlg(key)
		s, _ := signer.New(key, alg)
		d, err := assertion.NewDPoP(s, assertion.DPoPConfig{Now: func() time.Time { return fixedNow }})
		if err != nil {
			t.Fatal(err)
		}
		const token = "an-access-token"
		p, err := d.Proof(assertion.ProofRequest{Method: "GET", URL: "HTTPS://API.Example.no:443/v1/x?herId=1#frag", Nonce: "n-1", AccessToken: token})
		if err != nil {
			t.Fatal(err)
		}
		// Verify with the key from the proof's own jwk header, as a server does.
		obj, err := jose.ParseSignedCompact(p, []jose.SignatureAlgorithm{alg})
		if err != nil {
			t.Fatal(err)
		}
		h := obj.Signatures[0].Protected
		if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
			t.Fatal("jwk header missing or private")
		}
		if typ := h.ExtraHeaders["typ"]; typ != "dpop+jwt" {
			t.Errorf("typ = %v", typ)
		}
		payload, err := obj.Verify(h.JSONWebKey.Key)
		if err != nil {
			t.Fatalf("proof does not verify with its jwk: %v", err)
		}
		hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(p, ".")[0])
		var jwkMembers struct {
			JWK map[string]any `json:"jwk"`
		}
		json.Unmarshal(hb, &jwkMembers)
		for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "kid", "alg", "use"} {
			if _, ok := jwkMembers.JWK[m]; ok {
				t.Errorf("jwk header carries %q", m)
			}
		}
		var c map[string]any
		json.Unmarshal(payload, &c)
		sum := sha256.Sum256([]byte(token))
		want := map[string]any{"htm": "GET", "htu": "https://api.example.no/v1/x", "iat": float64(fixedNow.Unix()), "nonce": "n-1",
			"ath": base64.RawURLEncoding.EncodeToString(sum[:])}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("%s = %v, want %v", k, c[k], v)
			}
		}
		if jti, _ := c["jti"].(string); len(jti) < 22 {
			t.Errorf("jti %q too short", jti)
		}
	}
}

func TestHTU(t *testing.T) {
	for in, want := range map[string]string{
		"https://a.example/token":       "https://a.example/token",
		"https://A.EXAMPLE:443/x?y=1#z": "https://a.example/x",
		"http://127.0.0.1:8080/connect": "http://127.0.0.1:8080/connect",
		"http://localhost:80":           "http://localhost/",
		"https://[::1]:8443/p":          "https://[::1]:8443/p",
	} {
		got, err := assertion.HTU(in)
		if err != nil || got != want {
			t.Errorf("HTU(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"/relative", "not a url", ""} {
		if _, err := assertion.HTU(bad); err == nil {
			t.Errorf("HTU(%q) accepted", bad)
		}
	}
}

// Several details go as an array, in order.
func TestSeveralDetails(t *testing.T) {
	ec, _ := keys(t)
	s, err := signer.New(ec, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	c, err := assertion.NewClient(s, assertion.Config{ClientID: "c", Audience: "https://sts.example",
		Details: []any{map[string]string{"type": "a"}, map[string]string{"type": "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := c.Sign()
	if err != nil {
		t.Fatal(err)
	}
	_, cl := verify(t, jws, s.Public(), jose.ES256)
	d, ok := cl["assertion_details"].([]any)
	if !ok || len(d) != 2 || d[0].(map[string]any)["type"] != "a" || d[1].(map[string]any)["type"] != "b" {
		t.Fatalf("assertion_details = %v", cl["assertion_details"])
	}
}

func TestNormalizeHTU(t *testing.T) {
	for in, want := range map[string]string{
		"https://H.example:443/%7e1?q=1#f": "https://h.example/~1",
		"https://h/%c3%a6":                 "https://h/%C3%A6",
		"https://h/a%2Fb":                  "https://h/a%2Fb", // reserved: stays encoded
		"https://h/a/b/c/./../../g":        "https://h/a/g",   // RFC 3986 §5.4.1
		"https://h/mid/content=5/../6":     "https://h/mid/6",
		"https://h/a/..":                   "https://h/",
		"https://h/a/b/.":                  "https://h/a/b/",
		"https://h":                        "https://h/",
		"http://h:80/x":                    "http://h/x",
		"http://h:8080/x":                  "http://h:8080/x",
	} {
		got, err := assertion.NormalizeHTU(in)
		if err != nil || got != want {
			t.Errorf("NormalizeHTU(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := assertion.NormalizeHTU("/relative"); err == nil {
		t.Error("a relative URL was accepted")
	}
}

// htm is the method as sent (methods are case-sensitive); a method that is
// not an HTTP token is refused.
func TestDPoPMethod(t *testing.T) {
	ec, _ := keys(t)
	s, _ := signer.New(ec, jose.ES256)
	d, err := assertion.NewDPoP(s, assertion.DPoPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.Proof(assertion.ProofRequest{Method: "PROPFIND", URL: "https://h/x"})
	if err != nil {
		t.Fatal(err)
	}
	c := verifyProofClaims(t, p, s)
	if c["htm"] != "PROPFIND" {
		t.Errorf("htm = %v", c["htm"])
	}
	for _, bad := range []string{"", "GET X", "GE\nT", "GET/"} {
		if _, err := d.Proof(assertion.ProofRequest{Method: bad, URL: "https://h/x"}); err == nil {
			t.Errorf("method %q accepted", bad)
		}
	}
}

func verifyProofClaims(t *testing.T, p string, s *signer.Signer) map[string]any {
	t.Helper()
	obj, err := jose.ParseSignedCompact(p, []jose.SignatureAlgorithm{s.Alg()})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := obj.Verify(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// A signer with a kept kid still makes proofs whose thumbprint is the RFC
// 7638 one of the proof's jwk header, which is what a server binds the
// token to (cnf.jkt): the kid plays no part in it.
func TestDPoPThumbprintIgnoresKeptKid(t *testing.T) {
	ec, _ := keys(t)
	s, _ := signer.New(ec, jose.ES256)
	kept, err := s.WithKeyID("registered-kid")
	if err != nil {
		t.Fatal(err)
	}
	d, err := assertion.NewDPoP(kept, assertion.DPoPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.Proof(assertion.ProofRequest{Method: "GET", URL: "https://api.example.no/x"})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSignedCompact(p, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := obj.Signatures[0].Protected.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.RawURLEncoding.EncodeToString(tp); d.Thumbprint() != want {
		t.Errorf("Thumbprint() = %q, want the jkt %q", d.Thumbprint(), want)
	}
}
