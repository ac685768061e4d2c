package signer_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/signer/signertest"
)

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	ecKeys   map[string]*ecdsa.PrivateKey
)

func testKeys(t *testing.T) (*rsa.PrivateKey, map[string]*ecdsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		ecKeys = map[string]*ecdsa.PrivateKey{}
		for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
			k, err := ecdsa.GenerateKey(c, rand.Reader)
			if err != nil {
				panic(err)
			}
			ecKeys[c.Params().Name] = k
		}
	})
	return rsaKey, ecKeys
}

func TestConformanceStdlibKeys(t *testing.T) {
	rk, eks := testKeys(t)
	t.Run("RSA-2048", func(t *testing.T) { signertest.Run(t, rk) })
	for name, k := range eks {
		t.Run(name, func(t *testing.T) { signertest.Run(t, k) })
	}
}

func TestFits(t *testing.T) {
	rk, eks := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		alg  jose.SignatureAlgorithm
		pub  crypto.PublicKey
		ok   bool
		want string
	}{
		{jose.PS256, &rk.PublicKey, true, ""},
		{jose.RS512, &rk.PublicKey, true, ""},
		{jose.ES256, &rk.PublicKey, false, "needs an EC key"},
		{jose.PS256, &small.PublicKey, false, "at least 2048"},
		{jose.ES256, &eks["P-256"].PublicKey, true, ""},
		{jose.ES384, &eks["P-256"].PublicKey, false, "use ES256"},
		{jose.ES512, &eks["P-521"].PublicKey, true, ""},
		{jose.PS256, &eks["P-384"].PublicKey, false, "use ES384"},
		{"HS256", &rk.PublicKey, false, "unknown algorithm"},
		{"none", &eks["P-256"].PublicKey, false, "unknown algorithm"},
	}
	for _, tt := range tests {
		err := signer.Fits(tt.alg, tt.pub)
		if (err == nil) != tt.ok {
			t.Errorf("Fits(%s, %T) = %v, want ok=%v", tt.alg, tt.pub, err, tt.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, signer.ErrAlgMismatch) {
				t.Errorf("Fits(%s) error %v does not wrap ErrAlgMismatch", tt.alg, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Fits(%s) = %q, want it to mention %q", tt.alg, err, tt.want)
			}
		}
	}
}

