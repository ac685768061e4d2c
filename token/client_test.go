package token

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/signer"
)

func newClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestExchangeVerifiedByServer(t *testing.T) {
	f := newFakeSTS(t, false)
	cfg := f.config(t)
	cfg.Resources = []string{"nhn:cp-api", "nhn:other"}
	cfg.ParentOrg, cfg.ChildOrg = "994598759", "999977775"
	c := newClient(t, cfg)
	for range 2 {
		r, err := c.Exchange(t.Context(), Request{})
		if err != nil {
			t.Fatal(err)
		}
		if r.AccessToken == "" || r.TokenType != "Bearer" || r.ExpiresIn != 600 || !r.Expiry.Equal(testNow.Add(600*time.Second)) {
			t.Errorf("response %v expiry %v", r, r.Expiry)
		}
		var raw map[string]any
		if err := json.Unmarshal(r.Raw, &raw); err != nil || raw["access_token"] != r.AccessToken {
			t.Errorf("Raw %s: %v", r.Raw, err)
		}
	}
	got := f.requests()
	if len(got) != 2 || f.discoveries != 1 {
		t.Fatalf("%d token requests, %d discoveries; want 2 and 1 (discovery is cached)", len(got), f.discoveries)
	}
	s := got[0]
	if s.scope != "nhn:test/a nhn:test/b" || !slices.Equal(s.resources, cfg.Resources) {
		t.Errorf("scope %q resources %q", s.scope, s.resources)
	}
	// One detail is an object, not an array, as HelseID.Library sends it.
	want := `{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:999977775"}}}}`
	if string(s.details) != want {
		t.Errorf("assertion_details\n got %s\nwant %s", s.details, want)
	}
	if strings.Contains(r0String(t, c), "at-") {
		t.Error("Response.String shows the token")
	}
}

func r0String(t *testing.T, c *Client) string {
	r, err := c.Exchange(t.Context(), Request{Scopes: []string{"only"}})
	if err != nil {
		t.Fatal(err)
	}
	return r.String()
}

func TestExchangeTLS(t *testing.T) {
	f := newFakeSTS(t, true)
	cfg := f.config(t)
	cfg.HTTPClient = f.srv.Client()
	if _, err := newClient(t, cfg).Exchange(t.Context(), Request{}); err != nil {
		t.Fatalf("with the server's CA: %v", err)
	}
	// Without the test CA the certificate must be refused, and not retried.
	cfg.HTTPClient = nil
	cfg.TokenEndpoint = f.endpoint()
	sl := &recordSleep{}
	cfg.Retry.Sleep = sl.sleep
	_, err := newClient(t, cfg).Exchange(t.Context(), Request{})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: err = %v", err)
	}
	if len(sl.d) != 0 {
		t.Errorf("a certificate error was retried %d times", len(sl.d))
	}
}

