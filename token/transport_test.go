package token

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// resourceServer checks each request's token and DPoP proof (ath, htm,
// htu, nonce), and remembers proof jtis to catch replays.
type resourceServer struct {
	t        *testing.T
	srv      *httptest.Server
	nonce    string
	valid    func(token string) bool
	mu       sync.Mutex
	jtis     map[string]bool
	bodies   []string
	requests int
}

func newResourceServer(t *testing.T, dpop bool) *resourceServer {
	rs := &resourceServer{t: t, jtis: map[string]bool{}, valid: func(string) bool { return true }}
	rs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.requests++
		b, _ := io.ReadAll(r.Body)
		rs.bodies = append(rs.bodies, string(b))
		rs.mu.Unlock()
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !dpop {
			if scheme != "Bearer" || r.Header.Get("DPoP") != "" {
				t.Errorf("bearer request with %q and DPoP %q", scheme, r.Header.Get("DPoP"))
			}
		} else {
			if scheme != "DPoP" {
				t.Errorf("Authorization scheme %q, want DPoP", scheme)
			}
			p, err := verifyProof(r.Header.Get("DPoP"), r.Method, rs.srv.URL+r.URL.Path, tok)
			if err != nil {
				t.Errorf("resource server: %v", err)
				w.WriteHeader(401)
				return
			}
			rs.mu.Lock()
			replay := rs.jtis[p.ID]
			rs.jtis[p.ID] = true
			rs.mu.Unlock()
			if replay {
				t.Errorf("proof jti replayed")
			}
			if rs.nonce != "" && p.Nonce != rs.nonce {
				w.Header().Set("DPoP-Nonce", rs.nonce)
				w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
				w.WriteHeader(401)
				return
			}
		}
		if !rs.valid(tok) {
			w.Header().Set("WWW-Authenticate", scheme+` error="invalid_token"`)
			w.WriteHeader(401)
			return
		}
		w.Write([]byte("ok " + r.URL.Path))
	}))
	t.Cleanup(rs.srv.Close)
	return rs
}

func TestTransportDPoPWithNonceAndBodyReplay(t *testing.T) {
	f := newFakeSTS(t, false)
	cfg := f.config(t)
	cfg.DPoP = true
	src := NewSource(newClient(t, cfg))
	rs := newResourceServer(t, true)
	rs.nonce = "rs-nonce"
	hc := NewHTTPClient(src, nil)
	for i := range 2 {
		resp, err := hc.Post(rs.srv.URL+"/api/v1/thing?x=1", "application/json", strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok /api/v1/thing" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
	// First call: nonce-less try, then the retry; second call: nonce remembered.
	if rs.requests != 3 {
		t.Errorf("%d resource requests, want 3", rs.requests)
	}
	for _, b := range rs.bodies {
		if b != `{"a":1}` {
			t.Errorf("body %q was not replayed intact", b)
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d token requests, want 1 (cached)", n)
	}
}

func TestTransportBearerAndInvalidToken(t *testing.T) {
	f := newFakeSTS(t, false)
	src := NewSource(newClient(t, f.config(t)))
	rs := newResourceServer(t, false)
	rs.valid = func(tok string) bool { return tok != "at-1" } // the first token is revoked
	resp, err := NewHTTPClient(src, nil).Get(rs.srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || rs.requests != 2 || len(f.requests()) != 2 {
		t.Fatalf("status %d after %d resource and %d token requests; want 200, 2, 2", resp.StatusCode, rs.requests, len(f.requests()))
	}
}

func TestTransportRefusesInsecureAndForeignRedirect(t *testing.T) {
	f := newFakeSTS(t, false)
	src := NewSource(newClient(t, f.config(t)))
	hc := NewHTTPClient(src, nil)
	if _, err := hc.Get("http://api.example.com/x"); !errors.Is(err, ErrInsecureURL) {
		t.Errorf("plain http to a remote host: err = %v", err)
	}
	if len(f.requests()) != 0 {
		t.Error("a token was fetched for an insecure URL")
	}
	other := newResourceServer(t, false)
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.srv.URL+"/stolen", http.StatusFound)
	}))
	defer redir.Close()
	resp, err := hc.Get(redir.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || other.requests != 0 {
		t.Errorf("redirect to another origin followed (status %d, %d requests there)", resp.StatusCode, other.requests)
	}
}

func TestChallengeErrors(t *testing.T) {
	for in, want := range map[string][]string{
		`DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`: {"use_dpop_nonce"},
		`DPoP error=use_dpop_nonce`: {"use_dpop_nonce"},
		`Bearer realm="x", DPoP algs="ES256 PS256", error = "invalid_token"`:   {"invalid_token"},
		`DPoP error_description="error=use_dpop_nonce is not this", error="x"`: {"x"},
		`Bearer realm="a\"error=y"`:          nil,
		`Bearer realm="x error=y, z"`:        nil,
		`Basic, DPoP error="use_dpop_nonce"`: {"use_dpop_nonce"},
		`DPoP ERROR="use_dpop_nonce"`:        {"use_dpop_nonce"},
		`DPoP terror=use_dpop_nonce`:         nil,
		``:                                   nil,
	} {
		if got := challengeErrors(in); !slices.Equal(got, want) {
			t.Errorf("challengeErrors(%s) = %q, want %q", in, got, want)
		}
	}
}

// Nonces are remembered per origin; the default port is the same origin.
func TestOriginOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://H.example:443/connect/token": "https://h.example",
		"https://h.example/api?x=1":           "https://h.example",
		"http://127.0.0.1:80/x":               "http://127.0.0.1",
		"http://127.0.0.1:8080/x":             "http://127.0.0.1:8080",
		"https://[::1]:443/":                  "https://[::1]",
		"https://[::1]:8443/":                 "https://[::1]:8443",
	} {
		if got := originOf(in); got != want {
			t.Errorf("originOf(%s) = %s, want %s", in, got, want)
		}
	}
}

// Many requests refused for the same revoked token cost one new token,
// not one each: a refusal that arrives after another request already got
// the replacement does not throw the replacement away.
func TestTransportInvalidTokenResetsOnce(t *testing.T) {
	f := newFakeSTS(t, false)
	src := NewSource(newClient(t, f.config(t)))
	rs := newResourceServer(t, false)
	const n = 6
	var gate sync.WaitGroup
	gate.Add(n)
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	refused, accepted := 0, 0
	rs.valid = func(tok string) bool {
		if tok == "at-1" {
			gate.Done()
			gate.Wait() // all n requests carry the revoked token
			mu.Lock()
			k := refused
			refused++
			for accepted < k { // the k-th refusal comes after k retries got through
				cond.Wait()
			}
			mu.Unlock()
			return false
		}
		mu.Lock()
		accepted++
		cond.Broadcast()
		mu.Unlock()
		return true
	}
	if _, err := src.Token(); err != nil { // at-1, cached
		t.Fatal(err)
	}
	hc := NewHTTPClient(src, nil)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := hc.Get(rs.srv.URL + "/x")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if got := len(f.requests()); got != 2 {
		t.Fatalf("%d token requests, want 2 (the revoked one and one replacement)", got)
	}
}
