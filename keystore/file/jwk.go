package file

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keyimport"
	"github.com/jwkctl/jwkctl/keystore"
)

// maxKeyFile bounds what we read as a key: a JWK is a few kilobytes.
const maxKeyFile = 1 << 20

// PBES2Count is the PBKDF2 iteration count for encrypted key files
// (PBES2-HS512+A256KW): OWASP's 2023 figure for PBKDF2-HMAC-SHA512. go-jose
// refuses more than 1,000,000 when decrypting. Tests lower it.
var PBES2Count = 210_000

// encode turns a private key into the file's bytes: a private JWK with kid,
// alg and use, or a compact JWE of it when pass is set.
func encode(priv crypto.Signer, alg, kid string, pass []byte) ([]byte, error) {
	jwk := jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: alg, Use: "sig"}
	plain, err := json.MarshalIndent(jwk, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("file: encode key: %w", err)
	}
	plain = append(plain, '\n')
	if pass == nil {
		return plain, nil
	}
	if len(pass) == 0 {
		return nil, fmt.Errorf("%w: the passphrase is empty", keystore.ErrPassphrase)
	}
	enc, err := jose.NewEncrypter(jose.A256GCM,
		jose.Recipient{Algorithm: jose.PBES2_HS512_A256KW, Key: pass, PBES2Count: PBES2Count},
		(&jose.EncrypterOptions{}).WithContentType("jwk+json"))
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	obj, err := enc.Encrypt(plain)
	if err != nil {
		return nil, fmt.Errorf("file: encrypt key: %w", err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("file: encrypt key: %w", err)
	}
	return []byte(s + "\n"), nil
}

// isJWE reports whether data looks like a compact JWE (five base64url parts).
func isJWE(data []byte) bool {
	d := bytes.TrimSpace(data)
	return bytes.HasPrefix(d, []byte("ey")) && bytes.Count(d, []byte(".")) == 4
}

// IsEncrypted reports whether data is an encrypted jwkctl key file (a
// compact JWE) rather than a plain JWK.
func IsEncrypted(data []byte) bool { return isJWE(data) }

// ParseKeyFile reads the bytes of a key file as jwkctl writes them: a
// private JWK, or one encrypted with pass. name is only for messages. kid
// is the JWK's own kid member ("" when it has none), which for a key
// downloaded from Selvbetjening need not be the RFC 7638 thumbprint
// jwkctl names keys by.
func ParseKeyFile(data, pass []byte, name string) (key crypto.Signer, alg jose.SignatureAlgorithm, kid string, err error) {
	return decode(data, pass, name)
}

// decode reads a key file's bytes, returning the key, its alg and kid
// members ("" when absent). path is only for messages.
func decode(data, pass []byte, path string) (crypto.Signer, jose.SignatureAlgorithm, string, error) {
	if isJWE(data) {
		if pass == nil {
			return nil, "", "", fmt.Errorf("%w: key file %s is encrypted; give --passphrase-file or set JWKCTL_PASSPHRASE", keystore.ErrPassphrase, path)
		}
		obj, err := jose.ParseEncryptedCompact(string(bytes.TrimSpace(data)),
			[]jose.KeyAlgorithm{jose.PBES2_HS512_A256KW, jose.PBES2_HS384_A192KW, jose.PBES2_HS256_A128KW},
			[]jose.ContentEncryption{jose.A256GCM, jose.A128GCM, jose.A192GCM})
		if err != nil {
			return nil, "", "", fmt.Errorf("file: key file %s is not a JWE jwkctl can read: %v", path, err)
		}
		plain, err := obj.Decrypt(pass)
		if err != nil {
			return nil, "", "", fmt.Errorf("%w: cannot decrypt %s", keystore.ErrPassphrase, path)
		}
		data = plain
	}
	p, err := parsePrivate(data)
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: %w", path, err)
	}
	return p.Private, p.Alg, p.Kid, nil
}

// ParsePrivateJWK parses a private JWK, as NHN Selvbetjening offers for
// download, or a JWK Set holding exactly one private key; a UTF-8 byte
// order mark is allowed. It checks that the key is private, RSA of at
// least 2048 bits or EC on P-256/384/521, and that its public and private
// halves agree (keyimport.ParseJWK, which keys import also uses). The alg
// member, if any, is returned. Errors never contain key material.
func ParsePrivateJWK(data []byte) (crypto.Signer, jose.SignatureAlgorithm, error) {
	p, err := parsePrivate(data)
	if err != nil {
		return nil, "", err
	}
	return p.Private, p.Alg, nil
}

// parsePrivate is ParsePrivateJWK with the JWK's kid member.
func parsePrivate(data []byte) (*keyimport.Parsed, error) {
	if len(data) > maxKeyFile {
		return nil, errors.New("file: key file is too large to be a JWK")
	}
	return keyimport.ParseJWK(data, keyimport.Options{})
}
