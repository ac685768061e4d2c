package commands

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/keystore"
)

// testKey makes a P-256 key and returns its URI and public JWK.
func testKey(t *testing.T) (string, jose.JSONWebKey) {
	t.Helper()
	uri := "file:" + filepath.Join(t.TempDir(), "client.json")
	spec, err := keystore.SpecFor(jose.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keystore.Generate(t.Context(), keystore.GenerateRequest{URI: keystore.MustParse(uri), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	return uri, jose.JSONWebKey{Key: k.Public()}
}

// sts is a minimal HelseID-like token endpoint that verifies assertions
// with the public JWK, demands a DPoP nonce, and refuses a reused jti.
type sts struct {
	srv    *httptest.Server
	pub    jose.JSONWebKey
	mu     sync.Mutex
	jtis   map[string]bool
	tokens int
	// details holds each request's assertion_details as JSON ("null"
	// without).
	details []string
}

func newSTS(t *testing.T, pub jose.JSONWebKey) *sts {
	s := &sts{pub: pub, jtis: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q}`, s.srv.URL, s.srv.URL+"/connect/token")
			return
		}
		r.ParseForm()
		jws, err := jose.ParseSignedCompact(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Errorf("assertion: %v", err)
			return
		}
		payload, err := jws.Verify(s.pub)
		if err != nil {
			t.Errorf("assertion signature: %v", err)
			return
		}
		var c assertion.Claims
		json.Unmarshal(payload, &c)
		d, _ := json.Marshal(c.Details)
		s.mu.Lock()
		s.details = append(s.details, string(d))
		reused := s.jtis[c.ID]
		s.jtis[c.ID] = true
		s.mu.Unlock()
		if reused || c.Audience != s.srv.URL || c.Issuer != "cli-client" {
			t.Errorf("bad assertion: reused %v, aud %q, iss %q", reused, c.Audience, c.Issuer)
		}
		w.Header().Set("Content-Type", "application/json")
		tt := "Bearer"
		if proof := r.Header.Get("DPoP"); proof != "" {
			if !strings.Contains(decodePart(proof, 1), `"nonce":"n1"`) {
				w.Header().Set("DPoP-Nonce", "n1")
				w.WriteHeader(400)
				w.Write([]byte(`{"error":"use_dpop_nonce"}`))
				return
			}
			tt = "DPoP"
		}
		s.mu.Lock()
		s.tokens++
		n := s.tokens
		s.mu.Unlock()
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":%q,"expires_in":3600,"scope":%q}`, n, tt, r.PostForm.Get("scope"))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func decodePart(jwt string, i int) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	b, _ := base64URL(parts[i])
	return string(b)
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	app := App()
	app.Writer, app.ErrWriter = &out, &errb
	code = Main(app, append([]string{"jwkctl"}, args...))
	return out.String(), errb.String(), code
}

func TestTokenCommand(t *testing.T) {
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	key, pub := testKey(t)
	s := newSTS(t, pub)
	base := []string{"token", "--key", key, "--client-id", "cli-client", "--issuer", s.srv.URL, "--scope", "a b"}

	out, errs, code := runCLI(t, base...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var resp map[string]any
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp["access_token"] != "tok-1" || resp["scope"] != "a b" {
		t.Fatalf("stdout %q: %v", out, err)
	}

	out, _, code = runCLI(t, append(base, "--raw", "--dpop")...)
	if code != 0 || out != "tok-2\n" {
		t.Fatalf("--raw --dpop: exit %d, stdout %q", code, out)
	}

	cache := t.TempDir()
	for range 2 {
		if out, errs, code = runCLI(t, append(base, "--raw", "--cache", "--cache-dir", cache)...); code != 0 || out != "tok-3\n" {
			t.Fatalf("--cache: exit %d, stdout %q, stderr %q", code, out, errs)
		}
	}
	files, _ := filepath.Glob(filepath.Join(cache, "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	if st, _ := os.Stat(files[0]); st.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v", st.Mode().Perm())
	}

	_, errs, code = runCLI(t, "token", "--key", key, "--client-id", "cli-client", "--issuer", "http://helseid-sts.test.nhn.no")
	if code == 0 || !strings.HasPrefix(errs, "jwkctl: ") || !strings.Contains(errs, "https") || strings.Count(errs, "\n") != 1 {
		t.Errorf("insecure issuer: exit %d, stderr %q", code, errs)
	}
}

func TestCallCommand(t *testing.T) {
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	key, pub := testKey(t)
	s := newSTS(t, pub)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		claims := decodePart(r.Header.Get("DPoP"), 1)
		if scheme != "DPoP" || !strings.Contains(claims, `"ath":"`+assertion.ATH(tok)+`"`) || !strings.Contains(claims, `"htm":"`+r.Method+`"`) {
			w.WriteHeader(401)
			return
		}
		if r.URL.Path == "/missing" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			w.Write([]byte(`{"title":"not found"}`))
			return
		}
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		w.Header().Set("X-Test", "yes")
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b.String())
	}))
	defer api.Close()
	body := filepath.Join(t.TempDir(), "body.json")
	os.WriteFile(body, []byte(`{"x":1}`), 0o600)
	base := []string{"-v", "call", "--key", key, "--client-id", "cli-client", "--issuer", s.srv.URL, "--dpop"}

	out, errs, code := runCLI(t, append(base, "--data", "@"+body, api.URL+"/thing")...)
	if code != 0 || out != `POST /thing {"x":1}` {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if !strings.Contains(errs, "200 OK") || !strings.Contains(errs, "X-Test: yes") || strings.Contains(errs, "tok-") {
		t.Errorf("stderr with -v: %q", errs)
	}
	// -v after the command name works too.
	after := append([]string{"call", "-v"}, base[2:]...)
	if _, errs, code := runCLI(t, append(after, api.URL+"/thing")...); code != 0 || !strings.Contains(errs, "200 OK") {
		t.Errorf("call -v: exit %d, stderr %q", code, errs)
	}
	out, errs, code = runCLI(t, append(base, api.URL+"/missing")...)
	if code != 1 || out != `{"title":"not found"}` || !strings.Contains(errs, "jwkctl: call: GET "+api.URL+"/missing answered 404") {
		t.Errorf("404: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	_, errs, code = runCLI(t, append(base, "http://api.example.com/x")...)
	if code == 0 || !strings.Contains(errs, "insecure URL") {
		t.Errorf("plain http: exit %d, stderr %q", code, errs)
	}
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// token --agent takes the key and client settings from the agent's
// profile: flags for them on the command line are a usage error, not
// silently ignored; the same settings from the environment are ignored.
// Without the secret of a TCP agent, the error names --agent-secret-file.
func TestTokenAgentRefusesIgnoredFlags(t *testing.T) {
	dir := t.TempDir()
	cfg := agentConfig(t, dir)
	addr := freeLoopbackAddr(t)
	secretFile := filepath.Join(dir, "s", "agent.secret")
	if err := os.Mkdir(filepath.Dir(secretFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if log, listening, code := startServe(t, "--config", cfg, "--listen", addr, "--secret-file", secretFile); !listening {
		t.Fatalf("serve exited %d\n%s", code, log)
	}
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "none.yaml"))
	base := []string{"token", "--agent", addr, "--profile", "demo", "--agent-secret-file", secretFile}

	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{[]string{"--key", "file:other.json", "--client-id", "zz", "--dpop", "--raw"}, "--key, --client-id, --dpop do not go with --agent"},
		{[]string{"--dpop=false"}, "--dpop does not go with --agent"},
		{[]string{"--issuer", "https://sts.example"}, "--issuer does"},
		{[]string{"--config", cfg}, "--config does"},
		{[]string{"--cache"}, "--cache does"},
		{[]string{"--passphrase-file", "pass"}, "--passphrase-file does"},
	} {
		out, errOut, code := runCLI(t, append(base, tc.extra...)...)
		if code != ExitUsage || out != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "the agent's profile decides") {
			t.Errorf("token --agent %v: exit %d, stdout %d bytes, stderr %q", tc.extra, code, len(out), errOut)
		}
	}

	// Given in the environment only: ignored, the agent's profile decides.
	t.Setenv("JWKCTL_KEY", "file:other.json")
	t.Setenv("JWKCTL_CLIENT_ID", "zz")
	t.Setenv("JWKCTL_DPOP", "true")
	out, errOut, code := runCLI(t, append(base, "--raw", "--scope", devsts.DemoScope)...)
	if code != 0 || strings.Count(out, ".") != 2 {
		t.Fatalf("token --agent with JWKCTL_KEY set: exit %d, stdout %d bytes, %s", code, len(out), errOut)
	}
	// -v goes with --agent, and names the ignored variables (not itself).
	out, errOut, code = runCLI(t, append(base, "--raw", "-v")...)
	if code != 0 || out == "" || !strings.Contains(errOut, "JWKCTL_KEY") || strings.Contains(errOut, "JWKCTL_VERBOSE") {
		t.Fatalf("token --agent -v: exit %d, stderr %s", code, errOut)
	}
	// … unless also given on the command line.
	_, errOut, code = runCLI(t, append(base, "--key", "file:other.json")...)
	if code != ExitUsage || !strings.Contains(errOut, "--key does not go with --agent") {
		t.Fatalf("--key and JWKCTL_KEY: exit %d %s", code, errOut)
	}

	secret, _ := os.ReadFile(secretFile)
	_, errOut, code = runCLI(t, "token", "--agent", addr, "--profile", "demo")
	if code != 1 || !strings.Contains(errOut, "--agent-secret-file FILE (or JWKCTL_AGENT_SECRET_FILE)") || strings.Contains(errOut, "Authorization") {
		t.Errorf("no secret: exit %d %s", code, errOut)
	}
	wrong := filepath.Join(dir, "wrong.secret")
	if err := os.WriteFile(wrong, []byte("jwkctl-agent-secret-v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, "token", "--agent", addr, "--profile", "demo", "--agent-secret-file", wrong)
	if code != 1 || !strings.Contains(errOut, "refused the secret in "+wrong) || strings.Contains(errOut, "AAAA") {
		t.Errorf("wrong secret: exit %d %s", code, errOut)
	}
	// A file that is not an agent secret (here a key file) is never sent.
	notSecret := filepath.Join(dir, "key.json")
	if err := os.WriteFile(notSecret, []byte(`{"kty":"EC","d":"private-part"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, "token", "--agent", addr, "--profile", "demo", "--agent-secret-file", notSecret)
	if code != ExitUsage || !strings.Contains(errOut, "does not hold a jwkctl agent secret") || strings.Contains(errOut, "private-part") {
		t.Errorf("key file as the secret: exit %d %s", code, errOut)
	}
	if strings.Contains(errOut, strings.TrimSpace(string(secret))) {
		t.Error("the secret reached an error")
	}
}
