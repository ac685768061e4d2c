package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// leanTags leave the three cloud backends out (commands/backend_*.go).
const leanTags = "jwkctl_no_gcpkms,jwkctl_no_awskms,jwkctl_no_azurekv"

// A lean build links none of the cloud SDKs, still signs with a file key,
// and says plainly that a cloud key URI has no backend in it.
func TestLeanBuildLeavesTheCloudBackendsOut(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "jwkctl")
	if out, err := exec.Command("go", "build", "-tags", leanTags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %s: %v\n%s", leanTags, err, out)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range info.Deps {
		for _, sdk := range []string{"github.com/aws/", "github.com/Azure/", "github.com/AzureAD/", "cloud.google.com/", "google.golang.org/"} {
			if strings.HasPrefix(d.Path, sdk) {
				t.Errorf("the lean build links %s", d.Path)
			}
		}
	}

	// A file key still signs: the assertion verifies with the key's public half.
	key := filepath.Join(dir, "p256.jwk")
	raw, err := os.ReadFile("testdata/keys/p256.jwk")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(raw, &jwk); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, bin, "assertion", "--key", "file:"+key, "--client-id", "lean", "--audience", "https://sts.example")
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	jws, err := jose.ParseSignedCompact(strings.TrimSpace(out), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(jwk.Public()); err != nil {
		t.Fatalf("the lean build's assertion does not verify with the public key: %v", err)
	}

	// A cloud key: one clear line, non-zero exit.
	for scheme, uri := range map[string]string{
		"awskms":  "awskms:///alias/helseid?region=eu-north-1",
		"gcpkms":  "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
		"azurekv": "azurekv://myvault.vault.azure.net/keys/helseid",
	} {
		_, err := run(t, bin, "keys", "public", "--key", uri)
		if err == nil {
			t.Fatalf("keys public --key %s succeeded in a build without %s", uri, scheme)
		}
		if msg := err.Error(); !strings.Contains(msg, `no "`+scheme+`" backend in this build`) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
			t.Errorf("keys public --key %s: want one line naming the missing backend, got %q", uri, msg)
		}
	}
	// Nor do its fakes stay behind as dev commands.
	help, err := run(t, bin, "dev", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, fake := range []string{"aws-kms", " kms ", "azure-kv"} {
		if strings.Contains(help, fake) {
			t.Errorf("jwkctl dev --help in the lean build lists %q:\n%s", fake, help)
		}
	}
}

// run runs bin and returns its stdout, or an error holding its stderr.
func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "JWKCTL_CONFIG="+filepath.Join(t.TempDir(), "none.yaml"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &runError{stderr.String()}
	}
	return stdout.String(), nil
}

type runError struct{ stderr string }

func (e *runError) Error() string { return e.stderr }
