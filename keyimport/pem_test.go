package keyimport_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwkctl/jwkctl/keyimport"
	"github.com/jwkctl/jwkctl/keystore"
)

// openssl runs openssl in dir; the test is skipped where it is missing.
func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed; these tests check keyimport against it")
	}
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pubPEM is the SPKI PEM of the imported key, to compare byte for byte
// with what openssl pkey -pubout prints for the source.
func pubPEM(t *testing.T, p *keyimport.Parsed) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(p.Private.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

const testPass = "correct horse battery staple"

func TestParsePEMFromOpenSSL(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pass.txt"), []byte(testPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openssl(t, dir, "genrsa", "-traditional", "-out", "pkcs1.pem", "2048")
	openssl(t, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", "pkcs8-rsa.pem")
	openssl(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "pkcs8-ec.pem")
	openssl(t, dir, "ecparam", "-genkey", "-name", "secp384r1", "-out", "sec1.pem")
	openssl(t, dir, "ecparam", "-genkey", "-name", "secp521r1", "-noout", "-out", "sec1-noparams.pem")
	openssl(t, dir, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "pkcs8-rsa.pem", "-out", "enc-aes256.pem", "-passout", "file:pass.txt")
	openssl(t, dir, "pkcs8", "-topk8", "-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1", "-in", "sec1.pem", "-out", "enc-sha1.pem", "-passout", "file:pass.txt")
	openssl(t, dir, "pkcs8", "-topk8", "-scrypt", "-in", "pkcs8-ec.pem", "-out", "enc-scrypt.pem", "-passout", "file:pass.txt")
	openssl(t, dir, "pkcs8", "-topk8", "-nocrypt", "-in", "pkcs8-rsa.pem", "-outform", "DER", "-out", "pkcs8-rsa.der")
	openssl(t, dir, "pkey", "-in", "pkcs8-ec.pem", "-outform", "DER", "-out", "sec1-ec.der") // openssl writes EC DER as SEC1
	openssl(t, dir, "req", "-x509", "-new", "-key", "pkcs1.pem", "-subj", "/CN=jwkctl test", "-days", "1", "-out", "cert.pem")

	for _, tc := range []struct {
		file, source, format string
		pass                 bool
	}{
		{"pkcs1.pem", "pkcs1.pem", keyimport.FormatPKCS1, false},
		{"pkcs8-rsa.pem", "pkcs8-rsa.pem", keyimport.FormatPKCS8, false},
		{"pkcs8-ec.pem", "pkcs8-ec.pem", keyimport.FormatPKCS8, false},
		{"sec1.pem", "sec1.pem", keyimport.FormatSEC1, false},
		{"sec1-noparams.pem", "sec1-noparams.pem", keyimport.FormatSEC1, false},
		{"enc-aes256.pem", "pkcs8-rsa.pem", keyimport.FormatEncPKCS8, true},
		{"enc-sha1.pem", "sec1.pem", keyimport.FormatEncPKCS8, true},
		{"enc-scrypt.pem", "pkcs8-ec.pem", keyimport.FormatEncPKCS8, true},
		{"pkcs8-rsa.der", "pkcs8-rsa.pem", keyimport.FormatPKCS8DER, false},
		{"sec1-ec.der", "pkcs8-ec.pem", keyimport.FormatSEC1DER, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			openssl(t, dir, "pkey", "-in", tc.source, "-pubout", "-out", tc.source+".pub")
			want := read(t, filepath.Join(dir, tc.source+".pub"))
			var opts keyimport.Options
			if tc.pass {
				opts.Passphrase = []byte(testPass)
			}
			data := read(t, filepath.Join(dir, tc.file))
			variants := [][]byte{data}
			if !strings.HasSuffix(tc.file, ".der") {
				variants = append(variants, append([]byte(bom+"\n"), bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))...))
			}
			for _, variant := range variants {
				p, err := keyimport.Parse(variant, opts)
				if err != nil {
					t.Fatal(err)
				}
				if got := pubPEM(t, p); !bytes.Equal(got, want) {
					t.Fatalf("public key differs from openssl's:\n%s\nwant\n%s", got, want)
				}
				if p.Format != tc.format || p.Kid != "" || p.Alg != "" || len(p.Warnings) != 0 {
					t.Errorf("format %q kid %q alg %q warnings %q", p.Format, p.Kid, p.Alg, p.Warnings)
				}
			}
		})
	}

	t.Run("key beside its certificate", func(t *testing.T) {
		data := append(read(t, filepath.Join(dir, "cert.pem")), read(t, filepath.Join(dir, "pkcs1.pem"))...)
		p, err := keyimport.Parse(data, keyimport.Options{})
		if err != nil {
			t.Fatal(err)
		}
		openssl(t, dir, "pkey", "-in", "pkcs1.pem", "-pubout", "-out", "pkcs1.pub")
		if !bytes.Equal(pubPEM(t, p), read(t, filepath.Join(dir, "pkcs1.pub"))) {
			t.Fatal("public key differs from openssl's")
		}
	})

	t.Run("encrypted without or with a wrong passphrase", func(t *testing.T) {
		for _, f := range []string{"enc-aes256.pem", "enc-scrypt.pem"} {
			data := read(t, filepath.Join(dir, f))
			_, err := keyimport.Parse(data, keyimport.Options{})
			if !errors.Is(err, keyimport.ErrEncrypted) || !errors.Is(err, keystore.ErrPassphrase) {
				t.Fatalf("%s without passphrase: %v", f, err)
			}
			_, err = keyimport.Parse(data, keyimport.Options{Passphrase: []byte("wrong")})
			if errors.Is(err, keyimport.ErrEncrypted) || !errors.Is(err, keystore.ErrPassphrase) {
				t.Fatalf("%s with a wrong passphrase: %v", f, err)
			}
		}
	})
}

