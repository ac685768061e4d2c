package keyimport

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
)

// Parsed is a private key read from any supported format.
type Parsed struct {
	Private  crypto.Signer           // *rsa.PrivateKey or *ecdsa.PrivateKey, validated with keystore.CheckPrivateKey
	Alg      jose.SignatureAlgorithm // the source's alg, "" if none
	Kid      string                  // the kid the source carried, "" if none
	Format   string                  // what the input was, for messages (one of the Format… constants)
	Warnings []string                // e.g. `the JWK says use "enc"`, `key_ops lacks "sign"`
}

// Options for Parse.
type Options struct {
	Passphrase []byte // for encrypted PKCS#8 PEM and PBES2 JWE (compact and JSON serialization)
	Kid        string // pick this key from a JWK Set of several
}

// The formats Parse tells apart, as Parsed.Format names them.
const (
	FormatJWK          = "private JWK"
	FormatJWKSet       = "JWK Set"
	FormatDownload     = "Selvbetjening download"
	FormatPKCS8        = "PKCS#8 PEM"
	FormatPKCS1        = "PKCS#1 PEM"
	FormatSEC1         = "SEC1 EC PEM"
	FormatEncPKCS8     = "encrypted PKCS#8 PEM"
	FormatJWECompact   = "JWE (compact)"
	FormatJWEJSON      = "JWE (JSON)"
	FormatDotNetRSAXML = ".NET RSA XML"
)

// Sentinel errors; Parse wraps them with a sentence naming what the input
// is, so callers can add their own advice (which flag to give).
var (
	// ErrUnknownFormat: the input is no key format keyimport knows.
	ErrUnknownFormat = errors.New("keyimport: not a private key in a known format")
	// ErrPublicKey: the input holds only a public key.
	ErrPublicKey = errors.New("keyimport: this is a public key, not a private key")
	// ErrCertificate: the input is a certificate (or request), not a key.
	ErrCertificate = errors.New("keyimport: this is a certificate, not a key")
	// ErrUnsupportedKey: a private key that cannot sign client assertions
	// (Ed25519, X25519, symmetric).
	ErrUnsupportedKey = errors.New("keyimport: this kind of key cannot sign client assertions")
	// ErrEncrypted: the key is encrypted and no passphrase was given. It
	// is also keystore.ErrPassphrase.
	ErrEncrypted = errors.New("keyimport: the key is encrypted; a passphrase is needed")
	// ErrNoPrivateKey: a Selvbetjening download without a private key.
	ErrNoPrivateKey = errors.New("keyimport: a Selvbetjening download without a private key")
	// ErrDownload: a Selvbetjening download that lacks a member or has one
	// of the wrong type.
	ErrDownload = errors.New("keyimport: not a usable Selvbetjening download")
	// ErrKid: Options.Kid names no key, or several keys and no Kid.
	ErrKid = errors.New("keyimport: which key to import is unclear")
)

// maxInput bounds what Parse reads: a key, even an RSA-16384 JWK inside a
// download, is far smaller.
const maxInput = 1 << 20

// Parse detects the format from content (never the file name) and returns
// the key. A UTF-8 byte order mark (or UTF-16 text) and surrounding white
// space are allowed. Errors never contain key material.
func Parse(data []byte, opts Options) (*Parsed, error) {
	if len(data) > maxInput {
		return nil, errorf(ErrUnknownFormat, "the input holds more than %d bytes, too much for a key", maxInput)
	}
	var p *Parsed
	var err error
	if len(data) > 0 && data[0] == 0x30 {
		// Binary DER: trimming "white space" would cut it.
		p, err = parseDER(data)
	} else {
		p, err = parse(clean(data), opts)
	}
	return checkKid(p, err, opts)
}

// ParseJWK is Parse for a private JWK or a JWK Set only (with or without a
// byte order mark): for a caller whose files are JWKs, such as the file
// backend, that must not take a PEM or a download for one.
func ParseJWK(data []byte, opts Options) (*Parsed, error) {
	if len(data) > maxInput {
		return nil, errorf(ErrUnknownFormat, "the input holds more than %d bytes, too much for a JWK", maxInput)
	}
	data = clean(data)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errorf(ErrUnknownFormat, "not a JWK: %s", jsonProblem(err))
	}
	if _, ok := m["keys"]; ok {
		p, err := parseJWKSet(data, opts)
		return checkKid(p, err, opts)
	}
	p, err := parseJWK(data)
	if err == nil {
		p.Format = FormatJWK
	}
	return checkKid(p, err, opts)
}

