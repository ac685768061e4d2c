package gcpkms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
)

// algo is a CryptoKeyVersionAlgorithm as the REST API names it
// ("EC_SIGN_P256_SHA256").
type algo = string

// joseFor maps each KMS signing algorithm jwkctl uses to the one JOSE
// algorithm it can serve: KMS fixes padding and hash per key.
var joseFor = map[algo]jose.SignatureAlgorithm{
	"RSA_SIGN_PSS_2048_SHA256":   jose.PS256,
	"RSA_SIGN_PSS_3072_SHA256":   jose.PS256,
	"RSA_SIGN_PSS_4096_SHA256":   jose.PS256,
	"RSA_SIGN_PSS_4096_SHA512":   jose.PS512,
	"RSA_SIGN_PKCS1_2048_SHA256": jose.RS256,
	"RSA_SIGN_PKCS1_3072_SHA256": jose.RS256,
	"RSA_SIGN_PKCS1_4096_SHA256": jose.RS256,
	"RSA_SIGN_PKCS1_4096_SHA512": jose.RS512,
	"EC_SIGN_P256_SHA256":        jose.ES256,
	"EC_SIGN_P384_SHA384":        jose.ES384,
}

// algorithmFor picks the KMS algorithm for a key spec, or says why KMS
// cannot make it.
func algorithmFor(spec keystore.KeySpec) (algo, error) {
	bits := spec.Bits
	name := ""
	switch spec.Alg {
	case jose.PS256:
		name = fmt.Sprintf("RSA_SIGN_PSS_%d_SHA256", bits)
	case jose.RS256:
		name = fmt.Sprintf("RSA_SIGN_PKCS1_%d_SHA256", bits)
	case jose.PS512, jose.RS512:
		if bits != 4096 {
			return "", fmt.Errorf("gcpkms: Cloud KMS offers %s only with RSA-4096 (use --bits 4096)", spec.Alg)
		}
		name = map[jose.SignatureAlgorithm]string{jose.PS512: "RSA_SIGN_PSS_4096_SHA512", jose.RS512: "RSA_SIGN_PKCS1_4096_SHA512"}[spec.Alg]
	case jose.PS384, jose.RS384:
		return "", fmt.Errorf("gcpkms: Cloud KMS has no RSA signing with SHA-384; use PS256 or PS512")
	case jose.ES256:
		name = "EC_SIGN_P256_SHA256"
	case jose.ES384:
		name = "EC_SIGN_P384_SHA384"
	case jose.ES512:
		return "", fmt.Errorf("gcpkms: Cloud KMS has no P-521 signing keys, so no ES512; use ES256 or ES384")
	default:
		return "", fmt.Errorf("gcpkms: unsupported algorithm %q", spec.Alg)
	}
	if _, ok := joseFor[name]; !ok {
		return "", fmt.Errorf("gcpkms: Cloud KMS has no %s", name)
	}
	return name, nil
}

// hashOf is the digest a KMS algorithm signs.
func hashOf(a algo) crypto.Hash {
	switch {
	case strings.HasSuffix(a, "_SHA512"):
		return crypto.SHA512
	case strings.HasSuffix(a, "_SHA384"):
		return crypto.SHA384
	}
	return crypto.SHA256
}

// matches checks that a public key is of the kind the KMS algorithm
// names: an RSA key of its size, or an EC key on its curve.
func matches(pub crypto.PublicKey, a algo) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if !strings.HasPrefix(a, "RSA_SIGN_") || !strings.Contains(a, fmt.Sprintf("_%d_", k.N.BitLen())) {
			return fmt.Errorf("an RSA-%d key does not match %s", k.N.BitLen(), a)
		}
	case *ecdsa.PublicKey:
		want := map[string]algo{"P-256": "EC_SIGN_P256_SHA256", "P-384": "EC_SIGN_P384_SHA384"}[k.Curve.Params().Name]
		if a != want {
			return fmt.Errorf("a %s key does not match %s", k.Curve.Params().Name, a)
		}
	default:
		return fmt.Errorf("a %T does not match %s", pub, a)
	}
	return nil
}
