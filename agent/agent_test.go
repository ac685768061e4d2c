package agent_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/agent"
	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/token"
)

func newSigner(t testing.TB) *signer.Signer {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := signer.New(k, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unixClient talks HTTP over the agent's socket.
func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 200,
	}}
}

func serve(t testing.TB, a *agent.Agent, secret string) (sock string) {
	t.Helper()
	sock = filepath.Join(t.TempDir(), "agent.sock")
	ln, err := agent.Listen("unix:"+sock, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler(secret)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func getToken(c *http.Client, profile string) (int, map[string]any, error) {
	resp, err := c.Get("http://agent/v1/token?profile=" + profile)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	err = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, err
}

// 100 concurrent callers on two profiles, the dev STS behind: one STS call
// per profile, every caller served.
func TestLoadOneSTSCallPerProfile(t *testing.T) {
	sts, stop, err := devsts.Start(devsts.Config{TokenLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	var profiles []*agent.Profile
	for _, name := range []string{"epj", "integration"} {
		s := newSigner(t)
		if err := sts.RegisterClient(name, []jose.JSONWebKey{*s.Public()}, []string{devsts.DemoScope}); err != nil {
			t.Fatal(err)
		}
		c, err := token.NewClient(token.Config{Issuer: sts.Issuer(), ClientID: name, Signer: s, DPoP: true, Scopes: []string{devsts.DemoScope}})
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, &agent.Profile{Name: name, Client: c, Scopes: []string{devsts.DemoScope}})
	}
	a := agent.New(agent.Config{}, profiles)
	defer a.Close()
	hc := unixClient(serve(t, a, ""))

	const clients = 100
	deadline := time.Now().Add(1500 * time.Millisecond)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 200 && time.Now().Before(deadline); n++ {
				st, body, err := getToken(hc, profiles[i%2].Name)
				if err != nil || st != 200 || body["token_type"] != "DPoP" || body["access_token"] == "" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v %v", st, body, err))
					return
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d failed requests, first: %v", failed.Load(), firstErr.Load())
	}
	if got := sts.TokensIssued(); got != 2 {
		t.Fatalf("the STS issued %d tokens for %d requests on 2 profiles, want 2", got, ok.Load())
	}
	t.Logf("%d requests served, %d STS calls", ok.Load(), sts.TokensIssued())
}

// fakeSTS is an Exchanger whose answers the test controls.
type fakeSTS struct {
	mu      sync.Mutex
	calls   int
	fail    error
	block   chan struct{}
	started chan struct{} // closed at the first call, if set
	dpop    *assertion.DPoP
}

func (f *fakeSTS) Exchange(ctx context.Context, _ token.Request) (*token.Response, error) {
	f.mu.Lock()
	f.calls++
	n, fail, block := f.calls, f.fail, f.block
	if n == 1 && f.started != nil {
		close(f.started)
	}
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	if fail != nil {
		return nil, fail
	}
	return &token.Response{AccessToken: fmt.Sprintf("token-%d", n), TokenType: "Bearer", ExpiresIn: 60, Scope: "s"}, nil
}
func (f *fakeSTS) DPoP() *assertion.DPoP { return f.dpop }
func (f *fakeSTS) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestConcurrentCallersCoalesce(t *testing.T) {
	f := &fakeSTS{block: make(chan struct{}), started: make(chan struct{})}
	a := agent.New(agent.Config{}, []*agent.Profile{{Name: "p", Client: f}})
	defer a.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := a.Token(context.Background(), "p", nil)
			if err == nil && r.AccessToken != "token-1" {
				err = fmt.Errorf("got %s", r.AccessToken)
			}
			errs <- err
		}()
	}
	<-f.started
	f.mu.Lock()
	close(f.block)
	f.block = nil
	f.mu.Unlock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.Calls() != 1 {
		t.Fatalf("%d exchanges for 50 concurrent callers, want 1", f.Calls())
	}
}

// The STS goes down: callers keep the valid token until it expires, then
// get a clear 503 with the reason, without every caller hitting the STS.
func TestSTSDownServesValidTokenThen503(t *testing.T) {
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	f := &fakeSTS{}
	a := agent.New(agent.Config{Now: clk.Now, MinBackoff: time.Hour, MaxBackoff: time.Hour}, []*agent.Profile{{Name: "p", Client: f}})
	defer a.Close()
	hc := unixClient(serve(t, a, ""))
	if st, body, _ := getToken(hc, "p"); st != 200 || body["access_token"] != "token-1" {
		t.Fatalf("first token: %d %v", st, body)
	}
	f.mu.Lock()
	f.fail = errors.New("token: POST https://sts/connect/token: 503 Service Unavailable")
	f.mu.Unlock()
	clk.Add(40 * time.Second)
	a.Refresh() // the background refresh fails
	st, body, _ := getToken(hc, "p")
	if st != 200 || body["access_token"] != "token-1" || body["expires_in"].(float64) != 20 {
		t.Fatalf("while the STS is down: %d %v", st, body)
	}
	clk.Add(15 * time.Second) // 5 s left: inside the 10 s margin
	callsBefore := f.Calls()
	for range 20 {
		st, body, _ = getToken(hc, "p")
	}
	if st != 503 || body["error"] != "token_unavailable" || !strings.Contains(body["reason"].(string), "503 Service Unavailable") {
		t.Fatalf("after expiry: %d %v", st, body)
	}
	if extra := f.Calls() - callsBefore; extra > 1 {
		t.Fatalf("20 callers made %d STS calls while it was down", extra)
	}
}

func TestAuthSocketAndSecret(t *testing.T) {
	f := &fakeSTS{}
	a := agent.New(agent.Config{}, []*agent.Profile{{Name: "p", Client: f}})
	defer a.Close()
	sock := serve(t, a, "")
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if _, err := agent.Listen("0.0.0.0:0", ""); err == nil {
		t.Fatal("listened on a non-loopback address")
	}
	if _, err := agent.Listen("unix:"+sock, ""); err == nil || !strings.Contains(err.Error(), "another agent") {
		t.Fatalf("second agent on a live socket: %v", err)
	}
	secretFile := filepath.Join(t.TempDir(), "secret")
	secret, err := agent.WriteSecret(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(secretFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v", fi.Mode().Perm())
	}
	ln, err := agent.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler(secret)}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	resp, err := http.Get(base + "/v1/token?profile=p")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no secret: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", base+"/v1/token?profile=p", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("with the secret: %d", resp.StatusCode)
	}
	resp, _ = http.Get(base + "/healthz")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz without the secret: %d", resp.StatusCode)
	}
}

