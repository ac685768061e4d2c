package file_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/file"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/signer/signertest"
)

func init() { file.PBES2Count = 1000 } // keep tests fast; production uses 210,000

var ctx = context.Background()

func uri(t *testing.T, p string) *keystore.URI {
	t.Helper()
	return &keystore.URI{Scheme: keystore.SchemeFile, Path: p}
}

func generate(t *testing.T, path string, alg jose.SignatureAlgorithm, bits int, pass []byte) keystore.Key {
	t.Helper()
	spec, err := keystore.SpecFor(alg, bits)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: uri(t, path), Spec: spec, Options: keystore.Options{Passphrase: pass}})
	if err != nil {
		t.Fatalf("generate %s: %v", path, err)
	}
	return k
}

func TestGenerateWritesPrivateJWK0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "keys")
	for _, tc := range []struct {
		alg  jose.SignatureAlgorithm
		bits int
		kty  string
	}{
		{jose.PS256, 2048, "RSA"},
		{jose.RS256, 3072, "RSA"},
		{jose.ES256, 0, "EC"},
		{jose.ES384, 0, "EC"},
		{jose.ES512, 0, "EC"},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			path := filepath.Join(dir, string(tc.alg)+".json")
			k := generate(t, path, tc.alg, tc.bits, nil)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
			}
			di, _ := os.Stat(dir)
			if di.Mode().Perm() != 0o700 {
				t.Errorf("key dir mode %04o, want 0700", di.Mode().Perm())
			}
			data, _ := os.ReadFile(path)
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("key file is not JSON: %v", err)
			}
			kid, _ := signer.Thumbprint(k.Public())
			if m["kty"] != tc.kty || m["d"] == nil || m["kid"] != kid || m["alg"] != string(tc.alg) || m["use"] != "sig" {
				t.Errorf("key file members kty=%v kid=%v alg=%v use=%v d? %v", m["kty"], m["kid"], m["alg"], m["use"], m["d"] != nil)
			}
			// go-jose, an independent reader, sees the same private key.
			var jwk jose.JSONWebKey
			if err := json.Unmarshal(data, &jwk); err != nil || jwk.IsPublic() {
				t.Fatalf("go-jose cannot read a private key from the file: %v", err)
			}
			opened, err := keystore.Open(ctx, "file:"+path, keystore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if kid2, _ := signer.Thumbprint(opened.Public()); kid2 != kid {
				t.Errorf("reopened key has kid %s, want %s", kid2, kid)
			}
		})
	}
}

func TestRSA4096Default(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA-4096 generation is slow")
	}
	spec, err := keystore.SpecFor(keystore.DefaultAlg, 0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "default.json")
	k, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: uri(t, path), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if n := k.Public().(*rsa.PublicKey).N.BitLen(); n != 4096 {
		t.Fatalf("default key has %d bits, want 4096", n)
	}
}

func TestNeverOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.json")
	generate(t, path, jose.ES256, 0, nil)
	before, _ := os.ReadFile(path)
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	_, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: uri(t, path), Spec: spec})
	if !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("second generate: %v, want ErrExists", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = keystore.Import(ctx, keystore.ImportRequest{URI: uri(t, path), Private: other})
	if !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("import over a key: %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("existing key file changed")
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want just the key", len(entries))
	}
}

func TestConcurrentGenerateOneWins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "race.json")
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	var wg sync.WaitGroup
	results := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: uri(t, path), Spec: spec})
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, keystore.ErrExists):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d generates succeeded, want exactly 1", ok)
	}
	if _, err := keystore.Open(ctx, "file:"+path, keystore.Options{}); err != nil {
		t.Fatalf("the winner's key does not open: %v", err)
	}
}

func TestInsecureModeRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.json")
	generate(t, path, jose.ES256, 0, nil)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := keystore.Open(ctx, "file:"+path, keystore.Options{})
		if !errors.Is(err, keystore.ErrInsecure) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: %v, want ErrInsecure with the chmod fix", mode, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := keystore.Open(ctx, "file:"+filepath.Join(dir, "missing.json"), keystore.Options{})
	if !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("missing file: %v, want ErrNotFound", err)
	}
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte(`{"kty":"RSA","n":"secretish`), 0o600)
	_, err = keystore.Open(ctx, "file:"+garbage, keystore.Options{})
	if err == nil || strings.Contains(err.Error(), "secretish") {
		t.Errorf("garbage file: %v (must fail without quoting the file)", err)
	}
}

func TestEncryptedKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enc.json")
	pass := []byte("correct horse battery staple")
	k := generate(t, path, jose.ES256, 0, pass)
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte(`"d"`)) || bytes.Count(data, []byte(".")) != 4 {
		t.Fatalf("encrypted key file is not a compact JWE: %.60s…", data)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(string(data), ".", 2)[0])
	var h map[string]any
	json.Unmarshal(hdr, &h)
	if h["alg"] != "PBES2-HS512+A256KW" || h["enc"] != "A256GCM" || h["cty"] != "jwk+json" {
		t.Errorf("JWE header = %s", hdr)
	}
	// Decrypt independently with go-jose and the passphrase.
	obj, err := jose.ParseEncryptedCompact(strings.TrimSpace(string(data)), []jose.KeyAlgorithm{jose.PBES2_HS512_A256KW}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := obj.Decrypt(pass)
	if err != nil {
		t.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(plain, &jwk); err != nil || jwk.IsPublic() {
		t.Fatalf("the JWE does not hold a private JWK: %v", err)
	}
	if _, err := keystore.Open(ctx, "file:"+path, keystore.Options{}); !errors.Is(err, keystore.ErrPassphrase) || !strings.Contains(err.Error(), "JWKCTL_PASSPHRASE") {
		t.Errorf("open without passphrase: %v", err)
	}
	if _, err := keystore.Open(ctx, "file:"+path, keystore.Options{Passphrase: []byte("hunter2-not-it")}); !errors.Is(err, keystore.ErrPassphrase) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("open with a wrong passphrase: %v", err)
	}
	opened, err := keystore.Open(ctx, "file:"+path, keystore.Options{Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	if !opened.Public().(*ecdsa.PublicKey).Equal(k.Public()) {
		t.Fatal("decrypted key differs")
	}
}

func TestImportAndParsePrivateJWK(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"rsa2048.jwk", "p256.jwk", "selvbetjening-style.jwk", "single-key.jwks"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "keys", name))
			if err != nil {
				t.Fatal(err)
			}
			priv, _, err := file.ParsePrivateJWK(data)
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(dir, name+".json")
			k, err := keystore.Import(ctx, keystore.ImportRequest{URI: uri(t, dst), Private: priv})
			if err != nil {
				t.Fatal(err)
			}
			signertest.Run(t, k)
		})
	}
}

