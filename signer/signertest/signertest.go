// Package signertest is the conformance suite every key backend passes:
// keys sign with each algorithm that fits them, and every signature is
// checked by an independent verifier that sees only the public JWK.
//
//	func TestConformance(t *testing.T) {
//		key := openSomeBackendKey(t)
//		signertest.Run(t, key)
//	}
package signertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
)

// Run checks key against every algorithm that fits it (restricted to the
// key's own algorithms for keystore.AlgRestricted keys).
func Run(t *testing.T, key crypto.Signer) {
	t.Helper()
	algs := signer.AlgsFor(key.Public())
	if r, ok := key.(keystore.AlgRestricted); ok && len(r.Algs()) > 0 {
		algs = slices.DeleteFunc(algs, func(a jose.SignatureAlgorithm) bool { return !slices.Contains(r.Algs(), a) })
	}
	if len(algs) == 0 {
		t.Fatalf("signertest: no algorithm fits the key (%T)", key.Public())
	}
	RunAlgs(t, key, algs...)
}

// RunAlgs checks key with the given algorithms only.
func RunAlgs(t *testing.T, key crypto.Signer, algs ...jose.SignatureAlgorithm) {
	t.Helper()
	t.Run("Thumbprint", func(t *testing.T) { checkThumbprint(t, key) })
	for _, alg := range algs {
		t.Run(string(alg), func(t *testing.T) {
			s, err := signer.New(key, alg)
			if err != nil {
				t.Fatalf("signer.New(%s): %v", alg, err)
			}
			pub := publicOnly(t, s)
			// Through go-jose, as a JWS library user would.
			js, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: s}, nil)
			if err != nil {
				t.Fatalf("jose.NewSigner: %v", err)
			}
			obj, err := js.Sign([]byte(`{"probe":"` + string(alg) + `"}`))
			if err != nil {
				t.Fatalf("sign via go-jose: %v", err)
			}
			compact, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{alg})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if _, err := parsed.Verify(pub); err != nil {
				t.Fatalf("%s signature does not verify with the public JWK: %v", alg, err)
			}
			if got := parsed.Signatures[0].Header.KeyID; got != s.KeyID() {
				t.Errorf("kid in header = %q, want %q", got, s.KeyID())
			}
			// And the raw signature, checked with the stdlib.
			msg := []byte("signing input " + string(alg))
			sig, err := s.SignPayload(msg, alg)
			if err != nil {
				t.Fatalf("SignPayload: %v", err)
			}
			verifyRaw(t, pub.Key, alg, msg, sig)
		})
	}
	t.Run("CryptoSigner", func(t *testing.T) { cryptoSigner(t, key, algs[0]) })
	t.Run("Concurrent", func(t *testing.T) { concurrent(t, key, algs[0]) })
	t.Run("WrongAlg", func(t *testing.T) { wrongAlg(t, key, algs) })
}

// publicOnly round-trips the signer's public JWK through JSON, so the
// verifier holds exactly what would be uploaded, and checks it has no
// private members.
func publicOnly(t *testing.T, s *signer.Signer) *jose.JSONWebKey {
	t.Helper()
	b, err := json.Marshal(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := m[priv]; ok {
			t.Fatalf("public JWK has private member %q", priv)
		}
	}
	if m["use"] != "sig" || m["alg"] != string(s.Alg()) || m["kid"] != s.KeyID() {
		t.Fatalf("public JWK use/alg/kid = %v/%v/%v, want sig/%s/%s", m["use"], m["alg"], m["kid"], s.Alg(), s.KeyID())
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(b, &jwk); err != nil {
		t.Fatal(err)
	}
	if !jwk.IsPublic() {
		t.Fatal("public JWK parses as private")
	}
	return &jwk
}

func hashOf(alg jose.SignatureAlgorithm, msg []byte) (crypto.Hash, []byte) {
	h := signer.HashFor(alg)
	d := h.New()
	d.Write(msg)
	return h, d.Sum(nil)
}

func verifyRaw(t *testing.T, pub crypto.PublicKey, alg jose.SignatureAlgorithm, msg, sig []byte) {
	t.Helper()
	h, digest := hashOf(alg, msg)
	switch alg {
	case jose.PS256, jose.PS384, jose.PS512:
		// RFC 7518 §3.5: the salt is exactly as long as the hash.
		opts := &rsa.PSSOptions{SaltLength: h.Size(), Hash: h}
		if err := rsa.VerifyPSS(pub.(*rsa.PublicKey), h, digest, sig, opts); err != nil {
			t.Fatalf("%s: PSS signature with salt length %d does not verify: %v", alg, h.Size(), err)
		}
	case jose.RS256, jose.RS384, jose.RS512:
		if err := rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), h, digest, sig); err != nil {
			t.Fatalf("%s: PKCS#1 v1.5 signature does not verify: %v", alg, err)
		}
	default:
		ec := pub.(*ecdsa.PublicKey)
		size := (ec.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			t.Fatalf("%s signature is %d bytes, want r||s of %d", alg, len(sig), 2*size)
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(ec, digest, r, s) {
			t.Fatalf("%s: ECDSA r||s signature does not verify", alg)
		}
	}
}