func TestExchangeMisbehavingServer(t *testing.T) {
	type reply func(w http.ResponseWriter)
	status := func(code int, hdr ...string) reply {
		return func(w http.ResponseWriter) {
			for i := 0; i+1 < len(hdr); i += 2 {
				w.Header().Set(hdr[i], hdr[i+1])
			}
			w.WriteHeader(code)
		}
	}
	body := func(ct, b string) reply {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", ct)
			w.Write([]byte(b))
		}
	}
	oerr := func(code int, e, desc string, hdr ...string) reply {
		return func(w http.ResponseWriter) {
			for i := 0; i+1 < len(hdr); i += 2 {
				w.Header().Set(hdr[i], hdr[i+1])
			}
			oauthError(w, code, e, desc)
		}
	}
	hangUp := func(w http.ResponseWriter) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	tests := []struct {
		name     string
		replies  []reply // nil entry: normal success
		wantErr  []error
		wantText []string
		requests int
		sleeps   []time.Duration
	}{
		{name: "5xx then success", replies: []reply{status(500), status(502), nil}, requests: 3, sleeps: []time.Duration{time.Second, 2 * time.Second}},
		{name: "429 Retry-After seconds", replies: []reply{status(429, "Retry-After", "7"), nil}, requests: 2, sleeps: []time.Duration{7 * time.Second}},
		{name: "503 Retry-After date", replies: []reply{status(503, "Retry-After", testNow.Add(4*time.Second).Format(http.TimeFormat)), nil}, requests: 2, sleeps: []time.Duration{4 * time.Second}},
		{name: "Retry-After capped", replies: []reply{status(429, "Retry-After", "86400"), nil}, requests: 2, sleeps: []time.Duration{30 * time.Second}},
		{name: "5xx forever", replies: []reply{status(503), status(503), status(503), status(503), status(503)}, requests: 4,
			sleeps: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, wantErr: []error{ErrServer}, wantText: []string{"503", "gave up after 3 retries"}},
		{name: "connection dropped then success", replies: []reply{hangUp, nil}, requests: 2, sleeps: []time.Duration{time.Second}},
		{name: "malformed JSON", replies: []reply{body("application/json", `{"access_token":`)}, requests: 1, wantErr: []error{ErrBadResponse}, wantText: []string{"not valid JSON"}},
		{name: "wrong content type", replies: []reply{body("text/html", `<html>login</html>`)}, requests: 1, wantErr: []error{ErrBadResponse}, wantText: []string{"text/html"}},
		{name: "no access_token", replies: []reply{body("application/json", `{"token_type":"Bearer"}`)}, requests: 1, wantErr: []error{ErrBadResponse}},
		{name: "invalid_client", replies: []reply{oerr(400, "invalid_client", "Client authentication failed")}, requests: 1,
			wantErr: []error{ErrInvalidClient}, wantText: []string{"invalid_client: Client authentication failed", "compare kid " + mustKid(t)}},
		{name: "invalid_scope", replies: []reply{oerr(400, "invalid_scope", "nhn:test/b is not allowed")}, requests: 1,
			wantErr: []error{ErrInvalidScope}, wantText: []string{"nhn:test/b is not allowed"}},
		{name: "unauthorized_client", replies: []reply{oerr(400, "unauthorized_client", "")}, requests: 1, wantErr: []error{ErrUnauthorizedClient}},
		{name: "invalid_grant", replies: []reply{oerr(400, "invalid_grant", "nope")}, requests: 1, wantErr: []error{ErrInvalidGrant}},
		{name: "unknown code", replies: []reply{oerr(403, "access_denied", "blocked")}, requests: 1, wantErr: []error{ErrRejected}, wantText: []string{"403 access_denied: blocked"}},
		{name: "expired assertion", replies: []reply{oerr(400, "invalid_client", "The client assertion token is expired")}, requests: 1,
			wantErr: []error{ErrInvalidClient, ErrClockSkew}, wantText: []string{"NTP"}},
		{name: "server clock far ahead", replies: []reply{oerr(400, "invalid_client", "Invalid client assertion", "Date", testNow.Add(10*time.Minute).Format(http.TimeFormat))}, requests: 1,
			wantErr: []error{ErrInvalidClient, ErrClockSkew}, wantText: []string{"10m0s behind the server's"}},
		{name: "assertion echoed back is redacted", replies: []reply{oerr(400, "invalid_client", "bad eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl here\nsecond line")}, requests: 1,
			wantErr: []error{ErrInvalidClient}, wantText: []string{"bad [redacted] here second line"}},
		{name: "4xx without JSON", replies: []reply{func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(400)
			w.Write([]byte("<h1>Bad</h1>"))
		}}, requests: 1, wantErr: []error{ErrRejected}, wantText: []string{"400: a text/html body, not an OAuth error"}},
		{name: "redirect not followed", replies: []reply{status(307, "Location", "/elsewhere")}, requests: 1, wantErr: []error{ErrRejected}, wantText: []string{"307"}},
		{name: "DPoP token without DPoP", replies: []reply{body("application/json", `{"access_token":"x","token_type":"DPoP"}`)}, requests: 1, wantErr: []error{ErrBadResponse}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSTS(t, false)
			f.respond = func(n int, _ seen, w http.ResponseWriter) bool {
				if n > len(tt.replies) || tt.replies[n-1] == nil {
					return false
				}
				tt.replies[n-1](w)
				return true
			}
			cfg := f.config(t)
			sl := &recordSleep{}
			cfg.Retry = RetryPolicy{Sleep: sl.sleep, Backoff: func(n int) time.Duration { return time.Duration(n) * time.Second }}
			_, err := newClient(t, cfg).Exchange(t.Context(), Request{})
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			for _, we := range tt.wantErr {
				if !errors.Is(err, we) {
					t.Errorf("error %v is not %v", err, we)
				}
			}
			for _, w := range tt.wantText {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not say %q", err, w)
				}
			}
			if err != nil && strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error is not one line: %q", err)
			}
			if got := len(f.requests()); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
			if !slices.Equal(sl.d, tt.sleeps) {
				t.Errorf("slept %v, want %v", sl.d, tt.sleeps)
			}
		})
	}
}

