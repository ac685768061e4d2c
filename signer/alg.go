package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
)

// Algorithms lists every JOSE algorithm jwkctl signs with, in the order it
// prefers them.
var Algorithms = []jose.SignatureAlgorithm{
	jose.PS256, jose.PS384, jose.PS512,
	jose.RS256, jose.RS384, jose.RS512,
	jose.ES256, jose.ES384, jose.ES512,
}

// ParseAlg turns a user's string into a supported algorithm.
func ParseAlg(s string) (jose.SignatureAlgorithm, error) {
	for _, a := range Algorithms {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("signer: unknown algorithm %q (use PS256, PS384, PS512, RS256, RS384, RS512, ES256, ES384 or ES512)", s)
}

func hashFor(alg jose.SignatureAlgorithm) crypto.Hash {
	switch alg {
	case jose.PS384, jose.RS384, jose.ES384:
		return crypto.SHA384
	case jose.PS512, jose.RS512, jose.ES512:
		return crypto.SHA512
	}
	return crypto.SHA256
}

// HashFor is the hash function an algorithm signs over.
func HashFor(alg jose.SignatureAlgorithm) crypto.Hash { return hashFor(alg) }

var curveAlg = map[elliptic.Curve]jose.SignatureAlgorithm{
	elliptic.P256(): jose.ES256,
	elliptic.P384(): jose.ES384,
	elliptic.P521(): jose.ES512,
}

// Fits reports whether alg can sign with a key whose public half is pub.
// The error wraps ErrAlgMismatch and says what would fit instead.
func Fits(alg jose.SignatureAlgorithm, pub crypto.PublicKey) error {
	if _, err := ParseAlg(string(alg)); err != nil {
		return fmt.Errorf("%w: %v", ErrAlgMismatch, err)
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if err := keystore.CheckPublicKey(p); err != nil {
			return fmt.Errorf("%w: %v", ErrAlgMismatch, err)
		}
		switch alg {
		case jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512:
			return nil
		}
		return fmt.Errorf("%w: %s needs an EC key, this is RSA-%d (use PS256)", ErrAlgMismatch, alg, p.N.BitLen())
	case *ecdsa.PublicKey:
		want, ok := curveAlg[p.Curve]
		if !ok {
			return fmt.Errorf("%w: unsupported curve %s", ErrAlgMismatch, p.Curve.Params().Name)
		}
		if alg != want {
			return fmt.Errorf("%w: %s does not fit an EC %s key (use %s)", ErrAlgMismatch, alg, p.Curve.Params().Name, want)
		}
		return nil
	}
	return fmt.Errorf("%w: unsupported key type %T", ErrAlgMismatch, pub)
}

// AlgsFor lists the algorithms that fit pub, preferred first.
func AlgsFor(pub crypto.PublicKey) []jose.SignatureAlgorithm {
	var out []jose.SignatureAlgorithm
	for _, a := range Algorithms {
		if Fits(a, pub) == nil {
			out = append(out, a)
		}
	}
	return out
}

// DefaultAlg is the preferred algorithm for a key: the one the backend
// fixes (keystore.AlgRestricted), else the one the key records
// (keystore.AlgRecorder) if it fits the key, else PS256 for RSA and the
// curve's ESxxx for EC.
func DefaultAlg(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	if r, ok := key.(keystore.AlgRestricted); ok {
		if algs := r.Algs(); len(algs) > 0 {
			return algs[0], nil
		}
	}
	if r, ok := key.(keystore.AlgRecorder); ok {
		if alg := r.RecordedAlg(); alg != "" && Fits(alg, key.Public()) == nil {
			return alg, nil
		}
	}
	algs := AlgsFor(key.Public())
	if len(algs) == 0 {
		return "", Fits(jose.PS256, key.Public())
	}
	return algs[0], nil
}