// checkKid holds a parsed key to opts.Kid, which must name it when given.
func checkKid(p *Parsed, err error, opts Options) (*Parsed, error) {
	if err != nil {
		return nil, err
	}
	if opts.Kid != "" && p.Kid != opts.Kid {
		if p.Kid == "" {
			return nil, errorf(ErrKid, "a %s carries no kid, so kid %q cannot pick its key", p.Format, opts.Kid)
		}
		return nil, errorf(ErrKid, "the %s's key has kid %q, not %q", p.Format, p.Kid, opts.Kid)
	}
	return p, nil
}

func parse(data []byte, opts Options) (*Parsed, error) {
	switch {
	case len(data) == 0:
		return nil, errorf(ErrUnknownFormat, "the input is empty")
	case data[0] == '{':
		return parseJSON(data, opts, true)
	case bytes.Contains(data, []byte("-----BEGIN ")):
		return parsePEM(data, opts)
	case data[0] == '<':
		p, err := parseXML(data)
		if err != nil {
			return nil, err
		}
		p.Format = FormatDotNetRSAXML
		return p, nil
	case isPercentEncodedJSON(data):
		plain, err := percentDecode(data)
		if err != nil {
			return nil, err
		}
		return parseJSON(plain, opts, true)
	case isCompact(data, 5):
		return parseCompactJWE(data, opts)
	case isCompact(data, 3):
		return nil, errorf(ErrUnknownFormat, "this is a signed JWT or JWS, not a key")
	}
	return nil, errorf(ErrUnknownFormat, "not a key format jwkctl reads; want a private JWK or JWK Set, a Selvbetjening download, a PEM or DER private key, a PBES2 JWE or .NET RSA XML")
}

// parseJSON tells apart the JSON formats. outer is false for the
// plaintext of a JWE, which must be a JWK or JWK Set.
func parseJSON(data []byte, opts Options, outer bool) (*Parsed, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errorf(ErrUnknownFormat, "%s", jsonProblem(err))
	}
	_, hasKeys := m["keys"]
	_, hasKty := m["kty"]
	_, hasCiphertext := m["ciphertext"]
	_, hasPayload := m["payload"]
	switch {
	case hasKeys:
		return parseJWKSet(data, opts)
	case hasKty:
		p, err := parseJWK(data)
		if err != nil {
			return nil, err
		}
		p.Format = FormatJWK
		return p, nil
	case outer && (isDownloadMap(m) || hasAny(m, "privateJwk", "rsaPrivateKey")):
		d, err := ParseDownload(data)
		if err != nil {
			return nil, err
		}
		return d.Key, nil
	case outer && hasCiphertext:
		return parseJSONJWE(data, opts)
	case hasPayload:
		return nil, errorf(ErrUnknownFormat, "this is a signed JWS, not a key")
	case !outer:
		return nil, errorf(ErrUnknownFormat, "the JWE holds JSON that is neither a JWK nor a JWK Set")
	}
	if _, ok := m["clientId"]; ok {
		return nil, errorf(ErrNoPrivateKey, "JSON with a clientId but no privateJwk or rsaPrivateKey: a Selvbetjening download without a private key")
	}
	return nil, errorf(ErrUnknownFormat, "JSON, but neither a JWK (no kty), a JWK Set (no keys), a JWE nor a Selvbetjening download")
}

func hasAny(m map[string]json.RawMessage, names ...string) bool {
	for _, n := range names {
		if _, ok := m[n]; ok {
			return true
		}
	}
	return false
}

