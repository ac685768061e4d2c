package signer

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
)

// PublicJWK returns the public JWK that is uploaded to Selvbetjening or any
// authorization server: the key material, kid = RFC 7638 SHA-256 thumbprint
// (base64url), alg and use "sig". alg may be empty to leave it out.
func PublicJWK(pub crypto.PublicKey, alg jose.SignatureAlgorithm) (jose.JSONWebKey, error) {
	if alg != "" {
		if err := Fits(alg, pub); err != nil {
			return jose.JSONWebKey{}, err
		}
	}
	jwk := jose.JSONWebKey{Key: pub, Algorithm: string(alg), Use: "sig"}
	if !jwk.Valid() || !jwk.IsPublic() {
		return jose.JSONWebKey{}, fmt.Errorf("signer: not a usable public key (%T)", pub)
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	jwk.KeyID = kid
	return jwk, nil
}

// Thumbprint is the RFC 7638 SHA-256 JWK thumbprint of pub, base64url
// without padding. jwkctl uses it as the kid everywhere.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("signer: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// KeyID is the kid key's signatures carry: the kid it records for itself
// (keystore.KidRecorder: one kept from its registration), else its RFC
// 7638 thumbprint.
func KeyID(key crypto.Signer) (string, error) {
	if kid := recordedKid(key); kid != "" {
		return kid, nil
	}
	return Thumbprint(key.Public())
}

// recordedKid is the kid key records for itself, or "".
func recordedKid(key crypto.Signer) string {
	if r, ok := key.(keystore.KidRecorder); ok {
		return r.RecordedKid()
	}
	return ""
}

// JWKS wraps public JWKs in a JWK Set.
func JWKS(keys ...jose.JSONWebKey) jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: keys}
}

// PublicPEM encodes pub as a PEM "PUBLIC KEY" (SubjectPublicKeyInfo).
func PublicPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
