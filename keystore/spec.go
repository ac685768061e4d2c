package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// KeyType is the family of a keypair.
type KeyType string

// The key types jwkctl generates.
const (
	RSA KeyType = "RSA"
	EC  KeyType = "EC"
)

// MinRSABits is the smallest RSA modulus jwkctl generates, imports or signs
// with (RFC 7518 §3.3 and §3.5 require at least 2048 bits).
const MinRSABits = 2048

// DefaultAlg and DefaultRSABits are what `keys generate` makes when not told
// otherwise.
const (
	DefaultAlg     = jose.PS256
	DefaultRSABits = 4096
)

// KeySpec says what keypair to generate.
type KeySpec struct {
	Type KeyType
	// Bits is the RSA modulus size: 2048, 3072 or 4096.
	Bits int
	// Curve is the EC curve: elliptic.P256(), P384() or P521().
	Curve elliptic.Curve
	// Alg is the JOSE algorithm the key is meant for. Backends that fix the
	// algorithm per key (Cloud KMS) need it; others only record it.
	Alg jose.SignatureAlgorithm
}

// SpecFor returns the key spec for a JOSE algorithm. bits applies to RSA
// algorithms only; 0 means DefaultRSABits. Giving bits for an EC algorithm is
// an error, so a mistyped command line is not silently ignored.
func SpecFor(alg jose.SignatureAlgorithm, bits int) (KeySpec, error) {
	switch alg {
	case jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512:
		if bits == 0 {
			bits = DefaultRSABits
		}
		switch bits {
		case 2048, 3072, 4096:
		default:
			if bits < MinRSABits {
				return KeySpec{}, fmt.Errorf("keystore: RSA keys must have at least %d bits, not %d", MinRSABits, bits)
			}
			return KeySpec{}, fmt.Errorf("keystore: RSA key size %d is not supported (use 2048, 3072 or 4096)", bits)
		}
		return KeySpec{Type: RSA, Bits: bits, Alg: alg}, nil
	case jose.ES256, jose.ES384, jose.ES512:
		if bits != 0 {
			return KeySpec{}, fmt.Errorf("keystore: --bits applies to RSA algorithms only, not %s", alg)
		}
		curve := map[jose.SignatureAlgorithm]elliptic.Curve{
			jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384(), jose.ES512: elliptic.P521(),
		}[alg]
		return KeySpec{Type: EC, Curve: curve, Alg: alg}, nil
	}
	return KeySpec{}, fmt.Errorf("keystore: unknown algorithm %q (use PS256, PS384, PS512, RS256, RS384, RS512, ES256, ES384 or ES512)", alg)
}

// String describes the spec for messages: "RSA-4096", "EC P-256".
func (s KeySpec) String() string {
	if s.Type == EC && s.Curve != nil {
		return "EC " + s.Curve.Params().Name
	}
	return fmt.Sprintf("RSA-%d", s.Bits)
}

// CheckPrivateKey validates a private key before it is imported: a known
// type, RSA of at least MinRSABits, a supported curve, and public and private
// halves that agree.
func CheckPrivateKey(k crypto.Signer) error {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("keystore: RSA key has %d bits; at least %d are required", k.N.BitLen(), MinRSABits)
		}
		if err := k.Validate(); err != nil {
			return fmt.Errorf("keystore: RSA private key is inconsistent: %v", err)
		}
		return nil
	case *ecdsa.PrivateKey:
		if err := CheckPublicKey(&k.PublicKey); err != nil {
			return err
		}
		// The public point must be D·G; crypto/ecdh derives it for us.
		priv, err := k.ECDH()
		if err != nil {
			return fmt.Errorf("keystore: EC private key is invalid: %v", err)
		}
		pub, err := k.PublicKey.ECDH()
		if err != nil || !priv.PublicKey().Equal(pub) {
			return fmt.Errorf("keystore: EC private key does not match its public key")
		}
		return nil
	}
	return fmt.Errorf("keystore: unsupported private key type %T (want RSA or EC)", k)
}

// CheckPublicKey validates a public key: RSA of at least MinRSABits or EC on
// P-256, P-384 or P-521.
func CheckPublicKey(pub crypto.PublicKey) error {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < MinRSABits {
			return fmt.Errorf("keystore: RSA key has %d bits; at least %d are required", p.N.BitLen(), MinRSABits)
		}
		return nil
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("keystore: unsupported curve %s (use P-256, P-384 or P-521)", p.Curve.Params().Name)
		}
		if _, err := p.ECDH(); err != nil {
			return fmt.Errorf("keystore: EC public key is not on curve %s", p.Curve.Params().Name)
		}
		return nil
	}
	return fmt.Errorf("keystore: unsupported public key type %T (want RSA or EC)", pub)
}
