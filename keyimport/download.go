package keyimport

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"fmt"
)

// Download is a HelseID configuration downloaded from Selvbetjening.
type Download struct {
	ClientName, Authority, ClientID string
	GrantTypes, Scopes              []string
	SecretType                      string
	RSAKeySizeBits                  int
	Key                             *Parsed // from privateJwk, else rsaPrivateKey
}

// IsDownload reports whether data looks like a Selvbetjening download (has
// clientId and one of privateJwk / rsaPrivateKey / secretType).
func IsDownload(data []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(clean(data), &m) == nil && isDownloadMap(m)
}

func isDownloadMap(m map[string]json.RawMessage) bool {
	_, ok := m["clientId"]
	return ok && hasAny(m, "privateJwk", "rsaPrivateKey", "secretType")
}

// ParseDownload reads a Selvbetjening download; errors say what is missing
// (no clientId, privateJwk not JSON, both key fields empty, wrong types).
// privateJwk is a JSON string holding a JWK, possibly percent-encoded (a
// JSON object is accepted too); rsaPrivateKey is .NET RSA XML and is used
// only when privateJwk is empty.
func ParseDownload(data []byte) (*Download, error) {
	if len(data) > maxInput {
		return nil, errorf(ErrDownload, "the input holds more than %d bytes, too much for a Selvbetjening download", maxInput)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(clean(data), &m); err != nil {
		return nil, errorf(ErrDownload, "not a Selvbetjening download: %s", jsonProblem(err))
	}
	var d Download
	var err error
	str := func(name string, dst *string) {
		if err == nil {
			err = member(m, name, dst, "a string")
		}
	}
	strs := func(name string, dst *[]string) {
		if err == nil {
			err = member(m, name, dst, "a list of strings")
		}
	}
	str("clientId", &d.ClientID)
	str("clientName", &d.ClientName)
	str("authority", &d.Authority)
	str("secretType", &d.SecretType)
	strs("grantTypes", &d.GrantTypes)
	strs("scopes", &d.Scopes)
	if err == nil {
		err = member(m, "rsaKeySizeBits", &d.RSAKeySizeBits, "a whole number")
	}
	if err != nil {
		return nil, err
	}
	if d.ClientID == "" {
		return nil, errorf(ErrDownload, "the Selvbetjening download has no clientId")
	}
	jwkData, err := privateJWKMember(m)
	if err != nil {
		return nil, err
	}
	var xmlKey string
	if err := member(m, "rsaPrivateKey", &xmlKey, "a string"); err != nil {
		return nil, err
	}
	switch {
	case jwkData != nil:
		p, err := parseJSONKey(jwkData, "privateJwk")
		if err != nil {
			return nil, err
		}
		d.Key = p
		if xmlKey != "" {
			if err := sameKey(p, xmlKey); err != nil {
				return nil, err
			}
		}
	case xmlKey != "":
		p, err := parseRSAPrivateKey(xmlKey)
		if err != nil {
			return nil, within("the Selvbetjening download's rsaPrivateKey", err)
		}
		d.Key = p
	default:
		return nil, errorf(ErrNoPrivateKey, "a Selvbetjening download without a private key (privateJwk and rsaPrivateKey are empty): Selvbetjening shows a private key only when it makes one; "+
			"make a new key there, or generate one with jwkctl keys generate and upload its public JWK")
	}
	d.Key.Format = FormatDownload
	if rk, ok := d.Key.Private.(*rsa.PrivateKey); ok && d.RSAKeySizeBits != 0 && rk.N.BitLen() != d.RSAKeySizeBits {
		d.Key.Warnings = append(d.Key.Warnings, fmt.Sprintf("the download says rsaKeySizeBits %d, but its key has %d bits", d.RSAKeySizeBits, rk.N.BitLen()))
	}
	return &d, nil
}

// parseRSAPrivateKey reads a download's rsaPrivateKey: .NET RSA XML as
// Selvbetjening writes it, or PEM, which a hand-edited file may hold.
func parseRSAPrivateKey(s string) (*Parsed, error) {
	b := clean([]byte(s))
	if bytes.Contains(b, []byte("-----BEGIN ")) {
		return parsePEM(b, Options{})
	}
	return parseXML(b)
}

// member decodes m[name] into dst; a missing member or JSON null leaves
// dst as it is.
func member(m map[string]json.RawMessage, name string, dst any, want string) error {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return errorf(ErrDownload, "the Selvbetjening download's %s is a JSON %s, not %s", name, jsonKind(raw), want)
	}
	return nil
}

// jsonKind names the kind of a JSON value without quoting it.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "value"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// privateJWKMember returns the JSON of the privateJwk member, nil when it
// is missing, null or empty.
func privateJWKMember(m map[string]json.RawMessage) ([]byte, error) {
	raw, ok := m["privateJwk"]
	raw = bytes.TrimSpace(raw)
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	if len(raw) > 0 && raw[0] == '{' {
		return raw, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errorf(ErrDownload, "the Selvbetjening download's privateJwk is a JSON %s, not a string holding a JWK", jsonKind(raw))
	}
	b := clean([]byte(s))
	if len(b) == 0 {
		return nil, nil
	}
	if isPercentEncodedJSON(b) {
		var err error
		if b, err = percentDecode(b); err != nil {
			return nil, errorf(ErrDownload, "the Selvbetjening download's privateJwk is percent-encoded with a broken escape")
		}
	}
	if !json.Valid(b) || b[0] != '{' {
		return nil, errorf(ErrDownload, "the Selvbetjening download's privateJwk is not JSON (a JWK is expected)")
	}
	return b, nil
}

// parseJSONKey reads a private JWK or a JWK Set of one key, from the
// member of a download named what.
func parseJSONKey(data []byte, what string) (*Parsed, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errorf(ErrDownload, "the Selvbetjening download's %s: %s", what, jsonProblem(err))
	}
	if _, ok := m["keys"]; ok {
		p, err := parseJWKSet(data, Options{})
		if err != nil {
			return nil, within("the Selvbetjening download's "+what, err)
		}
		return p, nil
	}
	p, err := parseJWK(data)
	if err != nil {
		return nil, within("the Selvbetjening download's "+what, err)
	}
	return p, nil
}

// sameKey checks that a download's rsaPrivateKey holds the key its
// privateJwk does; if it is unreadable, privateJwk wins with a warning.
func sameKey(p *Parsed, xmlKey string) error {
	x, err := parseRSAPrivateKey(xmlKey)
	if err != nil {
		p.Warnings = append(p.Warnings, "the download's rsaPrivateKey is unreadable; its privateJwk is used")
		return nil
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if !x.Private.Public().(equaler).Equal(p.Private.Public()) {
		return errorf(ErrDownload, "the Selvbetjening download's privateJwk and rsaPrivateKey hold different keys")
	}
	return nil
}
