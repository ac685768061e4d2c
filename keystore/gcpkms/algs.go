package gcpkms

import (
	"crypto"
	"fmt"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
)

type algo = kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm

// joseFor maps each KMS signing algorithm jwkctl uses to the one JOSE
// algorithm it can serve: KMS fixes padding and hash per key.
var joseFor = map[algo]jose.SignatureAlgorithm{
	kmspb.CryptoKeyVersion_RSA_SIGN_PSS_2048_SHA256:   jose.PS256,
	kmspb.CryptoKeyVersion_RSA_SIGN_PSS_3072_SHA256:   jose.PS256,
	kmspb.CryptoKeyVersion_RSA_SIGN_PSS_4096_SHA256:   jose.PS256,
	kmspb.CryptoKeyVersion_RSA_SIGN_PSS_4096_SHA512:   jose.PS512,
	kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_2048_SHA256: jose.RS256,
	kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_3072_SHA256: jose.RS256,
	kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_4096_SHA256: jose.RS256,
	kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_4096_SHA512: jose.RS512,
	kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256:        jose.ES256,
	kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384:        jose.ES384,
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
			return 0, fmt.Errorf("gcpkms: Cloud KMS offers %s only with RSA-4096 (use --bits 4096)", spec.Alg)
		}
		name = map[jose.SignatureAlgorithm]string{jose.PS512: "RSA_SIGN_PSS_4096_SHA512", jose.RS512: "RSA_SIGN_PKCS1_4096_SHA512"}[spec.Alg]
	case jose.PS384, jose.RS384:
		return 0, fmt.Errorf("gcpkms: Cloud KMS has no RSA signing with SHA-384; use PS256 or PS512")
	case jose.ES256:
		name = "EC_SIGN_P256_SHA256"
	case jose.ES384:
		name = "EC_SIGN_P384_SHA384"
	case jose.ES512:
		return 0, fmt.Errorf("gcpkms: Cloud KMS has no P-521 signing keys, so no ES512; use ES256 or ES384")
	default:
		return 0, fmt.Errorf("gcpkms: unsupported algorithm %q", spec.Alg)
	}
	v, ok := kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm_value[name]
	if !ok {
		return 0, fmt.Errorf("gcpkms: Cloud KMS has no %s", name)
	}
	return algo(v), nil
}

// hashOf is the digest a KMS algorithm signs.
func hashOf(a algo) crypto.Hash {
	switch a {
	case kmspb.CryptoKeyVersion_RSA_SIGN_PSS_4096_SHA512, kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_4096_SHA512:
		return crypto.SHA512
	case kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384:
		return crypto.SHA384
	}
	return crypto.SHA256
}
