package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
)

// ErrAlgMismatch is returned when a JOSE algorithm does not fit a key.
var ErrAlgMismatch = errors.New("signer: algorithm does not fit the key")

// Signer signs JOSE payloads with a crypto.Signer whose private half may live
// in an HSM or KMS. It implements jose.OpaqueSigner, so go-jose can use it,
// and it is safe for concurrent use.
type Signer struct {
	key   crypto.Signer
	alg   jose.SignatureAlgorithm
	hash  crypto.Hash
	opts  crypto.SignerOpts
	ecLen int // bytes per coordinate for ECDSA; 0 for RSA
	size  int // bytes in a JOSE signature
	jwk   jose.JSONWebKey
	tp    string // RFC 7638 thumbprint; jwk.KeyID unless a registered kid was kept
	rand  io.Reader
}

var _ jose.OpaqueSigner = (*Signer)(nil)

// New returns a Signer for key and alg. It fails with ErrAlgMismatch when the
// algorithm does not fit the key (ES256 needs P-256, RSA algorithms need RSA
// of at least 2048 bits, a KMS key allows only its own algorithm). The kid
// is the RFC 7638 thumbprint, or the kid the key records
// (keystore.KidRecorder) when it has one; WithKeyID sets another.
func New(key crypto.Signer, alg jose.SignatureAlgorithm) (*Signer, error) {
	if key == nil {
		return nil, errors.New("signer: no key")
	}
	pub := key.Public()
	if err := Fits(alg, pub); err != nil {
		return nil, err
	}
	if r, ok := key.(keystore.AlgRestricted); ok {
		if allowed := r.Algs(); len(allowed) > 0 && !slices.Contains(allowed, alg) {
			return nil, fmt.Errorf("%w: this key only signs with %v, not %s", ErrAlgMismatch, allowed, alg)
		}
	}
	jwk, err := PublicJWK(pub, alg)
	if err != nil {
		return nil, err
	}
	s := &Signer{key: key, alg: alg, hash: hashFor(alg), jwk: jwk, tp: jwk.KeyID, rand: rand.Reader}
	if kid := recordedKid(key); kid != "" { // else the thumbprint, as KeyID
		s.jwk.KeyID = kid
	}
	switch alg {
	case jose.PS256, jose.PS384, jose.PS512:
		// RFC 7518 §3.5: the salt is as long as the hash. "Auto" would make
		// HSMs (crypto11) refuse and verifiers that insist on it fail.
		s.opts = &rsa.PSSOptions{SaltLength: s.hash.Size(), Hash: s.hash}
	case jose.ES256, jose.ES384, jose.ES512:
		s.opts = s.hash
		s.ecLen = (pub.(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
	default:
		s.opts = s.hash
	}
	if s.ecLen > 0 {
		s.size = 2 * s.ecLen
	} else {
		s.size = pub.(*rsa.PublicKey).Size()
	}
	return s, nil
}

// Alg is the algorithm this Signer signs with.
func (s *Signer) Alg() jose.SignatureAlgorithm { return s.alg }

// KeyID is the kid the signer puts in JWS headers and its public JWK: the
// RFC 7638 SHA-256 thumbprint of the public key (base64url), unless the key
// records another or WithKeyID set one.
func (s *Signer) KeyID() string { return s.jwk.KeyID }

// Thumbprint is the RFC 7638 SHA-256 thumbprint of the public key,
// base64url, whatever the kid: what DPoP binds tokens to (cnf.jkt) and
// what Selvbetjening lists beside the registered kid.
func (s *Signer) Thumbprint() string { return s.tp }

// WithKeyID returns a copy of s that signs with kid in its headers and
// public JWK: the kid a key was registered under elsewhere (Selvbetjening
// keeps the kid of an uploaded JWK, which need not be the thumbprint). An
// empty kid returns s unchanged. The kid must be printable text; it ends
// up in every header.
func (s *Signer) WithKeyID(kid string) (*Signer, error) {
	if kid == "" {
		return s, nil
	}
	if err := CheckKeyID(kid); err != nil {
		return nil, err
	}
	c := *s
	c.jwk.KeyID = kid
	return &c, nil
}

// CheckKeyID refuses a kid that is empty, over 256 bytes or holds
// control characters: it would be no name a registration could carry.
func CheckKeyID(kid string) error {
	if kid == "" {
		return errors.New("signer: empty kid")
	}
	if len(kid) > 256 {
		return fmt.Errorf("signer: a kid of %d bytes is too long (at most 256)", len(kid))
	}
	for _, r := range kid {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return errors.New("signer: the kid holds control characters or is not UTF-8")
		}
	}
	return nil
}

// SignatureSize is the length in bytes of the signatures SignPayload
// returns: the RSA modulus, or twice the curve's coordinate size.
func (s *Signer) SignatureSize() int { return s.size }

// Key returns the underlying crypto.Signer.
func (s *Signer) Key() crypto.Signer { return s.key }

// Public returns the public JWK (kid, alg, use "sig"). It implements
// jose.OpaqueSigner; the returned value is a copy the caller may change.
func (s *Signer) Public() *jose.JSONWebKey {
	j := s.jwk
	return &j
}

// Algs implements jose.OpaqueSigner: a Signer signs with exactly one alg.
func (s *Signer) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{s.alg} }

// SignPayload hashes payload and signs it, returning the JOSE signature
// bytes: the raw RSA signature, or r‖s of fixed size for ECDSA (RFC 7518
// §3.4). It implements jose.OpaqueSigner.
func (s *Signer) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != s.alg {
		return nil, fmt.Errorf("%w: signer is for %s, asked for %s", ErrAlgMismatch, s.alg, alg)
	}
	digest := s.digest(payload)
	if cs, ok := s.key.(keystore.ConcatSigner); ok && s.ecLen > 0 {
		sig, err := cs.SignConcat(digest, s.opts)
		if err != nil {
			return nil, fmt.Errorf("signer: %s signature failed: %w", s.alg, err)
		}
		if len(sig) != s.size {
			return nil, fmt.Errorf("signer: backend returned an ECDSA signature of %d bytes, want %d", len(sig), s.size)
		}
		return sig, nil
	}
	sig, err := s.key.Sign(s.rand, digest, s.opts)
	if err != nil {
		return nil, fmt.Errorf("signer: %s signature failed: %w", s.alg, err)
	}
	if s.ecLen == 0 {
		return sig, nil
	}
	return derToConcat(sig, s.ecLen)
}

func (s *Signer) digest(payload []byte) []byte {
	switch s.hash {
	case crypto.SHA256:
		d := sha256.Sum256(payload)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(payload)
		return d[:]
	}
	d := sha512.Sum512(payload)
	return d[:]
}

// derToConcat turns an ASN.1 ECDSA signature into r‖s, each left-padded to
// size bytes, as JWS requires.
func derToConcat(der []byte, size int) ([]byte, error) {
	out, err := keystore.ECDSAConcat(der, size)
	if err == nil {
		return out, nil
	}
	// Some backends hand back r‖s already.
	if len(der) == 2*size {
		return der, nil
	}
	return nil, fmt.Errorf("signer: backend returned a %v", err)
}
