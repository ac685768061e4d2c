package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/signer"
)

// One key for the whole package: P-256 keeps the shared machine idle.
var (
	keyOnce sync.Once
	testKey *ecdsa.PrivateKey
	dpopKey *ecdsa.PrivateKey
)

func keys(t testing.TB) (*signer.Signer, *signer.Signer) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if testKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if dpopKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
	a, err := signer.New(testKey, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	d, err := signer.New(dpopKey, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	return a, d
}

var testNow = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// seen is what the fake STS verified in one token request.
type seen struct {
	jti, proofJTI, nonce, scope string
	resources                   []string
	details                     json.RawMessage
	dpopJKT                     string
}

// fakeSTS is an authorization server that checks every request the way
// HelseID would, using only the public JWK: signature, typ, kid, iss, sub,
// aud, lifetime, and that no jti is ever seen twice.
type fakeSTS struct {
	t        testing.TB
	srv      *httptest.Server
	clientID string
	pub      jose.JSONWebKey
	// nonce, when set, must be in every DPoP proof; a proof without it
	// gets 400 use_dpop_nonce and the nonce in DPoP-Nonce.
	nonce string
	// respond, when set, answers token request n (from 1) instead of the
	// default success; returning false falls through to the default.
	respond func(n int, s seen, w http.ResponseWriter) bool
	ttl     int64
	// iatClock, when set, is the clock assertions' iat must follow.
	iatClock func() time.Time

	mu          sync.Mutex
	jtis        map[string]bool
	reqs        []seen
	discoveries int
	issued      int
}

func newFakeSTS(t testing.TB, tlsServer bool) *fakeSTS {
	t.Helper()
	a, _ := keys(t)
	f := &fakeSTS{t: t, clientID: "test-client", pub: jose.JSONWebKey{Key: a.Public().Key}, jtis: map[string]bool{}, ttl: 600}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+WellKnownPath, f.discovery)
	mux.HandleFunc("POST /connect/token", f.token)
	if tlsServer {
		f.srv = httptest.NewUnstartedServer(mux)
		// The untrusted-certificate test makes the server log a failed
		// handshake; that is the point, not noise worth printing.
		f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		f.srv.StartTLS()
	} else {
		f.srv = httptest.NewServer(mux)
	}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSTS) issuer() string   { return f.srv.URL }
func (f *fakeSTS) endpoint() string { return f.srv.URL + "/connect/token" }

