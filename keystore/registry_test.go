package keystore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	_ "github.com/jwkctl/jwkctl/keystore/file"
)

// minimal is a backend with none of the optional abilities.
type minimal struct{}

func (minimal) Scheme() string { return "gcpkms" }
func (minimal) Generate(context.Context, keystore.GenerateRequest) (keystore.Key, error) {
	return nil, errors.New("not used")
}
func (minimal) Open(context.Context, *keystore.URI, keystore.Options) (keystore.Key, error) {
	return nil, keystore.ErrNotFound
}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	_, err := keystore.Open(ctx, "pkcs11:token=t;object=o", keystore.Options{})
	if !errors.Is(err, keystore.ErrBackendUnavailable) || !strings.Contains(err.Error(), `"pkcs11"`) {
		t.Errorf("unregistered scheme: %v", err)
	}
	keystore.Register(minimal{})
	defer func() {
		if recover() == nil {
			t.Error("registering a scheme twice did not panic")
		}
	}()
	const u = "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"
	if _, err := keystore.Open(ctx, u, keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("Open through the registry: %v", err)
	}
	if _, err := keystore.List(ctx, u, keystore.Options{}); !errors.Is(err, keystore.ErrUnsupported) {
		t.Errorf("List on a non-Lister: %v", err)
	}
	if err := keystore.Delete(ctx, u, keystore.Options{}); !errors.Is(err, keystore.ErrUnsupported) {
		t.Errorf("Delete on a non-Deleter: %v", err)
	}
	if err := keystore.SetEnabled(ctx, u, false, keystore.Options{}); !errors.Is(err, keystore.ErrUnsupported) {
		t.Errorf("SetEnabled on a non-Disabler: %v", err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := keystore.Import(ctx, keystore.ImportRequest{URI: keystore.MustParse(u), Private: k}); !errors.Is(err, keystore.ErrUnsupported) {
		t.Errorf("Import on a non-Importer: %v", err)
	}
	keystore.Register(minimal{})
}

func TestSpecFor(t *testing.T) {
	tests := []struct {
		alg  jose.SignatureAlgorithm
		bits int
		want string // "" = error
	}{
		{jose.PS256, 0, "RSA-4096"},
		{jose.RS384, 2048, "RSA-2048"},
		{jose.PS512, 3072, "RSA-3072"},
		{jose.PS256, 1024, ""},
		{jose.PS256, 2047, ""},
		{jose.PS256, 8192, ""},
		{jose.ES256, 0, "EC P-256"},
		{jose.ES384, 0, "EC P-384"},
		{jose.ES512, 0, "EC P-521"},
		{jose.ES256, 2048, ""},
		{"HS256", 0, ""},
	}
	for _, tt := range tests {
		s, err := keystore.SpecFor(tt.alg, tt.bits)
		if tt.want == "" {
			if err == nil {
				t.Errorf("SpecFor(%s, %d) accepted", tt.alg, tt.bits)
			}
			continue
		}
		if err != nil || s.String() != tt.want || s.Alg != tt.alg {
			t.Errorf("SpecFor(%s, %d) = %v %v, want %s", tt.alg, tt.bits, s, err, tt.want)
		}
	}
}

func TestCheckPrivateKey(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if err := keystore.CheckPrivateKey(small); err == nil || !strings.Contains(err.Error(), "2048") {
		t.Errorf("RSA-1024: %v", err)
	}
	// Mismatched halves are tested through keystore/file's JWK import.
	a, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := keystore.CheckPrivateKey(a); err != nil {
		t.Errorf("good EC key: %v", err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err := keystore.CheckPrivateKey(p224); err == nil {
		t.Error("P-224 accepted")
	}
}

func TestCheckGenerateFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	u := keystore.MustParse("file:" + dir + "/k.json")
	if err := keystore.CheckGenerate(ctx, keystore.GenerateRequest{URI: u, Spec: spec}); err != nil {
		t.Fatalf("free name: %v", err)
	}
	if _, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: u, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if err := keystore.CheckGenerate(ctx, keystore.GenerateRequest{URI: u, Spec: spec}); !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("taken name: %v", err)
	}
	if err := keystore.CheckGenerate(ctx, keystore.GenerateRequest{URI: keystore.MustParse("file:" + dir + "/"), Spec: spec}); !errors.Is(err, keystore.ErrBadURI) {
		t.Fatalf("directory: %v", err)
	}
}
