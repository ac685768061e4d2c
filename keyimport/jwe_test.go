package keyimport_test

import (
	"context"
	"crypto/elliptic"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keyimport"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/file"
)

// encrypt makes a JWE of plain with go-jose's encrypter, as step crypto
// jwk create and jwkctl do; json picks the JSON serialization.
func encrypt(t *testing.T, plain string, enc jose.ContentEncryption, json bool, rcpts ...jose.Recipient) string {
	t.Helper()
	opts := (&jose.EncrypterOptions{}).WithContentType("jwk+json")
	var e jose.Encrypter
	var err error
	if len(rcpts) == 1 {
		e, err = jose.NewEncrypter(enc, rcpts[0], opts)
	} else {
		e, err = jose.NewMultiEncrypter(enc, rcpts, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.Encrypt([]byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	if json {
		return obj.FullSerialize()
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pbes2(alg jose.KeyAlgorithm, pass string) jose.Recipient {
	return jose.Recipient{Algorithm: alg, Key: []byte(pass), PBES2Count: 1000}
}

func TestParseJWE(t *testing.T) {
	k := testRSA(t, 0)
	ec := testEC(t, elliptic.P521())
	ecJWK := privateJWK(t, ec, "step-kid", "ES512", "sig")
	rsaRecipient := jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: &testRSA(t, 1).PublicKey}
	for name, tc := range map[string]struct {
		data   string
		format string
		opts   keyimport.Options
		want   any
		kid    string
	}{
		"compact, as jwkctl writes": {encrypt(t, privateJWK(t, k, "", "PS256", "sig"), jose.A256GCM, false, pbes2(jose.PBES2_HS512_A256KW, testPass)) + "\n",
			keyimport.FormatJWECompact, keyimport.Options{}, &k.PublicKey, ""},
		"compact, CBC-HMAC": {encrypt(t, ecJWK, jose.A128CBC_HS256, false, pbes2(jose.PBES2_HS256_A128KW, testPass)),
			keyimport.FormatJWECompact, keyimport.Options{}, &ec.PublicKey, "step-kid"},
		"JSON flattened, as step writes": {encrypt(t, ecJWK, jose.A256GCM, true, pbes2(jose.PBES2_HS256_A128KW, testPass)),
			keyimport.FormatJWEJSON, keyimport.Options{}, &ec.PublicKey, "step-kid"},
		"JSON general, passphrase beside an RSA recipient": {bom + encrypt(t, ecJWK, jose.A256GCM, true, rsaRecipient, pbes2(jose.PBES2_HS384_A192KW, testPass)),
			keyimport.FormatJWEJSON, keyimport.Options{}, &ec.PublicKey, "step-kid"},
		"JSON general, second of two passphrases": {encrypt(t, ecJWK, jose.A256GCM, true, pbes2(jose.PBES2_HS256_A128KW, "another one"), pbes2(jose.PBES2_HS256_A128KW, testPass)),
			keyimport.FormatJWEJSON, keyimport.Options{}, &ec.PublicKey, "step-kid"},
		"JWK Set inside, picked by kid": {encrypt(t, `{"keys":[`+privateJWK(t, k, "r", "", "")+`,`+ecJWK+`]}`, jose.A256GCM, false, pbes2(jose.PBES2_HS256_A128KW, testPass)),
			keyimport.FormatJWECompact, keyimport.Options{Kid: "step-kid"}, &ec.PublicKey, "step-kid"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.opts.Passphrase = []byte(testPass)
			p, err := keyimport.Parse([]byte(tc.data), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			samePublic(t, p.Private, tc.want)
			if p.Format != tc.format || p.Kid != tc.kid {
				t.Errorf("format %q kid %q", p.Format, p.Kid)
			}
		})
	}
}

// TestParseJWKCTLEncryptedFile: jwkctl's own encrypted key files keep
// importing.
func TestParseJWKCTLEncryptedFile(t *testing.T) {
	defer func(n int) { file.PBES2Count = n }(file.PBES2Count)
	file.PBES2Count = 1000
	path := filepath.Join(t.TempDir(), "enc.json")
	u := &keystore.URI{Scheme: keystore.SchemeFile, Path: path}
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	key, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: u, Spec: spec, Options: keystore.Options{Passphrase: []byte(testPass)}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := keyimport.Parse(data, keyimport.Options{Passphrase: []byte(testPass)})
	if err != nil {
		t.Fatal(err)
	}
	samePublic(t, p.Private, key.Public())
	if p.Format != keyimport.FormatJWECompact || p.Alg != jose.ES256 {
		t.Errorf("format %q alg %q", p.Format, p.Alg)
	}
}

func TestParseJWERejects(t *testing.T) {
	k := testRSA(t, 0)
	jwk := privateJWK(t, k, "", "", "")
	toKey := encrypt(t, jwk, jose.A256GCM, true, jose.Recipient{Algorithm: jose.RSA_OAEP, Key: &testRSA(t, 1).PublicKey})
	dir := encrypt(t, jwk, jose.A128GCM, false, jose.Recipient{Algorithm: jose.DIRECT, Key: []byte("0123456789abcdef")})
	tooCostly := encrypt(t, jwk, jose.A128GCM, false, jose.Recipient{Algorithm: jose.PBES2_HS256_A128KW, Key: []byte(testPass), PBES2Count: 1_000_001})
	good := encrypt(t, jwk, jose.A256GCM, false, pbes2(jose.PBES2_HS512_A256KW, testPass))
	for _, tc := range []struct {
		name, data, pass string
		want             error
		says             string
	}{
		{"no passphrase", good, "", keyimport.ErrEncrypted, "encrypted"},
		{"no passphrase, JSON", encrypt(t, jwk, jose.A256GCM, true, pbes2(jose.PBES2_HS512_A256KW, testPass)), "", keystore.ErrPassphrase, "JWE (JSON)"},
		{"wrong passphrase", good, "wrong", keystore.ErrPassphrase, "cannot decrypt the JWE (compact)"},
		{"encrypted to an RSA key", toKey, testPass, keyimport.ErrUnknownFormat, `encrypted to a key (alg "RSA-OAEP")`},
		{"direct key", dir, testPass, keyimport.ErrUnknownFormat, `encrypted to a key (alg "dir")`},
		{"p2c over go-jose's bound", tooCostly, testPass, keyimport.ErrUnknownFormat, "1000001 PBES2 iterations"},
		{"holds text", encrypt(t, "hello", jose.A256GCM, false, pbes2(jose.PBES2_HS256_A128KW, testPass)), testPass, keyimport.ErrUnknownFormat, "JWE (compact)'s content"},
		{"holds a public JWK", encrypt(t, privateJWK(t, &k.PublicKey, "", "", ""), jose.A256GCM, false, pbes2(jose.PBES2_HS256_A128KW, testPass)), testPass, keyimport.ErrPublicKey, "public JWK (kty RSA"},
		{"cut short", good[:len(good)-30] + "." + "AAAA", testPass, nil, "JWE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pass []byte
			if tc.pass != "" {
				pass = []byte(tc.pass)
			}
			_, err := keyimport.Parse([]byte(tc.data), keyimport.Options{Passphrase: pass})
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Parse = %v; want %v saying %q", err, tc.want, tc.says)
			}
			noSecret(t, err, b64u(k.D), testPass)
		})
	}
}
