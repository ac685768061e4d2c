package commands

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/azurekv"
)

// The fakes hold keys anyone connecting could use: they never listen off
// loopback.
func TestDevKMSFakesListenOnLoopbackOnly(t *testing.T) {
	for name, service := range map[string]string{"kms": "Cloud KMS", "aws-kms": "AWS KMS", "azure-kv": "Azure Key Vault"} {
		_, errOut, code := runCLI(t, "dev", name, "--listen", "192.0.2.1:9010")
		if code != 1 || !strings.Contains(errOut, "the fake "+service+" listens on loopback only") {
			t.Errorf("dev %s --listen 192.0.2.1:9010: exit %d, %q", name, code, errOut)
		}
	}
}

// jwkctl dev azure-kv serves a Key Vault fake over TLS and writes its test
// CA where it says; a client trusting only that CA makes and signs with a
// key in it. The CA file goes when the fake stops, and --ca-out never
// overwrites a file.
func TestDevAzureKV(t *testing.T) {
	dir := t.TempDir()
	taken := filepath.Join(dir, "taken.pem")
	os.WriteFile(taken, []byte("keep me"), 0o600)
	if _, errOut, code := runCLI(t, "dev", "azure-kv", "--listen", "127.0.0.1:0", "--ca-out", taken); code == 0 || !strings.Contains(errOut, "the file exists") {
		t.Fatalf("--ca-out onto an existing file: exit %d, %q", code, errOut)
	}
	if b, _ := os.ReadFile(taken); string(b) != "keep me" {
		t.Fatalf("--ca-out overwrote an existing file: %q", b)
	}

	ca := filepath.Join(dir, "ca.pem")
	app := App()
	// The command's stderr, read line by line until it says where it
	// listens; the rest is drained so the command never blocks on it.
	pr, pw := io.Pipe()
	app.Writer, app.ErrWriter = io.Discard, pw
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := app.RunContext(ctx, []string{"jwkctl", "dev", "azure-kv", "--listen", "127.0.0.1:0", "--ca-out", ca})
		pw.CloseWithError(fmt.Errorf("dev azure-kv returned %v", err))
		done <- err
	}()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	defer stop()
	var said, endpoint string
	sc := bufio.NewScanner(pr)
	for endpoint == "" && sc.Scan() {
		said += sc.Text() + "\n"
		if _, rest, ok := strings.Cut(sc.Text(), "use --kms-endpoint "); ok {
			endpoint = rest
		}
	}
	if endpoint == "" {
		t.Fatalf("the fake did not say where it listens: %q %v", said, sc.Err())
	}
	go io.Copy(io.Discard, pr)
	if !strings.HasPrefix(endpoint, "https://127.0.0.1:") || !strings.Contains(said, "SSL_CERT_FILE="+ca) {
		t.Fatalf("dev azure-kv said %q", said)
	}
	pemBytes, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no certificate", ca)
	}
	b, err := keystore.Lookup(keystore.SchemeAzureKV)
	if err != nil {
		t.Fatal(err)
	}
	ab := b.(*azurekv.Backend)
	ab.Reset()
	ab.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(func() { ab.Reset(); ab.HTTPClient = nil })

	opts := keystore.Options{Endpoint: endpoint}
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	key, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse("azurekv://demo.vault.azure.net/keys/helseid"), Spec: spec, Options: opts})
	if err != nil {
		t.Fatalf("generate in the fake trusting only the CA it wrote: %v", err)
	}
	digest := sha256.Sum256([]byte("signed by the fake vault"))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(key.Public().(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("the fake vault's signature does not verify with the key's public half")
	}

	if err := stop(); err != nil {
		t.Fatalf("dev azure-kv stopped with %v", err)
	}
	if _, err := os.Stat(ca); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the CA file is still there after the fake stopped: %v", err)
	}
}