func mustKid(t *testing.T) string {
	a, _ := keys(t)
	return a.KeyID()
}

func TestExchangeSlowServer(t *testing.T) {
	f := newFakeSTS(t, false)
	release := make(chan struct{})
	defer close(release)
	f.respond = func(int, seen, http.ResponseWriter) bool {
		<-release
		return true
	}
	cfg := f.config(t)
	sl := &recordSleep{}
	cfg.Retry.Sleep = sl.sleep
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := newClient(t, cfg).Exchange(ctx, Request{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if len(sl.d) != 0 || len(f.requests()) != 1 {
		t.Errorf("a cancelled request was retried (%d sleeps, %d requests)", len(sl.d), len(f.requests()))
	}
}

func TestExchangeDPoPNonceDance(t *testing.T) {
	f := newFakeSTS(t, false)
	f.nonce = "nonce-1"
	cfg := f.config(t)
	cfg.DPoP = true
	_, dk := keys(t)
	cfg.DPoPSigner = dk
	c := newClient(t, cfg)
	r, err := c.Exchange(t.Context(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.IsDPoP() {
		t.Errorf("token_type %q", r.TokenType)
	}
	got := f.requests()
	if len(got) != 2 || got[0].nonce != "" || got[1].nonce != "nonce-1" {
		t.Fatalf("want one nonce-less try then one with the nonce, got %+v", got)
	}
	if got[0].jti == got[1].jti || got[0].proofJTI == got[1].proofJTI {
		t.Error("the retry reused an assertion or proof")
	}
	if got[1].dpopJKT != dk.KeyID() {
		t.Errorf("proof signed by %s, want the DPoP key %s", got[1].dpopJKT, dk.KeyID())
	}
	// The nonce is remembered: no extra round trip.
	if _, err := c.Exchange(t.Context(), Request{}); err != nil {
		t.Fatal(err)
	}
	if got := f.requests(); len(got) != 3 || got[2].nonce != "nonce-1" {
		t.Fatalf("second exchange: %+v", got[2:])
	}
	// A rotated nonce costs one retry.
	f.mu.Lock()
	f.nonce = "nonce-2"
	f.mu.Unlock()
	if _, err := c.Exchange(t.Context(), Request{}); err != nil {
		t.Fatal(err)
	}
	if got := f.requests(); len(got) != 5 || got[4].nonce != "nonce-2" {
		t.Fatalf("after rotation: %+v", got[3:])
	}
}

func TestExchangeDPoPNonceOnlyOnce(t *testing.T) {
	f := newFakeSTS(t, false)
	f.respond = func(n int, _ seen, w http.ResponseWriter) bool {
		w.Header().Set("DPoP-Nonce", "n"+string(rune('0'+n)))
		oauthError(w, 400, "use_dpop_nonce", "nonce required")
		return true
	}
	cfg := f.config(t)
	cfg.DPoP = true
	_, err := newClient(t, cfg).Exchange(t.Context(), Request{})
	if !errors.Is(err, ErrDPoP) {
		t.Fatalf("err = %v, want ErrDPoP", err)
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("%d requests, want 2 (one nonce retry only)", n)
	}
}

func TestExchangeBearerWhenDPoPAsked(t *testing.T) {
	f := newFakeSTS(t, false)
	f.respond = func(_ int, _ seen, w http.ResponseWriter) bool {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"x","token_type":"Bearer","expires_in":60}`))
		return true
	}
	cfg := f.config(t)
	cfg.DPoP = true
	if _, err := newClient(t, cfg).Exchange(t.Context(), Request{}); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("err = %v", err)
	}
}

func TestDiscoveryFailures(t *testing.T) {
	tests := []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"404", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }, "answered 404"},
		{"html", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>")) }, "not JSON"},
		{"other issuer", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"issuer":"https://evil.example","token_endpoint":"https://evil.example/token"}`))
		}, `names issuer "https://evil.example"`},
		{"insecure token endpoint", nil, "plain http"},
		{"no token endpoint", nil, "no token_endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srv *httptest.Server
			h := tt.h
			if h == nil {
				h = func(w http.ResponseWriter, _ *http.Request) {
					md := Metadata{Issuer: srv.URL}
					if tt.name == "insecure token endpoint" {
						md.TokenEndpoint = "http://sts.example/token"
					}
					w.Header().Set("Content-Type", "application/json")
					json.NewEncoder(w).Encode(md)
				}
			}
			srv = httptest.NewServer(h)
			defer srv.Close()
			_, err := Discover(t.Context(), nil, srv.URL+"/")
			if !errors.Is(err, ErrDiscovery) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrDiscovery saying %q", err, tt.want)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://helseid-sts.nhn.no", true},
		{"https://helseid-sts.test.nhn.no/connect/token", true},
		{"http://127.0.0.1:8080/token", true},
		{"http://127.1.2.3/token", true},
		{"http://localhost:9000", true},
		{"http://LOCALHOST:9000", true},
		{"http://localhost.:9000", false}, // a resolver may ask DNS
		{"http://[::1]:443/x", true},
		{"http://helseid-sts.nhn.no", false},
		{"http://localhost.example.com", false},
		{"http://10.0.0.1/token", false},
		{"http://0.0.0.0/token", false},
		{"ftp://example.com", false},
		{"https://user:pw@example.com", false},
		{"/connect/token", false},
		{"https://", false},
		{"::", false},
	}
	for _, tt := range tests {
		err := CheckURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInsecureURL) {
			t.Errorf("CheckURL(%q) = %v, not ErrInsecureURL", tt.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("CheckURL leaks the password: %v", err)
		}
	}
}

