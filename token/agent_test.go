package token_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwkctl/jwkctl/token"
)

// fakeAgent answers like `jwkctl serve` and counts what it gets.
func fakeAgent(t *testing.T, h http.HandlerFunc) (addr string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), hits
}

func agentToken(expiresIn string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/dpop" {
			w.Write([]byte(`{"proof":"p.r.oof"}`))
			return
		}
		w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":` + expiresIn + `}`))
	}
}

// The bearer secret goes over plain http, so a TCP address must be
// loopback; every entry point refuses before anything is sent.
func TestAgentSourceRefusesNonLoopback(t *testing.T) {
	addr, hits := fakeAgent(t, agentToken("3600"))
	_, port, _ := net.SplitHostPort(addr)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel() // nothing may wait for the network here
	for _, a := range []string{
		"10.255.255.1:80",
		"192.0.2.1:" + port,
		"[2001:db8::1]:80",
		"agent.example:80",
		"127.evil.example:" + port,
		"localhost.:" + port, // may resolve to 127.0.0.1, but is not "localhost"
	} {
		calls := map[string]func(*token.AgentSource) error{
			"Fetch": func(s *token.AgentSource) error { _, err := s.Fetch(cancelled); return err },
			"TokenContext": func(s *token.AgentSource) error {
				_, err := s.TokenContext(cancelled)
				return err
			},
			"Proof": func(s *token.AgentSource) error {
				_, err := s.Proof(cancelled, "GET", "https://api.example/", "", "")
				return err
			},
		}
		if strings.HasPrefix(a, "localhost.") {
			calls["Token"] = func(s *token.AgentSource) error { _, err := s.Token(); return err }
			calls["Fetch, live context"] = func(s *token.AgentSource) error { _, err := s.Fetch(context.Background()); return err }
		}
		for name, call := range calls {
			src := &token.AgentSource{Addr: a, Profile: "dev", Secret: testSecret}
			err := call(src)
			if !errors.Is(err, token.ErrAgent) || !strings.Contains(err.Error(), "not loopback") {
				t.Errorf("%s %s: %v, want a refusal of the non-loopback address", name, a, err)
			}
			if err != nil && strings.Contains(err.Error(), testSecret) {
				t.Errorf("%s %s: the error carries the secret", name, a)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the agent got %d requests through a non-loopback address", n)
	}
	for _, a := range []string{"", "127.0.0.1", "http://127.0.0.1:" + port, "unix:"} {
		src := &token.AgentSource{Addr: a, Profile: "dev"}
		if _, err := src.Fetch(context.Background()); !errors.Is(err, token.ErrAgent) || !strings.Contains(err.Error(), "want unix:") {
			t.Errorf("address %q: %v", a, err)
		}
	}
	// Loopback in its forms works.
	for _, a := range []string{addr, "localhost:" + port} {
		src := &token.AgentSource{Addr: a, Profile: "dev", Secret: testSecret}
		if _, err := src.Fetch(context.Background()); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
}

// Something else answering at the address gets a clear error, not a
// confusing one, and its body does not end up in the error.
func TestAgentSourceNotAnAgent(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"html page", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>welcome to nginx BODYTEXT</html>"))
		}},
		{"plain 404", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "404 page not found BODYTEXT", 404) }},
		{"json 404 of another API", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			w.Write([]byte(`{"message":"BODYTEXT"}`))
		}},
		{"json array", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`["BODYTEXT"]`))
		}},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := fakeAgent(t, tc.h)
			src := &token.AgentSource{Addr: addr, Profile: "dev"}
			_, err := src.Fetch(context.Background())
			_, perr := src.Proof(context.Background(), "GET", "https://api.example/", "", "")
			for _, err := range []error{err, perr} {
				if !errors.Is(err, token.ErrAgent) || !(strings.Contains(err.Error(), "not from a jwkctl agent") || strings.Contains(err.Error(), "never does")) {
					t.Errorf("%v, want a clear error", err)
				}
				if err != nil && strings.Contains(err.Error(), "BODYTEXT") {
					t.Errorf("the error carries the body: %v", err)
				}
			}
		})
	}
	// The agent's own refusals keep their words.
	addr, _ := fakeAgent(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(503)
		w.Write([]byte(`{"error":"token_unavailable","reason":"agent: no valid token for profile dev: invalid_scope"}`))
	})
	_, err := (&token.AgentSource{Addr: addr, Profile: "dev"}).Fetch(context.Background())
	if !errors.Is(err, token.ErrAgent) || !strings.Contains(err.Error(), "invalid_scope") || !strings.Contains(err.Error(), "token_unavailable") {
		t.Fatalf("agent refusal: %v", err)
	}
}