// finish checks a parsed private key and its alg and fills in Parsed.
func finish(key any, alg, kid string, warnings []string) (*Parsed, error) {
	var priv crypto.Signer
	switch k := key.(type) {
	case *rsa.PrivateKey:
		priv = k
	case *ecdsa.PrivateKey:
		priv = k
	case ed25519.PrivateKey, *ed25519.PrivateKey:
		return nil, errorf(ErrUnsupportedKey, "an Ed25519 key cannot sign client assertions; want an RSA or EC (P-256/384/521) key")
	case *ecdh.PrivateKey:
		return nil, errorf(ErrUnsupportedKey, "an X25519 (key agreement) key cannot sign client assertions; want an RSA or EC (P-256/384/521) key")
	case []byte:
		return nil, errorf(ErrUnsupportedKey, "a symmetric (kty oct) key cannot sign client assertions; want an RSA or EC private key")
	default:
		return nil, errorf(ErrUnsupportedKey, "a %s key cannot sign client assertions; want an RSA or EC private key", keyKind(key))
	}
	if k, ok := priv.(*rsa.PrivateKey); ok {
		if err := checkSize(&k.PublicKey); err != nil {
			return nil, err
		}
	}
	if err := keystore.CheckPrivateKey(priv); err != nil {
		return nil, errorf(keystore.ErrWeakKey, "%s", strings.TrimPrefix(err.Error(), "keystore: "))
	}
	p := &Parsed{Private: priv, Kid: kid, Warnings: warnings}
	if alg != "" {
		a, err := signer.ParseAlg(alg)
		if err != nil {
			if isKeyManagementAlg(alg) {
				p.Warnings = append(p.Warnings, fmt.Sprintf("the key says alg %q, an encryption algorithm; its alg is left for you to choose", alg))
				return p, nil
			}
			return nil, fmt.Errorf("keyimport: the key's alg: %w", err)
		}
		if err := signer.Fits(a, priv.Public()); err != nil {
			return nil, fmt.Errorf("keyimport: the key's alg %s does not fit it: %w", a, err)
		}
		p.Alg = a
	}
	return p, nil
}

// maxRSABits bounds the RSA keys checked: validating a key costs time
// cubic in its size, and no one signs assertions with more than 16384 bits.
const maxRSABits = 16384

func checkSize(k *rsa.PublicKey) error {
	if n := k.N.BitLen(); n > maxRSABits {
		return errorf(keystore.ErrWeakKey, "the RSA key has %d bits; at most %d are supported", n, maxRSABits)
	}
	return nil
}

func isKeyManagementAlg(alg string) bool {
	switch jose.KeyAlgorithm(alg) {
	case jose.RSA1_5, jose.RSA_OAEP, jose.RSA_OAEP_256, jose.ECDH_ES, jose.ECDH_ES_A128KW,
		jose.ECDH_ES_A192KW, jose.ECDH_ES_A256KW:
		return true
	}
	return false
}

func keyKind(key any) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", key), "*")
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// clean drops a byte order mark and surrounding white space; UTF-16 text
// (as some Windows editors save) becomes UTF-8.
func clean(data []byte) []byte {
	data = bytes.TrimSpace(data)
	if len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		data = fromUTF16(data)
	}
	for bytes.HasPrefix(data, utf8BOM) {
		data = bytes.TrimSpace(data[len(utf8BOM):])
	}
	return data
}

func fromUTF16(data []byte) []byte {
	le := data[0] == 0xFF
	u := make([]uint16, 0, len(data)/2)
	for i := 2; i+1 < len(data); i += 2 {
		if le {
			u = append(u, uint16(data[i])|uint16(data[i+1])<<8)
		} else {
			u = append(u, uint16(data[i])<<8|uint16(data[i+1]))
		}
	}
	return bytes.TrimSpace([]byte(string(utf16.Decode(u))))
}

// isCompact reports whether data looks like a compact JWS (3 parts) or JWE
// (5 parts): base64url parts joined by dots, the first a JSON header.
func isCompact(data []byte, parts int) bool {
	if !bytes.HasPrefix(data, []byte("ey")) || bytes.Count(data, []byte(".")) != parts-1 {
		return false
	}
	for _, c := range data {
		if !(c == '.' || c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// jsonProblem describes a JSON error without quoting the input, which may
// hold key material: encoding/json's syntax errors quote a character, and
// its type errors name Go types.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("member %s is a JSON %s, of the wrong type", te.Field, te.Value)
	case errors.As(err, &te):
		return fmt.Sprintf("a JSON %s where an object is expected", te.Value)
	}
	return "unreadable JSON"
}

// Spec describes the key (its type, size or curve, and Alg) for messages:
// p.Spec().String() is "RSA-4096" or "EC P-256".
func (p *Parsed) Spec() keystore.KeySpec {
	switch k := p.Private.(type) {
	case *rsa.PrivateKey:
		return keystore.KeySpec{Type: keystore.RSA, Bits: k.N.BitLen(), Alg: p.Alg}
	case *ecdsa.PrivateKey:
		return keystore.KeySpec{Type: keystore.EC, Curve: k.Curve, Alg: p.Alg}
	}
	return keystore.KeySpec{Alg: p.Alg}
}