func (f *fakeSTS) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func (f *fakeSTS) discovery(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	f.discoveries++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Metadata{Issuer: f.issuer(), TokenEndpoint: f.endpoint()})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (f *fakeSTS) token(w http.ResponseWriter, r *http.Request) {
	// The server's clock agrees with the client's unless a test says otherwise.
	w.Header().Set("Date", testNow.Format(http.TimeFormat))
	s, err := f.verify(r)
	if err != nil {
		f.t.Errorf("fake STS refused a request: %v", err)
		oauthError(w, 400, "invalid_client", "test: "+err.Error())
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, s)
	n := len(f.reqs)
	f.mu.Unlock()
	if f.nonce != "" && s.proofJTI != "" && s.nonce != f.nonce {
		w.Header().Set("DPoP-Nonce", f.nonce)
		oauthError(w, 400, "use_dpop_nonce", "Authorization server requires nonce in DPoP proof")
		return
	}
	if f.respond != nil && f.respond(n, s, w) {
		return
	}
	f.mu.Lock()
	f.issued++
	tok := fmt.Sprintf("at-%d", f.issued)
	f.mu.Unlock()
	tt := "Bearer"
	if s.proofJTI != "" {
		tt = "DPoP"
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": tt, "expires_in": f.ttl, "scope": s.scope})
}

func (f *fakeSTS) verify(r *http.Request) (seen, error) {
	var s seen
	if err := r.ParseForm(); err != nil {
		return s, err
	}
	if g := r.PostForm.Get("grant_type"); g != "client_credentials" {
		return s, fmt.Errorf("grant_type %q", g)
	}
	if g := r.PostForm.Get("client_assertion_type"); g != AssertionType {
		return s, fmt.Errorf("client_assertion_type %q", g)
	}
	if g := r.PostForm.Get("client_id"); g != f.clientID {
		return s, fmt.Errorf("client_id %q", g)
	}
	if r.Header.Get("Authorization") != "" {
		return s, fmt.Errorf("unexpected Authorization header (basic auth style)")
	}
	jws, err := jose.ParseSignedCompact(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256, jose.PS256})
	if err != nil {
		return s, fmt.Errorf("assertion: %w", err)
	}
	h := jws.Signatures[0].Header
	if h.ExtraHeaders["typ"] != assertion.TypHelseID {
		return s, fmt.Errorf("assertion typ %v", h.ExtraHeaders["typ"])
	}
	if want, _ := signer.Thumbprint(f.pub.Key); h.KeyID != want {
		return s, fmt.Errorf("kid %q, want %q", h.KeyID, want)
	}
	payload, err := jws.Verify(f.pub)
	if err != nil {
		return s, fmt.Errorf("assertion signature: %w", err)
	}
	var c struct {
		Iss, Sub, Aud, Jti string
		Iat, Nbf, Exp      int64
		Details            json.RawMessage `json:"assertion_details"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return s, err
	}
	if c.Iss != f.clientID || c.Sub != f.clientID || c.Aud != f.issuer() {
		return s, fmt.Errorf("iss %q sub %q aud %q", c.Iss, c.Sub, c.Aud)
	}
	now := testNow
	if f.iatClock != nil {
		now = f.iatClock()
	}
	if c.Exp-c.Iat <= 0 || c.Exp-c.Iat > 60 || c.Iat != now.Unix() {
		return s, fmt.Errorf("iat %d exp %d", c.Iat, c.Exp)
	}
	if len(c.Jti) < 22 {
		return s, fmt.Errorf("short jti")
	}
	s.jti, s.details = c.Jti, c.Details
	s.scope, s.resources = r.PostForm.Get("scope"), r.PostForm["resource"]
	if err := f.once(c.Jti); err != nil {
		return s, err
	}
	if proof := r.Header.Get("DPoP"); proof != "" {
		p, err := verifyProof(proof, "POST", f.endpoint(), "")
		if err != nil {
			return s, err
		}
		if err := f.once(p.ID); err != nil {
			return s, err
		}
		s.proofJTI, s.nonce, s.dpopJKT = p.ID, p.Nonce, p.jkt
	}
	return s, nil
}

func (f *fakeSTS) once(jti string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jtis[jti] {
		return fmt.Errorf("jti %s seen twice", jti)
	}
	f.jtis[jti] = true
	return nil
}

type proofClaims struct {
	assertion.DPoPClaims
	jkt string
}

// verifyProof checks a DPoP proof as RFC 9449 §4.3 says, with the key in
// its own header; ath is checked when token is set.
func verifyProof(proof, method, url, token string) (proofClaims, error) {
	var pc proofClaims
	jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256, jose.PS256})
	if err != nil {
		return pc, fmt.Errorf("proof: %w", err)
	}
	h := jws.Signatures[0].Header
	if h.ExtraHeaders["typ"] != assertion.TypDPoP {
		return pc, fmt.Errorf("proof typ %v", h.ExtraHeaders["typ"])
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		return pc, fmt.Errorf("proof jwk missing or private")
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return pc, fmt.Errorf("proof signature: %w", err)
	}
	if err := json.Unmarshal(payload, &pc.DPoPClaims); err != nil {
		return pc, err
	}
	if pc.Method != method || pc.URL != url {
		return pc, fmt.Errorf("proof htm %q htu %q, want %s %s", pc.Method, pc.URL, method, url)
	}
	if strings.ContainsAny(pc.URL, "?#") {
		return pc, fmt.Errorf("htu has a query or fragment")
	}
	if token != "" && pc.ATH != assertion.ATH(token) {
		return pc, fmt.Errorf("proof ath %q does not match the token", pc.ATH)
	}
	if token == "" && pc.ATH != "" {
		return pc, fmt.Errorf("ath on a token request")
	}
	pc.jkt, _ = signer.Thumbprint(h.JSONWebKey.Key)
	return pc, nil
}

// recordSleep is a RetryPolicy.Sleep that waits for nothing and remembers.
type recordSleep struct {
	mu sync.Mutex
	d  []time.Duration
}

func (r *recordSleep) sleep(_ context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.d = append(r.d, d)
	return nil
}

func (f *fakeSTS) config(t testing.TB) Config {
	t.Helper()
	a, _ := keys(t)
	return Config{
		Issuer:   f.issuer(),
		ClientID: f.clientID,
		Signer:   a,
		Scopes:   []string{"nhn:test/a", "nhn:test/b"},
		Now:      func() time.Time { return testNow },
	}
}
