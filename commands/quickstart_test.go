package commands

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
)

func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := runCLI(t, "quickstart", "--keep", dir)
	if code != 0 {
		t.Fatalf("quickstart exit %d: %s", code, errOut)
	}
	var sum struct {
		Kid, TokenType, Scope string
		ExpiresIn             int64  `json:"expires_in"`
		AccessToken           string `json:"access_token"`
		APIResponse           struct {
			HerID     string `json:"herId"`
			DPoPBound bool   `json:"dpopBound"`
			CalledBy  string `json:"calledBy"`
		} `json:"api_response"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if sum.APIResponse.HerID != "8093400" || !sum.APIResponse.DPoPBound || sum.APIResponse.CalledBy != quickstartClient || sum.ExpiresIn <= 0 {
		t.Errorf("summary %+v", sum)
	}
	if sum.AccessToken != "" || strings.Contains(out, "eyJ") {
		t.Error("stdout carries a token without --show-token")
	}
	for i, step := range []string{"Generate a keypair", "Export the public JWK", "Register the public key", "Sign a client assertion", "Get a DPoP-bound access token", "Call a protected API"} {
		if !strings.Contains(errOut, string(rune('1'+i))+". "+step) {
			t.Errorf("narration lacks step %d %q", i+1, step)
		}
	}
	// The narration shows decoded claims but never a usable JWS.
	if strings.Count(errOut, "eyJ") > 0 {
		t.Error("stderr shows an encoded JWT")
	}
	// --keep leaves a valid key whose kid is the one reported.
	k, err := keystore.Open(t.Context(), "file:"+filepath.Join(dir, "quickstart-client.json"), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if kid := mustThumbprint(t, k); kid != sum.Kid {
		t.Errorf("kept key kid %s, summary says %s", kid, sum.Kid)
	}
}

func TestParseClientSpec(t *testing.T) {
	dir := t.TempDir()
	_, pub := testKey(t)
	b, _ := json.Marshal(pub)
	path := filepath.Join(dir, "pub.jwk")
	os.WriteFile(path, b, 0o644)
	id, keys, scopes, err := parseClientSpec("demo=" + path + ":nhn:demo-api/read nhn:cp-api/access")
	if err != nil || id != "demo" || len(keys) != 1 || strings.Join(scopes, "|") != "nhn:demo-api/read|nhn:cp-api/access" {
		t.Fatalf("got %q %d %q %v", id, len(keys), scopes, err)
	}
	for _, bad := range []string{"demo", "=x", "demo=" + filepath.Join(dir, "missing.jwk")} {
		if _, _, _, err := parseClientSpec(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	_, _, code := runCLI(t, "dev", "sts", "--listen", "0.0.0.0:0", "--client", "demo="+path)
	if code == 0 {
		t.Error("dev sts listened on a non-loopback address")
	}
}

func mustThumbprint(t *testing.T, k keystore.Key) string {
	t.Helper()
	kid, err := signer.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return kid
}