// A token that lives less than the local margin (15 s) is still reused
// for half its life instead of being fetched on every call.
func TestAgentSourceCachesShortLivedTokens(t *testing.T) {
	addr, hits := fakeAgent(t, agentToken("10"))
	src := &token.AgentSource{Addr: addr, Profile: "dev"}
	for range 3 {
		if tok, err := src.Token(); err != nil || tok.AccessToken != "at" {
			t.Fatal(tok, err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d requests to the agent for 3 calls, want 1", n)
	}
}

// A TCP agent's 401 is ErrAgentUnauthorized (and ErrAgent), so callers can
// tell the user how to give the secret; the secret never shows.
func TestAgentSourceUnauthorized(t *testing.T) {
	addr, _ := fakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+testSecret {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"unauthorized","reason":"send Authorization: Bearer <the content of the agent's --secret-file>"}`))
			return
		}
		w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":60}`))
	})
	for _, secret := range []string{"", otherSecret} {
		_, err := (&token.AgentSource{Addr: addr, Profile: "dev", Secret: secret}).Fetch(context.Background())
		if !errors.Is(err, token.ErrAgentUnauthorized) || !errors.Is(err, token.ErrAgent) || !strings.Contains(err.Error(), addr) {
			t.Errorf("secret %q: %v", secret, err)
		}
		if err != nil && secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("the secret reached the error: %v", err)
		}
	}
	if _, err := (&token.AgentSource{Addr: addr, Profile: "dev", Secret: testSecret}).Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Something that is not an agent secret (a key file's content, say) is
	// never sent.
	var got atomic.Int32
	probe, _ := fakeAgent(t, func(w http.ResponseWriter, r *http.Request) { got.Add(1) })
	for _, notSecret := range []string{`{"kty":"EC","d":"private"}`, "wrong-secret-value", token.AgentSecretPrefix + "short"} {
		_, err := (&token.AgentSource{Addr: probe, Profile: "dev", Secret: notSecret}).Fetch(context.Background())
		if err == nil || !strings.Contains(err.Error(), "not a jwkctl agent secret") || strings.Contains(err.Error(), notSecret) {
			t.Errorf("secret %q: %v", notSecret, err)
		}
	}
	if got.Load() != 0 {
		t.Fatalf("%d requests sent with a non-secret", got.Load())
	}
	// A 401 from something else is not the agent's.
	other, _ := fakeAgent(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "nope", http.StatusUnauthorized) })
	if _, err := (&token.AgentSource{Addr: other, Profile: "dev"}).Fetch(context.Background()); errors.Is(err, token.ErrAgentUnauthorized) {
		t.Errorf("a plain 401: %v", err)
	}
}

// Well-formed agent secrets for tests (not secret).
var (
	testSecret  = token.AgentSecretPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	otherSecret = token.AgentSecretPrefix + "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA"
)

// Secret may be the secret file's content as it is, newline included.
func TestAgentSourceSecretWithNewline(t *testing.T) {
	addr, _ := fakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+testSecret {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"unauthorized","reason":"x"}`))
			return
		}
		w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":60}`))
	})
	if _, err := (&token.AgentSource{Addr: addr, Profile: "dev", Secret: testSecret + "\n"}).Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A caller waiting for another caller's fetch stops at its own deadline.
func TestAgentSourceWaiterHonoursContext(t *testing.T) {
	release := make(chan struct{})
	addr, _ := fakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":60}`))
	})
	defer close(release)
	src := &token.AgentSource{Addr: addr, Profile: "dev", Secret: testSecret}
	first := make(chan struct{})
	go func() {
		close(first)
		src.TokenContext(context.Background()) // holds the fetch
	}()
	<-first
	time.Sleep(50 * time.Millisecond) // let the first caller start its fetch (not a timing assertion)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := src.TokenContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter: %v, want its own deadline", err)
	}
}

// SecretFile is read at every request, so a restarted agent's new secret
// is picked up without restarting the program.
func TestAgentSourceSecretFileReRead(t *testing.T) {
	var want atomic.Value
	want.Store(testSecret)
	addr, _ := fakeAgent(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+want.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"unauthorized","reason":"x"}`))
			return
		}
		w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":60}`))
	})
	file := filepath.Join(t.TempDir(), "agent.secret")
	os.WriteFile(file, []byte(testSecret+"\n"), 0o600)
	src := &token.AgentSource{Addr: addr, Profile: "dev", SecretFile: file}
	if _, err := src.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The agent restarts with a new secret.
	want.Store(otherSecret)
	os.WriteFile(file, []byte(otherSecret+"\n"), 0o600)
	if _, err := src.Fetch(context.Background()); err != nil {
		t.Fatalf("after the new secret: %v", err)
	}
	os.WriteFile(file, []byte(`{"kty":"EC","d":"x"}`), 0o600)
	if _, err := src.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "does not hold a jwkctl agent secret") {
		t.Fatalf("a key file as the secret file: %v", err)
	}
}