// checkThumbprint recomputes the RFC 7638 thumbprint from the canonical
// JSON written out by hand, independently of go-jose.
func checkThumbprint(t *testing.T, key crypto.Signer) {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	var canon string
	switch p := key.Public().(type) {
	case *rsa.PublicKey:
		canon = fmt.Sprintf(`{"e":"%s","kty":"RSA","n":"%s"}`, b64(big.NewInt(int64(p.E)).Bytes()), b64(p.N.Bytes()))
	case *ecdsa.PublicKey:
		raw, err := p.Bytes() // 0x04 ‖ X ‖ Y, fixed size
		if err != nil {
			t.Fatal(err)
		}
		size := (len(raw) - 1) / 2
		x, y := raw[1:1+size], raw[1+size:]
		canon = fmt.Sprintf(`{"crv":"%s","kty":"EC","x":"%s","y":"%s"}`, p.Curve.Params().Name, b64(x), b64(y))
	default:
		t.Fatalf("unexpected public key type %T", p)
	}
	sum := sha256.Sum256([]byte(canon))
	want := b64(sum[:])
	got, err := signer.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("kid = %s, want RFC 7638 thumbprint %s", got, want)
	}
}

// cryptoSigner checks the key's own crypto.Signer contract, which other
// code (x509, TLS) relies on: ECDSA signatures in ASN.1 DER, RSA as is.
func cryptoSigner(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm) {
	h, digest := hashOf(alg, []byte("crypto.Signer contract"))
	var opts crypto.SignerOpts = h
	if alg[0] == 'P' {
		opts = &rsa.PSSOptions{SaltLength: h.Size(), Hash: h}
	}
	sig, err := key.Sign(rand.Reader, digest, opts)
	if err != nil {
		t.Fatalf("crypto.Signer.Sign: %v", err)
	}
	if ec, ok := key.Public().(*ecdsa.PublicKey); ok {
		if !ecdsa.VerifyASN1(ec, digest, sig) {
			t.Fatal("crypto.Signer.Sign did not return a valid ASN.1 DER ECDSA signature")
		}
		return
	}
	if err := quickVerify(key.Public(), alg, h, digest, sig); err != nil {
		t.Fatal(err)
	}
	// A key whose backend fixes the padding (Cloud KMS) refuses the other
	// one rather than signing with its own. (An AWS KMS RSA key allows
	// both, and says so in Algs.)
	otherAlg := jose.SignatureAlgorithm(map[byte]string{'P': "R", 'R': "P"}[alg[0]] + string(alg[1:]))
	if r, ok := key.(keystore.AlgRestricted); ok && len(r.Algs()) > 0 && alg[0] != 'E' && !slices.Contains(r.Algs(), otherAlg) {
		other := crypto.SignerOpts(h)
		if alg[0] == 'R' {
			other = &rsa.PSSOptions{SaltLength: h.Size(), Hash: h}
		}
		if _, err := key.Sign(rand.Reader, digest, other); err == nil {
			t.Fatalf("a %v key signed with the other RSA padding", r.Algs())
		}
	}
}

func concurrent(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm) {
	s, err := signer.New(key, alg)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 3
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				msg := fmt.Appendf(nil, "worker %d message %d", w, i)
				sig, err := s.SignPayload(msg, alg)
				if err != nil {
					errs <- err
					return
				}
				h, digest := hashOf(alg, msg)
				if err := quickVerify(key.Public(), alg, h, digest, sig); err != nil {
					errs <- fmt.Errorf("worker %d message %d: %w", w, i, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func quickVerify(pub crypto.PublicKey, alg jose.SignatureAlgorithm, h crypto.Hash, digest, sig []byte) error {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if alg[0] == 'P' {
			return rsa.VerifyPSS(p, h, digest, sig, &rsa.PSSOptions{SaltLength: h.Size(), Hash: h})
		}
		return rsa.VerifyPKCS1v15(p, h, digest, sig)
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		if !ecdsa.Verify(p, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])) {
			return fmt.Errorf("ECDSA signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unexpected key type %T", pub)
}

func wrongAlg(t *testing.T, key crypto.Signer, fitting []jose.SignatureAlgorithm) {
	for _, alg := range signer.Algorithms {
		if slices.Contains(fitting, alg) {
			continue
		}
		if _, err := signer.New(key, alg); err == nil {
			t.Errorf("signer.New accepted %s for this key", alg)
		}
	}
	s, err := signer.New(key, fitting[0])
	if err != nil {
		t.Fatal(err)
	}
	other := jose.ES256
	if fitting[0] == jose.ES256 {
		other = jose.PS256
	}
	if _, err := s.SignPayload([]byte("x"), other); err == nil {
		t.Errorf("a %s signer signed when asked for %s", fitting[0], other)
	}
}