func TestDPoPEndpoint(t *testing.T) {
	s := newSigner(t)
	dp, _ := assertion.NewDPoP(s, assertion.DPoPConfig{})
	a := agent.New(agent.Config{}, []*agent.Profile{{Name: "dpop", Client: &fakeSTS{dpop: dp}}, {Name: "bearer", Client: &fakeSTS{}}})
	defer a.Close()
	hc := unixClient(serve(t, a, ""))
	post := func(body string) (int, map[string]string) {
		resp, err := hc.Post("http://agent/v1/dpop", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &out)
		if strings.Contains(string(b), `"d"`) {
			t.Fatalf("response carries key material: %s", b)
		}
		return resp.StatusCode, out
	}
	st, out := post(`{"profile":"dpop","htm":"GET","htu":"https://api.example/v1/x?q=1","access_token":"tok"}`)
	if st != 200 {
		t.Fatalf("dpop: %d %v", st, out)
	}
	obj, err := jose.ParseSignedCompact(out["proof"], []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := obj.Verify(obj.Signatures[0].Protected.JSONWebKey)
	if err != nil {
		t.Fatalf("proof does not verify with its jwk: %v", err)
	}
	var c map[string]any
	json.Unmarshal(payload, &c)
	if c["htm"] != "GET" || c["htu"] != "https://api.example/v1/x" || c["ath"] != assertion.ATH("tok") {
		t.Fatalf("claims %v", c)
	}
	if obj.Signatures[0].Protected.JSONWebKey.KeyID != "" || !obj.Signatures[0].Protected.JSONWebKey.IsPublic() {
		t.Fatal("jwk header is not the bare public key")
	}
	if st, _ := post(`{"profile":"bearer","htm":"GET","htu":"https://x"}`); st != 400 {
		t.Fatalf("bearer profile: %d", st)
	}
	if st, _ := post(`{"profile":"nope","htm":"GET","htu":"https://x"}`); st != 404 {
		t.Fatalf("unknown profile: %d", st)
	}
	if st, _ := post(`{"profile":"dpop","htm":"GET","htu":"file:///etc/passwd"}`); st != 400 {
		t.Fatalf("non-http htu: %d", st)
	}
	if st, _ := post(`{"profile":"dpop","htm":"GE T","htu":"https://x"}`); st != 400 {
		t.Fatalf("bad htm: %d", st)
	}
}

// A key that will not sign (a disabled HSM key, say) is the agent's
// failure, not the caller's: 500, and logged.
func TestDPoPEndpointKeyFailure(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := signer.New(brokenKey{ec}, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	dp, _ := assertion.NewDPoP(s, assertion.DPoPConfig{})
	var logs strings.Builder
	var mu sync.Mutex
	a := agent.New(agent.Config{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))},
		[]*agent.Profile{{Name: "dpop", Client: &fakeSTS{dpop: dp}}})
	defer a.Close()
	hc := unixClient(serve(t, a, ""))
	resp, err := hc.Post("http://agent/v1/dpop", "application/json", strings.NewReader(`{"profile":"dpop","htm":"GET","htu":"https://api.example/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(logs.String(), "CKR_KEY_FUNCTION_NOT_PERMITTED") {
		t.Fatalf("status %d, log %q", resp.StatusCode, logs.String())
	}
}

type brokenKey struct{ *ecdsa.PrivateKey }

func (brokenKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("CKR_KEY_FUNCTION_NOT_PERMITTED")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestMetricsAndReload(t *testing.T) {
	f := &fakeSTS{}
	a := agent.New(agent.Config{}, []*agent.Profile{{Name: "p", Client: f, Fingerprint: "v1"}})
	defer a.Close()
	a.Metrics().SetKeyExpiry("p", time.Now().Add(30*24*time.Hour))
	hc := unixClient(serve(t, a, ""))
	getToken(hc, "p")
	getToken(hc, "p")
	resp, err := hc.Get("http://agent/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`jwkctl_agent_tokens_issued_total{profile="p"} 1`,
		`jwkctl_agent_cache_hits_total{profile="p"} 1`,
		`jwkctl_agent_sts_request_seconds_count{profile="p"} 1`,
		`jwkctl_agent_token_expiry_seconds{profile="p",scope=""}`,
		`jwkctl_agent_key_expiry_seconds{profile="p"} 2.59`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Same settings: the cached token survives a reload.
	a.Reload([]*agent.Profile{{Name: "p", Client: f, Fingerprint: "v1"}})
	if _, body, _ := getToken(hc, "p"); body["access_token"] != "token-1" || f.Calls() != 1 {
		t.Fatalf("after an unchanged reload: %v, %d calls", body, f.Calls())
	}
	// Changed settings (a new key after rotation): a new token.
	a.Reload([]*agent.Profile{{Name: "p", Client: f, Fingerprint: "v2"}})
	if _, body, _ := getToken(hc, "p"); body["access_token"] != "token-2" {
		t.Fatalf("after a changed reload: %v", body)
	}
	if st, _, _ := getToken(hc, "gone"); st != 404 {
		t.Fatalf("unknown profile: %d", st)
	}
}

// token.AgentSource, the Go client: an oauth2.TokenSource that caches, and
// DPoP proofs from the agent.
func TestAgentSource(t *testing.T) {
	s := newSigner(t)
	dp, _ := assertion.NewDPoP(s, assertion.DPoPConfig{})
	f := &fakeSTS{dpop: dp}
	a := agent.New(agent.Config{}, []*agent.Profile{{Name: "p", Client: f}})
	defer a.Close()
	sock := serve(t, a, "")
	src := &token.AgentSource{Addr: "unix:" + sock, Profile: "p"}
	t1, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := src.Token()
	if t1.AccessToken != "token-1" || t2 != t1 || !t1.Expiry.After(time.Now()) {
		t.Fatalf("tokens %v %v", t1, t2)
	}
	proof, err := src.Proof(context.Background(), "POST", "https://api.example/x", t1.AccessToken, "n")
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Verify(s.Public()); err != nil {
		t.Fatalf("proof is not signed by the profile's key: %v", err)
	}
	bad := &token.AgentSource{Addr: "unix:" + sock, Profile: "missing"}
	if _, err := bad.Token(); !errors.Is(err, token.ErrAgent) || !strings.Contains(err.Error(), "unknown profile") {
		t.Fatalf("unknown profile: %v", err)
	}
	down := &token.AgentSource{Addr: "unix:" + filepath.Join(t.TempDir(), "none.sock"), Profile: "p"}
	if _, err := down.Token(); err == nil || !strings.Contains(err.Error(), "is `jwkctl serve` running?") {
		t.Fatalf("no agent: %v", err)
	}
}

// /healthz answers probes without the secret, but only callers with it
// (or on the socket) learn the profile names.
func TestHealthzNamesProfilesOnlyToAuthorizedCallers(t *testing.T) {
	a := agent.New(agent.Config{}, []*agent.Profile{{Name: "epj-secret-profile", Client: &fakeSTS{}}})
	defer a.Close()
	ln, err := agent.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler("the-secret")}
	go srv.Serve(ln)
	defer srv.Close()
	health := func(c *http.Client, base, auth string) (int, string) {
		req, _ := http.NewRequest("GET", base+"/healthz", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	base := "http://" + ln.Addr().String()
	for _, auth := range []string{"", "Bearer wrong", "Bearer the-secret-not"} {
		st, body := health(http.DefaultClient, base, auth)
		if st != 200 || !strings.Contains(body, `"status":"ok"`) || strings.Contains(body, "epj-secret-profile") || strings.Contains(body, "profiles") {
			t.Fatalf("healthz with %q: %d %s", auth, st, body)
		}
	}
	if st, body := health(http.DefaultClient, base, "Bearer the-secret"); st != 200 || !strings.Contains(body, "epj-secret-profile") {
		t.Fatalf("healthz with the secret: %d %s", st, body)
	}
	if st, body := health(unixClient(serve(t, a, "")), "http://agent", ""); st != 200 || !strings.Contains(body, "epj-secret-profile") {
		t.Fatalf("healthz on the socket: %d %s", st, body)
	}
}

// A profile caches a bounded number of scope sets; one more gets a clear
// 429 instead of another background entry.
func TestTooManyScopeSets(t *testing.T) {
	f := &fakeSTS{}
	a := agent.New(agent.Config{MaxScopeSets: 2}, []*agent.Profile{{Name: "p", Client: f}})
	defer a.Close()
	hc := unixClient(serve(t, a, ""))
	for i, scope := range []string{"a", "b", "c"} {
		resp, err := hc.Get("http://agent/v1/token?profile=p&scope=" + scope)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if i < 2 && resp.StatusCode != 200 {
			t.Fatalf("scope %s: %d %v", scope, resp.StatusCode, body)
		}
		if i == 2 && (resp.StatusCode != 429 || body["error"] != "too_many_scope_sets" || !strings.Contains(body["reason"], "profile p")) {
			t.Fatalf("one scope set too many: %d %v", resp.StatusCode, body)
		}
	}
	if f.Calls() != 2 {
		t.Fatalf("%d STS calls, want 2", f.Calls())
	}
}

// An abstract unix socket has no file permissions: refused.
func TestListenRefusesAbstractSockets(t *testing.T) {
	for _, addr := range []string{"unix:", "unix:@jwkctl"} {
		if ln, err := agent.Listen(addr, ""); err == nil {
			ln.Close()
			t.Errorf("%s accepted", addr)
		} else if !strings.Contains(err.Error(), "abstract socket") {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

// A scope the client lacks is the caller's mistake: 400 invalid_scope,
// not 503 with Retry-After.
func TestTokenEndpointInvalidScopeIs400(t *testing.T) {
	f := &fakeSTS{fail: &token.Error{Status: 400, Code: "invalid_scope", Description: "no such scope"}}
	a := agent.New(agent.Config{}, []*agent.Profile{{Name: "p", Client: f}})
	defer a.Close()
	hc := unixClient(serve(t, a, ""))
	resp, err := hc.Get("http://agent/v1/token?profile=p&scope=nhn:nope/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// An authorized /healthz and the metrics name the kid each profile signs
// with, and follow a reload; a probe without the secret learns neither.
func TestHealthzAndMetricsReportSigningKeys(t *testing.T) {
	m := agent.NewMetrics()
	a := agent.New(agent.Config{Metrics: m}, []*agent.Profile{{Name: "prod", Client: &fakeSTS{}, KeyID: "kid-old"}, {Name: "other", Client: &fakeSTS{}, KeyID: "kid-other"}})
	defer a.Close()
	ln, err := agent.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler("the-secret")}
	go srv.Serve(ln)
	defer srv.Close()
	get := func(path, auth string) string {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var h agent.Health
	if err := json.Unmarshal([]byte(get("/healthz", "Bearer the-secret")), &h); err != nil || h.SigningKeys["prod"] != "kid-old" || h.SigningKeys["other"] != "kid-other" {
		t.Fatalf("healthz with the secret: %v %+v", err, h)
	}
	if body := get("/healthz", ""); strings.Contains(body, "kid-") || strings.Contains(body, "signing_keys") {
		t.Fatalf("healthz without the secret names keys: %s", body)
	}
	metrics := get("/metrics", "Bearer the-secret")
	for _, w := range []string{`jwkctl_agent_signing_key_info{kid="kid-old",profile="prod"} 1`, `jwkctl_agent_signing_key_info{kid="kid-other",profile="other"} 1`} {
		if !strings.Contains(metrics, w) {
			t.Errorf("metrics lack %s:\n%s", w, metrics)
		}
	}
	a.Reload([]*agent.Profile{{Name: "prod", Client: &fakeSTS{}, KeyID: "kid-new"}})
	metrics = get("/metrics", "Bearer the-secret")
	if !strings.Contains(metrics, `jwkctl_agent_signing_key_info{kid="kid-new",profile="prod"} 1`) || strings.Contains(metrics, "kid-old") || strings.Contains(metrics, "kid-other") {
		t.Errorf("metrics after reload:\n%s", metrics)
	}
	h = agent.Health{}
	if err := json.Unmarshal([]byte(get("/healthz", "Bearer the-secret")), &h); err != nil || len(h.SigningKeys) != 1 || h.SigningKeys["prod"] != "kid-new" {
		t.Fatalf("healthz after reload: %v %+v", err, h)
	}
}
