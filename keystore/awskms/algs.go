package awskms

import (
	"crypto"
	"crypto/elliptic"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
)

// joseFor maps each KMS signing algorithm to the JOSE algorithm it makes.
// Unlike Cloud KMS, an AWS RSA key signs with any of the six RSA ones.
var joseFor = map[types.SigningAlgorithmSpec]jose.SignatureAlgorithm{
	types.SigningAlgorithmSpecRsassaPssSha256:      jose.PS256,
	types.SigningAlgorithmSpecRsassaPssSha384:      jose.PS384,
	types.SigningAlgorithmSpecRsassaPssSha512:      jose.PS512,
	types.SigningAlgorithmSpecRsassaPkcs1V15Sha256: jose.RS256,
	types.SigningAlgorithmSpecRsassaPkcs1V15Sha384: jose.RS384,
	types.SigningAlgorithmSpecRsassaPkcs1V15Sha512: jose.RS512,
	types.SigningAlgorithmSpecEcdsaSha256:          jose.ES256,
	types.SigningAlgorithmSpecEcdsaSha384:          jose.ES384,
	types.SigningAlgorithmSpecEcdsaSha512:          jose.ES512,
}

// specFor picks the KMS key spec for a key spec.
func specFor(spec keystore.KeySpec) (types.KeySpec, error) {
	switch spec.Type {
	case keystore.RSA:
		switch spec.Bits {
		case 2048:
			return types.KeySpecRsa2048, nil
		case 3072:
			return types.KeySpecRsa3072, nil
		case 4096:
			return types.KeySpecRsa4096, nil
		}
		return "", fmt.Errorf("awskms: AWS KMS has RSA keys of 2048, 3072 or 4096 bits, not %d", spec.Bits)
	case keystore.EC:
		switch spec.Curve {
		case elliptic.P256():
			return types.KeySpecEccNistP256, nil
		case elliptic.P384():
			return types.KeySpecEccNistP384, nil
		case elliptic.P521():
			return types.KeySpecEccNistP521, nil
		}
	}
	return "", fmt.Errorf("awskms: AWS KMS has no signing key for %s", spec)
}

// algsOf lists the JOSE algorithms a key's KMS signing algorithms give,
// in jwkctl's order of preference (so an RSA key defaults to PS256).
func algsOf(specs []types.SigningAlgorithmSpec) []jose.SignatureAlgorithm {
	have := map[jose.SignatureAlgorithm]bool{}
	for _, s := range specs {
		if a, ok := joseFor[s]; ok {
			have[a] = true
		}
	}
	var out []jose.SignatureAlgorithm
	for _, a := range signer.Algorithms {
		if have[a] {
			out = append(out, a)
		}
	}
	return out
}

// signingAlgFor is the KMS signing algorithm for a digest and padding.
func signingAlgFor(rsaKey, pss bool, h crypto.Hash) (types.SigningAlgorithmSpec, bool) {
	bits := map[crypto.Hash]string{crypto.SHA256: "256", crypto.SHA384: "384", crypto.SHA512: "512"}[h]
	if bits == "" {
		return "", false
	}
	switch {
	case rsaKey && pss:
		return types.SigningAlgorithmSpec("RSASSA_PSS_SHA_" + bits), true
	case rsaKey:
		return types.SigningAlgorithmSpec("RSASSA_PKCS1_V1_5_SHA_" + bits), true
	case !pss:
		return types.SigningAlgorithmSpec("ECDSA_SHA_" + bits), true
	}
	return "", false
}