// RFC 7638 §3.1: the example RSA key and its thumbprint.
func TestThumbprintRFC7638(t *testing.T) {
	const jwk = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}`
	var k jose.JSONWebKey
	if err := json.Unmarshal([]byte(jwk), &k); err != nil {
		t.Fatal(err)
	}
	got, err := signer.Thumbprint(k.Key)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("thumbprint = %s, want %s", got, want)
	}
}

func TestPublicJWKAndFormats(t *testing.T) {
	_, eks := testKeys(t)
	k := eks["P-256"]
	jwk, err := signer.PublicJWK(&k.PublicKey, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(jwk)
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for member, want := range map[string]string{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig"} {
		if m[member] != want {
			t.Errorf("%s = %q, want %q", member, m[member], want)
		}
	}
	if m["d"] != "" || m["x"] == "" || m["y"] == "" || len(m["kid"]) != 43 {
		t.Errorf("unexpected JWK members: %s", b)
	}
	if _, err := signer.PublicJWK(&k.PublicKey, jose.PS256); err == nil {
		t.Error("PublicJWK accepted PS256 for an EC key")
	}
	set, _ := json.Marshal(signer.JWKS(jwk))
	var parsed jose.JSONWebKeySet
	if err := json.Unmarshal(set, &parsed); err != nil || len(parsed.Key(jwk.KeyID)) != 1 {
		t.Fatalf("JWKS does not hold the key by kid: %s (%v)", set, err)
	}
	p, err := signer.PublicPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(p)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		t.Fatalf("not a PUBLIC KEY PEM: %s", p)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil || !k.PublicKey.Equal(pub) {
		t.Fatalf("PEM does not hold the key: %v", err)
	}
}

// fixedSigner returns a canned DER signature, to test the DER → r||s step.
type fixedSigner struct {
	pub crypto.PublicKey
	sig []byte
}

func (f fixedSigner) Public() crypto.PublicKey { return f.pub }
func (f fixedSigner) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	return f.sig, nil
}

func derSig(r, s *big.Int) []byte {
	b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		panic(err)
	}
	return b
}

func TestECDSADERConversion(t *testing.T) {
	_, eks := testKeys(t)
	pub := &eks["P-256"].PublicKey
	tests := []struct {
		name string
		sig  []byte
		want []byte // nil: error
	}{
		{"short r and s are left-padded", derSig(big.NewInt(1), big.NewInt(2)), append(append(make([]byte, 31), 1), append(make([]byte, 31), 2)...)},
		{"already r||s", make64(7), make64(7)},
		{"garbage", []byte{0x30, 0x01, 0x02}, nil},
		{"zero r", derSig(big.NewInt(0), big.NewInt(2)), nil},
		{"r too large", derSig(new(big.Int).Lsh(big.NewInt(1), 300), big.NewInt(2)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := signer.New(fixedSigner{pub: pub, sig: tt.sig}, jose.ES256)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.SignPayload([]byte("x"), jose.ES256)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("accepted a bad signature: %x", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(tt.want) {
				t.Fatalf("got %x, want %x", got, tt.want)
			}
		})
	}
}

func make64(b byte) []byte {
	out := make([]byte, 64)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestParseAlg(t *testing.T) {
	for _, a := range signer.Algorithms {
		if got, err := signer.ParseAlg(string(a)); err != nil || got != a {
			t.Errorf("ParseAlg(%s) = %s, %v", a, got, err)
		}
	}
	for _, bad := range []string{"", "ps256", "HS256", "none", "EdDSA"} {
		if _, err := signer.ParseAlg(bad); err == nil {
			t.Errorf("ParseAlg(%q) accepted", bad)
		}
	}
}

// recordingKey is a key whose backend records a kid, as a key file
// imported with --keep-kid does.
type recordingKey struct {
	crypto.Signer
	kid string
}

func (k recordingKey) RecordedKid() string { return k.kid }

// A kept kid goes into the header and the public JWK; the signature still
// verifies with the public key alone, and Thumbprint stays RFC 7638 (what
// DPoP binds tokens to).
func TestKeptKid(t *testing.T) {
	rk, _ := testKeys(t)
	tp, err := (&jose.JSONWebKey{Key: &rk.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	want := base64URL(tp)
	plain, err := signer.New(rk, jose.RS256)
	if err != nil {
		t.Fatal(err)
	}
	recorded, err := signer.New(recordingKey{rk, "registered-1"}, jose.RS256)
	if err != nil {
		t.Fatal(err)
	}
	overridden, err := plain.WithKeyID("0A1B2C3D")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s   *signer.Signer
		kid string
	}{{plain, want}, {recorded, "registered-1"}, {overridden, "0A1B2C3D"}} {
		if tc.s.KeyID() != tc.kid || tc.s.Public().KeyID != tc.kid || tc.s.Thumbprint() != want {
			t.Errorf("KeyID %q, JWK kid %q, Thumbprint %q; want kid %q, thumbprint %q", tc.s.KeyID(), tc.s.Public().KeyID, tc.s.Thumbprint(), tc.kid, want)
		}
		js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: tc.s}, (&jose.SignerOptions{}).WithHeader("kid", tc.s.KeyID()))
		if err != nil {
			t.Fatal(err)
		}
		obj, _ := js.Sign([]byte("payload"))
		compact, _ := obj.CompactSerialize()
		parsed, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parsed.Verify(&rk.PublicKey); err != nil || parsed.Signatures[0].Header.KeyID != tc.kid {
			t.Errorf("kid %q: verify %v, header kid %q", tc.kid, err, parsed.Signatures[0].Header.KeyID)
		}
	}
	if plain.KeyID() != want {
		t.Error("WithKeyID changed the signer it was called on")
	}
	// signer.KeyID tells the same kid without making a Signer.
	for key, kid := range map[crypto.Signer]string{rk: want, recordingKey{rk, "registered-1"}: "registered-1", recordingKey{rk, ""}: want} {
		if got, err := signer.KeyID(key); err != nil || got != kid {
			t.Errorf("signer.KeyID = %q, %v; want %q", got, err, kid)
		}
	}
	if same, _ := plain.WithKeyID(""); same != plain {
		t.Error("WithKeyID(\"\") made a new signer")
	}
	for _, bad := range []string{"a\nb", "tab\there", strings.Repeat("k", 257), "\x7f", string([]byte{0xff})} {
		if _, err := plain.WithKeyID(bad); err == nil {
			t.Errorf("WithKeyID(%q) accepted", bad)
		}
	}
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
