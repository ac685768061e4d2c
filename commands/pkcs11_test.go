//go:build cgo

package commands

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
)

// The HSM path end to end, as a user runs it: generate inside SoftHSM2,
// export the public JWK, register it (the dev STS stands in for
// Selvbetjening and HelseID), and get a DPoP-bound token signed by the HSM.
func TestPKCS11GenerateThenToken(t *testing.T) {
	tok := softhsmtest.Token(t)
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	uri := tok.URI("cli-e2e")
	out, errOut, code := runCLI(t, "keys", "generate", "--key", uri, "--alg", "PS256", "--bits", "2048")
	if code != 0 {
		t.Fatalf("keys generate: %s", errOut)
	}
	if strings.Contains(errOut, tok.PIN) || strings.Contains(out, tok.PIN) {
		t.Fatal("the PIN was printed")
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &jwk); err != nil || !jwk.IsPublic() {
		t.Fatalf("keys generate printed no public JWK: %v\n%s", err, out)
	}
	_, errOut, code = runCLI(t, "keys", "generate", "--key", uri, "--alg", "ES256")
	if code == 0 || !strings.Contains(errOut, "already has a key labelled") {
		t.Fatalf("second generate with the same label: %d %s", code, errOut)
	}

	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := sts.RegisterClient("hsm-client", []jose.JSONWebKey{jwk}, []string{devsts.DemoScope}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI(t, "token", "--key", uri, "--client-id", "hsm-client", "--issuer", sts.Issuer(), "--scope", devsts.DemoScope, "--dpop")
	if code != 0 {
		t.Fatalf("jwkctl token with the HSM key: %s", errOut)
	}
	var resp map[string]any
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp["token_type"] != "DPoP" {
		t.Fatalf("token response %s (%v)", out, err)
	}
	out, _, code = runCLI(t, "keys", "list", "--key", tok.TokenURI())
	if code != 0 || !strings.Contains(out, "object=cli-e2e") || !strings.Contains(out, "non-extractable") {
		t.Fatalf("keys list:\n%s", out)
	}
}