func TestParsePrivateJWKRejects(t *testing.T) {
	rsaData, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "keys", "rsa2048.jwk"))
	ecData, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "keys", "p256.jwk"))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallJWK, _ := json.Marshal(jose.JSONWebKey{Key: small})
	pubOnly := func(data []byte) []byte {
		var m map[string]any
		json.Unmarshal(data, &m)
		for _, k := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			delete(m, k)
		}
		b, _ := json.Marshal(m)
		return b
	}
	tamper := func(data []byte, member string) []byte {
		var m map[string]any
		json.Unmarshal(data, &m)
		raw, _ := base64.RawURLEncoding.DecodeString(m[member].(string))
		n := new(big.Int).SetBytes(raw)
		n.Add(n, big.NewInt(2))
		buf := make([]byte, len(raw))
		n.FillBytes(buf)
		m[member] = base64.RawURLEncoding.EncodeToString(buf)
		b, _ := json.Marshal(m)
		return b
	}
	for name, data := range map[string][]byte{
		"RSA-1024":           smallJWK,
		"public RSA":         pubOnly(rsaData),
		"public EC":          pubOnly(ecData),
		"RSA n tampered":     tamper(rsaData, "n"),
		"EC x tampered":      tamper(ecData, "x"),
		"not JSON":           []byte("-----BEGIN PRIVATE KEY-----"),
		"two keys in a JWKS": []byte(`{"keys":[` + string(rsaData) + `,` + string(ecData) + `]}`),
		"oct":                []byte(`{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}`),
		"Ed25519":            []byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}`),
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := file.ParsePrivateJWK(data); err == nil {
				t.Fatal("accepted")
			} else if strings.Contains(err.Error(), `"d"`+":") || strings.Contains(err.Error(), "[]uint8") {
				t.Fatalf("error quotes key material or a Go type: %v", err)
			} else if (name == "oct" || name == "Ed25519") && !strings.Contains(err.Error(), "cannot sign client assertions") {
				t.Fatalf("unclear: %v", err)
			}
		})
	}
}

func TestListAndDelete(t *testing.T) {
	dir := t.TempDir()
	a := generate(t, filepath.Join(dir, "a.json"), jose.ES256, 0, nil)
	generate(t, filepath.Join(dir, "b.json"), jose.ES384, 0, []byte("pw"))
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a key"), 0o600)
	infos, err := keystore.List(ctx, "file:"+dir+"/", keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("listed %d keys, want 2: %+v", len(infos), infos)
	}
	if infos[0].URI.Path != filepath.Join(dir, "a.json") || !a.Public().(*ecdsa.PublicKey).Equal(infos[0].Public) {
		t.Errorf("first entry %v", infos[0].URI)
	}
	if infos[1].State != "encrypted" || infos[1].Public != nil {
		t.Errorf("encrypted entry: state %q public %v", infos[1].State, infos[1].Public)
	}
	if err := keystore.Delete(ctx, "file:"+filepath.Join(dir, "a.json"), keystore.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.json")); !os.IsNotExist(err) {
		t.Fatal("key file still there after delete")
	}
	if err := keystore.Delete(ctx, "file:"+filepath.Join(dir, "a.json"), keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
}

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	t.Run("RSA-2048", func(t *testing.T) {
		signertest.Run(t, generate(t, filepath.Join(dir, "r.json"), jose.PS256, 2048, nil))
	})
	t.Run("P-256", func(t *testing.T) { signertest.Run(t, generate(t, filepath.Join(dir, "e.json"), jose.ES256, 0, nil)) })
}

// Delete removes key files only: any other file named by mistake stays.
func TestDeleteRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"config.yaml": "profiles: {}\n", "bad.json": "{not json", "public.json": `{"kty":"EC","crv":"P-256","x":"WECMQzAGqyDM-MWLBNFsPOxGNm5JyR6oe3zy-KOGk5U","y":"UA3Pv3LJBHpzCW8Rf1B8yqudGLjws2rgbXNIJ0rghvA"}`} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		err := keystore.Delete(ctx, "file:"+p, keystore.Options{})
		if err == nil || !strings.Contains(err.Error(), "not a key file") {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed", name)
		}
	}
	// An encrypted key file goes without its passphrase.
	generate(t, filepath.Join(dir, "enc.json"), jose.ES256, 0, []byte("pw"))
	if err := keystore.Delete(ctx, "file:"+filepath.Join(dir, "enc.json"), keystore.Options{}); err != nil {
		t.Fatal(err)
	}
}

// An import with a kid records it as the file's kid member (in plain and
// encrypted files), Open gives it back, and the signer signs with it;
// without one, the kid is the RFC 7638 thumbprint.
func TestImportRecordsKid(t *testing.T) {
	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := signer.Thumbprint(priv.Public())
	for _, tc := range []struct {
		name, kid, want string
		pass            []byte
	}{
		{"kept.json", "B64SHA1KidLike+/=", "B64SHA1KidLike+/=", nil},
		{"kept-encrypted.json", "0a1b2c3d", "0a1b2c3d", []byte("pass phrase")},
		{"thumbprint.json", "", tp, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			k, err := keystore.Import(ctx, keystore.ImportRequest{URI: uri(t, path), Private: priv, Kid: tc.kid, Options: keystore.Options{Passphrase: tc.pass}})
			if err != nil {
				t.Fatal(err)
			}
			opened, err := keystore.Open(ctx, "file:"+path, keystore.Options{Passphrase: tc.pass})
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range []keystore.Key{k, opened} {
				if got := key.(keystore.KidRecorder).RecordedKid(); got != tc.want {
					t.Errorf("RecordedKid = %q, want %q", got, tc.want)
				}
				s, err := signer.New(key, jose.ES256)
				if err != nil {
					t.Fatal(err)
				}
				if s.KeyID() != tc.want || s.Thumbprint() != tp {
					t.Errorf("signer kid %q thumbprint %q", s.KeyID(), s.Thumbprint())
				}
			}
			if tc.pass == nil {
				data, _ := os.ReadFile(path)
				var m map[string]any
				if json.Unmarshal(data, &m); m["kid"] != tc.want {
					t.Errorf("the file's kid member is %v, want %q", m["kid"], tc.want)
				}
			}
		})
	}
}

// TestParseKeyFileBOM: a JWK saved by an editor that writes a UTF-8 byte
// order mark still parses, with its kid.
func TestParseKeyFileBOM(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "keys", "selvbetjening-style.jwk"))
	if err != nil {
		t.Fatal(err)
	}
	var want jose.JSONWebKey
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	priv, alg, kid, err := file.ParseKeyFile(append([]byte("\xEF\xBB\xBF"), data...), nil, "k.json")
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Public().(*rsa.PublicKey).Equal(want.Public().Key) || kid != want.KeyID || string(alg) != want.Algorithm {
		t.Fatalf("got kid %q alg %q", kid, alg)
	}
}
