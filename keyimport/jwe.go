package keyimport

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
)

// The algorithms a passphrase-encrypted JWK uses: jwkctl writes
// PBES2-HS512+A256KW with A256GCM, step PBES2-HS256+A128KW.
var (
	pbes2Algs = []jose.KeyAlgorithm{jose.PBES2_HS256_A128KW, jose.PBES2_HS384_A192KW, jose.PBES2_HS512_A256KW}
	allEncs   = []jose.ContentEncryption{jose.A128GCM, jose.A192GCM, jose.A256GCM,
		jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512}
	allKeyAlgs = []jose.KeyAlgorithm{jose.RSA1_5, jose.RSA_OAEP, jose.RSA_OAEP_256, jose.A128KW, jose.A192KW,
		jose.A256KW, jose.DIRECT, jose.ECDH_ES, jose.ECDH_ES_A128KW, jose.ECDH_ES_A192KW, jose.ECDH_ES_A256KW,
		jose.A128GCMKW, jose.A192GCMKW, jose.A256GCMKW, jose.PBES2_HS256_A128KW, jose.PBES2_HS384_A192KW, jose.PBES2_HS512_A256KW}
)

// maxP2C is go-jose's own bound on PBES2 iterations; checked first to say so.
const maxP2C = 1_000_000

func parseCompactJWE(data []byte, opts Options) (*Parsed, error) {
	return parseJWE(data, opts, FormatJWECompact, jose.ParseEncryptedCompact)
}

func parseJSONJWE(data []byte, opts Options) (*Parsed, error) {
	return parseJWE(data, opts, FormatJWEJSON, jose.ParseEncryptedJSON)
}

type jweParser func(string, []jose.KeyAlgorithm, []jose.ContentEncryption) (*jose.JSONWebEncryption, error)

// parseJWE decrypts a PBES2 JWE whose plaintext is a private JWK or JWK
// Set.
func parseJWE(data []byte, opts Options, format string, parseEnc jweParser) (*Parsed, error) {
	obj, err := parseEnc(string(data), pbes2Algs, allEncs)
	if err != nil {
		if other, err2 := parseEnc(string(data), allKeyAlgs, allEncs); err2 == nil {
			alg := other.Header.Algorithm
			if alg == "" {
				alg = "not PBES2"
			}
			return nil, fmt.Errorf("%w: a %s encrypted to a key (alg %s), not with a passphrase; decrypt it with the tool that made it", ErrUnknownFormat, format, alg)
		}
		return nil, fmt.Errorf("%w: a %s that does not parse (%s)", ErrUnknownFormat, format, joseProblem(err))
	}
	for _, h := range jweHeaders(data) {
		if h.P2C > maxP2C {
			return nil, fmt.Errorf("%w: a %s asking for %d PBES2 iterations (at most %d are allowed)", ErrUnknownFormat, format, h.P2C, maxP2C)
		}
	}
	if len(opts.Passphrase) == 0 {
		return nil, fmt.Errorf("%w: a %s: %w", ErrEncrypted, format, keystore.ErrPassphrase)
	}
	_, _, plain, err := obj.DecryptMulti(opts.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot decrypt the %s with this passphrase", keystore.ErrPassphrase, format)
	}
	p, err := parseJSON(clean(plain), opts, false)
	if err != nil {
		return nil, fmt.Errorf("the %s's content: %w", format, err)
	}
	p.Format = format
	return p, nil
}

type jweHeader struct {
	Alg string `json:"alg"`
	P2C int64  `json:"p2c"`
}

// jweHeaders returns the protected and unprotected headers of a compact or
// JSON JWE, as far as they read, for messages and the p2c bound.
func jweHeaders(data []byte) []jweHeader {
	var out []jweHeader
	add := func(raw []byte) {
		var h jweHeader
		if json.Unmarshal(raw, &h) == nil {
			out = append(out, h)
		}
	}
	addB64 := func(s string) {
		if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "=")); err == nil {
			add(b)
		}
	}
	if len(data) > 0 && data[0] != '{' {
		addB64(strings.SplitN(string(data), ".", 2)[0])
		return out
	}
	var j struct {
		Protected   string          `json:"protected"`
		Unprotected json.RawMessage `json:"unprotected"`
		Header      json.RawMessage `json:"header"`
		Recipients  []struct {
			Header json.RawMessage `json:"header"`
		} `json:"recipients"`
	}
	if json.Unmarshal(data, &j) != nil {
		return nil
	}
	addB64(j.Protected)
	add(j.Unprotected)
	add(j.Header)
	for _, r := range j.Recipients {
		add(r.Header)
	}
	return out
}
