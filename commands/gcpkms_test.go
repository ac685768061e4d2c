package commands

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/keystore/gcpkms"
	"github.com/jwkctl/jwkctl/keystore/gcpkms/fakekms"
)

// Cloud KMS end to end from the CLI: generate in the fake KMS, register
// the public JWK, get a DPoP-bound token signed by KMS.
func TestGCPKMSGenerateThenToken(t *testing.T) {
	gcpkms.PollInterval = time.Millisecond
	kms, addr, stop, err := fakekms.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	kms.SetFaults(fakekms.Faults{PendingPolls: 2})
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	t.Setenv("JWKCTL_KMS_ENDPOINT", addr)
	key := "gcpkms://projects/demo/locations/europe-north1/keyRings/jwkctl/cryptoKeys/helseid"
	out, errOut, code := runCLI(t, "keys", "generate", "--key", key, "--alg", "ES256", "--protection-level", "hsm")
	if code != 0 {
		t.Fatalf("keys generate: %s", errOut)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &jwk); err != nil || !jwk.IsPublic() {
		t.Fatalf("no public JWK: %v\n%s", err, out)
	}
	if !strings.Contains(errOut, key+"/cryptoKeyVersions/1 created") {
		t.Fatalf("stderr does not name the version: %s", errOut)
	}
	_, errOut, code = runCLI(t, "keys", "generate", "--key", key, "--alg", "ES512")
	if code == 0 || !strings.Contains(errOut, "no P-521") {
		t.Fatalf("ES512 on KMS: %d %s", code, errOut)
	}
	sts, stopSTS, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stopSTS()
	if err := sts.RegisterClient("kms-client", []jose.JSONWebKey{jwk}, []string{devsts.DemoScope}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI(t, "token", "--key", key+"/cryptoKeyVersions/1", "--client-id", "kms-client", "--issuer", sts.Issuer(), "--scope", devsts.DemoScope, "--dpop")
	if code != 0 {
		t.Fatalf("jwkctl token with the KMS key: %s", errOut)
	}
	var resp map[string]any
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp["token_type"] != "DPoP" {
		t.Fatalf("token response %s (%v)", out, err)
	}
	out, _, code = runCLI(t, "keys", "list", "--key", key)
	if code != 0 || !strings.Contains(out, "cryptoKeyVersions/1") || !strings.Contains(out, "ENABLED") {
		t.Fatalf("keys list:\n%s", out)
	}
	// Disable needs confirmation; disabled, the key cannot get a token;
	// enabled again, it can.
	v1 := key + "/cryptoKeyVersions/1"
	tokenArgs := []string{"token", "--key", v1, "--client-id", "kms-client", "--issuer", sts.Issuer(), "--scope", devsts.DemoScope, "--raw"}
	_, errOut, code = runCLI(t, "keys", "disable", "--key", v1)
	if code == 0 || !strings.Contains(errOut, "refusing to disable") {
		t.Fatalf("disable without --yes: %d %s", code, errOut)
	}
	if _, errOut, code = runCLI(t, "keys", "disable", "--key", v1, "--yes"); code != 0 {
		t.Fatalf("disable: %s", errOut)
	}
	out, _, _ = runCLI(t, "keys", "list", "--key", key)
	if !strings.Contains(out, "DISABLED") {
		t.Fatalf("keys list after disable:\n%s", out)
	}
	if _, errOut, code = runCLI(t, tokenArgs...); code == 0 || !strings.Contains(errOut, "not enabled") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("token with a disabled key: %d %q", code, errOut)
	}
	if _, errOut, code = runCLI(t, "keys", "enable", "--key", v1); code != 0 {
		t.Fatalf("enable: %s", errOut)
	}
	if out, errOut, code = runCLI(t, tokenArgs...); code != 0 || out == "" {
		t.Fatalf("token after enable: %d %s", code, errOut)
	}
}
