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
	allEncs = []jose.ContentEncryption{jose.A128GCM, jose.A192GCM, jose.A256GCM,
		jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512}
	// keyAlgs are PBES2 and, for the other recipients a JSON JWE may
	// have, the algorithms a passphrase cannot stand in for. dir and the
	// AES key wraps are left out: go-jose would take the passphrase as
	// the key itself.
	keyAlgs = []jose.KeyAlgorithm{jose.PBES2_HS256_A128KW, jose.PBES2_HS384_A192KW, jose.PBES2_HS512_A256KW,
		jose.RSA1_5, jose.RSA_OAEP, jose.RSA_OAEP_256, jose.ECDH_ES, jose.ECDH_ES_A128KW, jose.ECDH_ES_A192KW, jose.ECDH_ES_A256KW}
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
// Set. A JSON JWE may have other recipients beside the passphrase one.
func parseJWE(data []byte, opts Options, format string, parseEnc jweParser) (*Parsed, error) {
	var pbes2 bool
	var other string
	for _, h := range jweHeaders(data) {
		switch {
		case strings.HasPrefix(h.Alg, "PBES2-"):
			pbes2 = true
		case h.Alg != "":
			other = h.Alg
		}
		if h.P2C > maxP2C {
			return nil, errorf(ErrUnknownFormat, "the %s asks for %d PBES2 iterations; at most %d are allowed", format, h.P2C, maxP2C)
		}
	}
	if !pbes2 && other != "" {
		return nil, errorf(ErrUnknownFormat, "the %s is encrypted to a key (alg %q), not with a passphrase; decrypt it with the tool that made it", format, other)
	}
	obj, err := parseEnc(string(data), keyAlgs, allEncs)
	if err != nil {
		return nil, errorf(ErrUnknownFormat, "a %s that does not parse: %s", format, joseProblem(err))
	}
	if len(opts.Passphrase) == 0 {
		return nil, &kindError{msg: fmt.Sprintf("keyimport: the %s is encrypted; its passphrase is needed", format), kinds: []error{ErrEncrypted, keystore.ErrPassphrase}}
	}
	_, _, plain, err := obj.DecryptMulti(opts.Passphrase)
	if err != nil {
		return nil, errorf(keystore.ErrPassphrase, "cannot decrypt the %s: wrong passphrase", format)
	}
	p, err := parseJSON(clean(plain), opts, false)
	if err != nil {
		return nil, within("the "+format+"'s content", err)
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