func TestParsePEMRejects(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pass.txt"), []byte(testPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openssl(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem")
	openssl(t, dir, "pkey", "-in", "ec.pem", "-pubout", "-out", "pub.pem")
	openssl(t, dir, "pkey", "-in", "ec.pem", "-pubout", "-outform", "DER", "-out", "pub.der")
	openssl(t, dir, "genrsa", "-traditional", "-out", "rsa.pem", "2048")
	openssl(t, dir, "rsa", "-in", "rsa.pem", "-RSAPublicKey_out", "-out", "rsapub.pem")
	openssl(t, dir, "req", "-x509", "-new", "-key", "ec.pem", "-subj", "/CN=jwkctl test", "-days", "1", "-out", "cert.pem")
	openssl(t, dir, "req", "-x509", "-new", "-key", "ec.pem", "-subj", "/CN=jwkctl test", "-days", "1", "-outform", "DER", "-out", "cert.der")
	openssl(t, dir, "req", "-new", "-key", "ec.pem", "-subj", "/CN=jwkctl test", "-out", "csr.pem")
	openssl(t, dir, "genpkey", "-algorithm", "ed25519", "-out", "ed25519.pem")
	openssl(t, dir, "genpkey", "-algorithm", "x25519", "-out", "x25519.pem")
	openssl(t, dir, "genrsa", "-traditional", "-out", "small.pem", "1024")
	openssl(t, dir, "genrsa", "-traditional", "-aes256", "-passout", "file:pass.txt", "-out", "legacy.pem", "2048")
	openssl(t, dir, "pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", "ec.pem", "-out", "pbes1.pem", "-passout", "file:pass.txt")
	openssl(t, dir, "ecparam", "-genkey", "-name", "secp256k1", "-noout", "-out", "k1.pem")
	both := append(read(t, filepath.Join(dir, "ec.pem")), read(t, filepath.Join(dir, "rsa.pem"))...)
	if err := os.WriteFile(filepath.Join(dir, "two.pem"), both, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		file string
		want error
		says string
	}{
		{"pub.pem", keyimport.ErrPublicKey, "this is a public key (SPKI PEM)"},
		{"pub.der", keyimport.ErrPublicKey, "this is a public key (SPKI DER)"},
		{"rsapub.pem", keyimport.ErrPublicKey, "this is a public key (PKCS#1 PEM)"},
		{"cert.pem", keyimport.ErrCertificate, "this is a PEM certificate, not a key"},
		{"cert.der", keyimport.ErrCertificate, "DER certificate"},
		{"csr.pem", keyimport.ErrCertificate, "certificate request"},
		{"ed25519.pem", keyimport.ErrUnsupportedKey, "an Ed25519 key cannot sign client assertions"},
		{"x25519.pem", keyimport.ErrUnsupportedKey, "X25519"},
		{"small.pem", keystore.ErrWeakKey, "1024 bits"},
		{"legacy.pem", keyimport.ErrUnknownFormat, "legacy encryption (Proc-Type: 4,ENCRYPTED)"},
		{"pbes1.pem", keyimport.ErrUnknownFormat, "PKCS#5 v1 or PKCS#12 encryption"},
		{"k1.pem", keyimport.ErrUnknownFormat, "SEC1 EC PEM whose contents do not parse"},
		{"two.pem", keyimport.ErrKid, "2 private keys"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := keyimport.Parse(read(t, filepath.Join(dir, tc.file)), keyimport.Options{Passphrase: []byte(testPass)})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Parse = %v; want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}
