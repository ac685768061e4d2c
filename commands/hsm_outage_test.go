//go:build cgo

package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
)

// The only token on the module goes away under a running agent and comes
// back: the agent signs with it again by itself (DPoP proofs and the
// assertions of new token requests), without a SIGHUP. It runs in a fresh
// process with a token of its own, since the module is finalised and
// initialised again on the way.
func TestServeRecoversWhenHSMTokenReturns(t *testing.T) {
	if os.Getenv("JWKCTL_SERVE_OUTAGE_CHILD") != "1" {
		softhsmtest.Token(t) // skips (or fails) without SoftHSM2
		cmd := exec.Command(os.Args[0], "-test.run=^TestServeRecoversWhenHSMTokenReturns$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "JWKCTL_SERVE_OUTAGE_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestServeRecoversWhenHSMTokenReturns") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	tok := softhsmtest.Token(t) // this process's own token, the only one
	dir := t.TempDir()
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "none.yaml"))
	uri := tok.URI("agent-hsm")
	out, errOut, code := runCLI(t, "keys", "generate", "--key", uri, "--alg", "ES256")
	if code != 0 {
		t.Fatalf("keys generate: %s", errOut)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &jwk); err != nil {
		t.Fatal(err)
	}
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sts.EnableSelvbetjening()
	if err := sts.RegisterClient("hsm-agent", []jose.JSONWebKey{jwk}, []string{devsts.DemoScope, devsts.SelvbetjeningScope}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	if err := f.Set("hsm", &profile.Profile{Issuer: sts.Issuer(), ClientID: "hsm-agent", Key: uri, DPoP: new(true), Scopes: []string{devsts.DemoScope}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	if logs, ok, code := startServe(t, "--config", cfg, "--listen", "unix:"+sock); !ok {
		t.Fatalf("serve exited %d:\n%s", code, logs)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	// getToken asks for a token with these scopes: a scope set not asked
	// for before needs a new assertion, signed by the HSM.
	getToken := func(scopes ...string) (int, string) {
		t.Helper()
		resp, err := hc.Get("http://agent/v1/token?" + url.Values{"profile": {"hsm"}, "scope": {strings.Join(scopes, " ")}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// proof asks for a DPoP proof and checks it with the public JWK.
	proof := func() (int, string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"profile": "hsm", "htm": "GET", "htu": "https://api.example/x"})
		resp, err := hc.Post("http://agent/v1/dpop", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			var r struct{ Proof string }
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSignedCompact(r.Proof, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify(jwk.Public()); err != nil {
				t.Fatalf("the proof does not verify with the key's JWK: %v", err)
			}
		}
		return resp.StatusCode, string(b)
	}
	if st, body := getToken(devsts.DemoScope); st != http.StatusOK {
		t.Fatalf("token: %d %s", st, body)
	}
	if st, body := proof(); st != http.StatusOK {
		t.Fatalf("proof: %d %s", st, body)
	}

	ents, err := os.ReadDir(filepath.Join(tok.Dir, "tokens"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("token directory: %v %v", ents, err)
	}
	tokenDir := filepath.Join(tok.Dir, "tokens", ents[0].Name())
	away := filepath.Join(tok.Dir, "away")
	if err := os.Rename(tokenDir, away); err != nil {
		t.Fatal(err)
	}
	if st, body := proof(); st == http.StatusOK {
		t.Fatalf("a proof with the token gone: %d %s", st, body)
	}
	if st, body := getToken(devsts.SelvbetjeningScope); st != http.StatusServiceUnavailable {
		t.Fatalf("a new token with the token gone: %d %s", st, body)
	}
	if err := os.Rename(away, tokenDir); err != nil {
		t.Fatal(err)
	}

	// The agent tries the token again after a backoff (1 s at first); the
	// deadline only guards against a hang (and ends before startServe's).
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, body := proof()
		if st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the token is back, but the agent still fails: %d %s", st, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st, body := getToken(devsts.DemoScope, devsts.SelvbetjeningScope); st != http.StatusOK {
		t.Fatalf("a new token after the token came back: %d %s", st, body)
	}
}
