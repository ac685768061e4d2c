// Package interop checks jwkctl against an independent, standards-compliant
// authorization server (panva/oidc-provider on Node.js): its client
// assertions (RFC 7523) and DPoP proofs (RFC 9449, with server nonces) must
// be accepted by code we did not write.
package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/commands"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/token"
)

const scope = "api:read"

// startProvider runs server.mjs for one client and returns its issuer.
func startProvider(t *testing.T, clientID string, jwks jose.JSONWebKeySet) string {
	t.Helper()
	node, err := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join("node_modules", "oidc-provider", "package.json"))
	if err != nil || modErr != nil {
		if os.Getenv("JWKCTL_REQUIRE_INTEROP") == "1" {
			t.Fatalf("interop: need node and `npm ci` in interop/ (node: %v, oidc-provider: %v)", err, modErr)
		}
		t.Skip("interop: skipped: needs node and `npm ci` in interop/ (set JWKCTL_REQUIRE_INTEROP=1 to make this a failure)")
	}
	dir := t.TempDir()
	jwksFile := filepath.Join(dir, "client.jwks")
	b, _ := json.Marshal(jwks)
	if err := os.WriteFile(jwksFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, node, "server.mjs", strconv.Itoa(port), clientID, jwksFile, scope)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("oidc-provider stderr:\n%s", stderr.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if iss, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- iss
			}
		}
		close(ready)
	}()
	select {
	case iss, ok := <-ready:
		if !ok {
			t.Fatalf("oidc-provider exited: %s", stderr.String())
		}
		return iss
	case <-time.After(30 * time.Second):
		t.Fatalf("oidc-provider did not start: %s", stderr.String())
	}
	return ""
}

func newKey(t *testing.T, alg jose.SignatureAlgorithm, bits int) (string, *signer.Signer) {
	t.Helper()
	uri := "file:" + filepath.Join(t.TempDir(), "key.json")
	spec, err := keystore.SpecFor(alg, bits)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse(uri), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.New(k, alg)
	if err != nil {
		t.Fatal(err)
	}
	return uri, s
}

func TestLibraryAgainstOIDCProvider(t *testing.T) {
	for _, tc := range []struct {
		alg  jose.SignatureAlgorithm
		bits int
		dpop bool
	}{
		{jose.ES256, 0, true},
		{jose.PS256, 2048, true},
		{jose.RS256, 2048, false},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			_, s := newKey(t, tc.alg, tc.bits)
			iss := startProvider(t, "interop-"+strings.ToLower(string(tc.alg)), signer.JWKS(*s.Public()))
			c, err := token.NewClient(token.Config{Issuer: iss, ClientID: "interop-" + strings.ToLower(string(tc.alg)),
				Signer: s, DPoP: tc.dpop, Scopes: []string{scope}})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Exchange(context.Background(), token.Request{})
			if err != nil {
				t.Fatalf("oidc-provider refused jwkctl's request: %v", err)
			}
			want := "Bearer"
			if tc.dpop {
				want = "DPoP"
			}
			if resp.TokenType != want || resp.AccessToken == "" || resp.Scope != scope {
				t.Fatalf("token response %s", resp)
			}
			// A second exchange needs a new assertion; the server would
			// refuse a replayed jti.
			if _, err := c.Exchange(context.Background(), token.Request{}); err != nil {
				t.Fatalf("second exchange: %v", err)
			}
		})
	}
}

func TestCLIAgainstOIDCProvider(t *testing.T) {
	uri, s := newKey(t, jose.ES256, 0)
	iss := startProvider(t, "interop-cli", signer.JWKS(*s.Public()))
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	var out, errb bytes.Buffer
	app := commands.App()
	app.Writer, app.ErrWriter = &out, &errb
	code := commands.Main(app, []string{"jwkctl", "token", "--key", uri, "--client-id", "interop-cli", "--issuer", iss, "--scope", scope, "--dpop"})
	if code != 0 {
		t.Fatalf("jwkctl token exit %d: %s", code, errb.String())
	}
	var resp map[string]any
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
		t.Fatalf("stdout is not the token response: %v", err)
	}
	if resp["token_type"] != "DPoP" || resp["access_token"] == "" {
		t.Fatalf("response %v", resp)
	}
}
