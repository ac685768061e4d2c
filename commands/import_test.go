package commands

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// snapshot is a directory's names and contents, to prove a failed import
// left it exactly as it was.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func names(m map[string]string) string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, " ")
}

// TestKeysImportRejects: each input that is no importable key fails with
// exit 1 and one line naming what it is, and the target directory is left
// byte for byte as it was: no key, no temporary file.
func TestKeysImportRejects(t *testing.T) {
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed; this test imports what it makes")
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	if err := os.Mkdir(store, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runCLI(t, "keys", "generate", "--key", "file:"+filepath.Join(store, "existing.json"), "--alg", "ES256"); code != 0 {
		t.Fatal(errs)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ossl := func(args ...string) {
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem")
	ossl("pkey", "-in", "ec.pem", "-pubout", "-out", "pub.pem")
	ossl("req", "-x509", "-new", "-key", "ec.pem", "-subj", "/CN=jwkctl test", "-days", "1", "-out", "cert.pem")
	ossl("genpkey", "-algorithm", "ed25519", "-out", "ed25519.pem")
	write("pass.txt", "correct-horse-battery-staple\n")
	ossl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "ec.pem", "-out", "enc.pem", "-passout", "file:pass.txt")

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwkBytes, _ := json.Marshal(jose.JSONWebKey{Key: ec, KeyID: "k"})
	jwk := string(jwkBytes)
	dl := func(set map[string]any) string {
		m := map[string]any{"clientName": "c", "authority": "https://helseid-sts.test.nhn.no", "clientId": "15f46f78-0000-4000-8000-000000000000",
			"grantTypes": []string{"client_credentials"}, "scopes": []string{"nhn:cp-api/access"}, "secretType": "private_key_jwt:RsaPrivateKeyJwtSecret",
			"rsaPrivateKey": nil, "rsaKeySizeBits": 4096, "privateJwk": jwk, "pkceRequired": false}
		for k, v := range set {
			if v == "-" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		return "\xEF\xBB\xBF" + string(b)
	}

	big := filepath.Join(dir, "big.json")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(100 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	fifo := filepath.Join(dir, "fifo")
	haveFIFO := syscall.Mkfifo(fifo, 0o600) == nil

	cases := []struct {
		name, from, says string
		skip             bool
	}{
		{"download without key", write("nokey.json", dl(map[string]any{"privateJwk": nil})), "a Selvbetjening download without a private key", false},
		{"download without clientId", write("noclient.json", dl(map[string]any{"clientId": "-"})), "has no clientId", false},
		{"privateJwk not JSON", write("notjson.json", dl(map[string]any{"privateJwk": "d=" + jwk[10:40]})), "privateJwk is not JSON", false},
		{"wrong type", write("wrongtype.json", dl(map[string]any{"grantTypes": "client_credentials"})), "grantTypes is a JSON string, not a list of strings", false},
		{"100 MB file", big, "holds more than 1 MiB", false},
		{"/dev/zero", "/dev/zero", "holds more than 1 MiB", !fileExists("/dev/zero")},
		{"FIFO", fifo, "holds more than 1 MiB", !haveFIFO},
		{"public key", filepath.Join(dir, "pub.pem"), "this is a public key (SPKI PEM)", false},
		{"certificate", filepath.Join(dir, "cert.pem"), "this is a PEM certificate, not a key", false},
		{"Ed25519", filepath.Join(dir, "ed25519.pem"), "an Ed25519 key cannot sign client assertions", false},
		{"oct", write("oct.jwk", `{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}`), "a symmetric (kty oct) key cannot sign client assertions", false},
		{"encrypted, no passphrase", filepath.Join(dir, "enc.pem"), "is an encrypted key file; give its passphrase with --from-passphrase-file", false},
		{"not a key", write("notes.txt", "remember the milk"), "not a key format jwkctl reads", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip {
				t.Skip("not on this system")
			}
			if tc.from == fifo {
				go func() {
					w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
					if err != nil {
						return
					}
					defer w.Close()
					chunk := make([]byte, 64<<10)
					for {
						if _, err := w.Write(chunk); err != nil {
							return
						}
					}
				}()
			}
			before := snapshot(t, store)
			stdout, stderr, code := runCLI(t, "keys", "import", "--key", "file:"+filepath.Join(store, "new.json"), "--from", tc.from)
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "jwkctl: ") || !strings.Contains(stderr, tc.says) {
				t.Fatalf("stderr %q; want one jwkctl: line saying %q", stderr, tc.says)
			}
			if strings.Contains(stderr, jwk[20:40]) {
				t.Fatalf("stderr quotes the key: %q", stderr)
			}
			if after := snapshot(t, store); names(after) != names(before) || after["existing.json"] != before["existing.json"] {
				t.Fatalf("target directory changed: %s -> %s", names(before), names(after))
			}
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