func TestNewClientRefusesInsecureIssuer(t *testing.T) {
	a, _ := keys(t)
	_, err := NewClient(Config{Issuer: "http://helseid-sts.test.nhn.no", ClientID: "c", Signer: a})
	if !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("err = %v", err)
	}
	_, err = NewClient(Config{Issuer: "https://x", ClientID: "c", Signer: a, ParentOrg: "12345"})
	if !errors.Is(err, assertion.ErrOrgNumber) {
		t.Fatalf("short org number: err = %v", err)
	}
}

// failingKey is a key that will not sign, as a disabled HSM or KMS key.
type failingKey struct {
	crypto.Signer
	calls atomic.Int32
}

func (k *failingKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	k.calls.Add(1)
	return nil, errors.New("CKR_KEY_FUNCTION_NOT_PERMITTED")
}

// A key that will not sign fails the exchange at once: nothing is sent and
// the signature is not tried again (an HSM or KMS would be asked again for
// nothing).
func TestExchangeSigningFailureNotRetried(t *testing.T) {
	f := newFakeSTS(t, false)
	cfg := f.config(t)
	_, d := keys(t)
	for _, dpop := range []bool{false, true} {
		k := &failingKey{Signer: testKey}
		s, err := signer.New(k, jose.ES256)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recordSleep{}
		cfg.Signer, cfg.Retry = s, RetryPolicy{Sleep: rec.sleep}
		cfg.DPoP, cfg.DPoPSigner = false, nil
		if dpop {
			// The assertion key signs; the DPoP key fails.
			cfg.Signer, cfg.DPoP, cfg.DPoPSigner = d, true, s
		}
		_, err = newClient(t, cfg).Exchange(t.Context(), Request{})
		if err == nil || !strings.Contains(err.Error(), "CKR_KEY_FUNCTION_NOT_PERMITTED") {
			t.Fatalf("dpop=%v: %v", dpop, err)
		}
		if n := k.calls.Load(); n != 1 || len(rec.d) != 0 {
			t.Errorf("dpop=%v: %d signing attempts, %d waits; want 1 and 0", dpop, n, len(rec.d))
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d token requests reached the STS", n)
	}
}

// RFC 8707 §2: resource indicators are absolute URIs without fragments.
func TestResourceIndicatorsChecked(t *testing.T) {
	f := newFakeSTS(t, false)
	for _, r := range []string{"relative", "/path", "https://api.example/x#frag", "nhn:cp-api#x"} {
		cfg := f.config(t)
		cfg.Resources = []string{r}
		if _, err := NewClient(cfg); err == nil || !strings.Contains(err.Error(), "RFC 8707") {
			t.Errorf("NewClient with resource %q: %v", r, err)
		}
		cfg.Resources = nil
		if _, err := newClient(t, cfg).Exchange(t.Context(), Request{Resources: []string{r}}); err == nil || !strings.Contains(err.Error(), "RFC 8707") {
			t.Errorf("Exchange with resource %q: %v", r, err)
		}
	}
	cfg := f.config(t)
	cfg.Resources = []string{"nhn:cp-api", "https://api.example.no/v1?x=1"}
	if _, err := newClient(t, cfg).Exchange(t.Context(), Request{}); err != nil {
		t.Fatalf("good resources: %v", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests reached the STS, want 1 (the refused ones send nothing)", n)
	}
}

// The token request carries no GetBody, so net/http cannot resend it by
// itself (as it does after an HTTP/2 stream reset) and replay the
// assertion; only our retry loop resends, with a new one.
func TestTokenRequestNotReplayableByNetHTTP(t *testing.T) {
	f := newFakeSTS(t, false)
	cfg := f.config(t)
	var sawGetBody atomic.Bool
	cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost && r.GetBody != nil {
			sawGetBody.Store(true)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	if _, err := newClient(t, cfg).Exchange(t.Context(), Request{}); err != nil {
		t.Fatal(err)
	}
	if sawGetBody.Load() {
		t.Fatal("the token request had a GetBody: net/http could replay its assertion")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// "iat" inside a word ("associated") is not a sign of clock skew: the
// hint stays about the key.
func TestSkewWordsAreWholeWords(t *testing.T) {
	for desc, skew := range map[string]bool{
		"No signing key associated with this client": false,
		"token iat is in the future":                 true,
		"client assertion expired":                   true,
		"appropriate key not found":                  false,
	} {
		if got := skewWords().MatchString(desc); got != skew {
			t.Errorf("%q: skew %v, want %v", desc, got, skew)
		}
	}
}

// An Error built by hand matches its code's sentinel, as one parsed from
// a token endpoint does.
func TestErrorMatchesItsCodeSentinel(t *testing.T) {
	e := &Error{Status: 400, Code: "invalid_scope"}
	if !errors.Is(e, ErrInvalidScope) || errors.Is(e, ErrInvalidClient) {
		t.Fatalf("%v: sentinels wrong", e)
	}
	if errors.Is(&Error{Status: 503}, ErrInvalidScope) {
		t.Fatal("an Error without a code matched invalid_scope")
	}
}
