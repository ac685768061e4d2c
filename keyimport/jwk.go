package keyimport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// jwkHeader holds the JWK members read before go-jose parses the key, to
// name what the key is when it cannot be used.
type jwkHeader struct {
	Kty    string          `json:"kty"`
	Crv    string          `json:"crv"`
	Kid    string          `json:"kid"`
	Alg    string          `json:"alg"`
	Use    string          `json:"use"`
	KeyOps json.RawMessage `json:"key_ops"`
	D      json.RawMessage `json:"d"`
}

// parseJWK reads one private JWK. Format is left for the caller to set.
func parseJWK(data []byte) (*Parsed, error) {
	var h jwkHeader
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, errorf(ErrUnknownFormat, "a JWK whose %s", jsonProblem(err))
	}
	switch h.Kty {
	case "":
		return nil, errorf(ErrUnknownFormat, "a JWK without kty")
	case "oct":
		return nil, errorf(ErrUnsupportedKey, "a symmetric (kty oct) key cannot sign client assertions; want an RSA or EC private key")
	case "OKP":
		if h.Crv == "Ed25519" {
			return nil, errorf(ErrUnsupportedKey, "an Ed25519 (kty OKP) key cannot sign client assertions; want an RSA or EC private key")
		}
		return nil, errorf(ErrUnsupportedKey, "an OKP key (crv %q) cannot sign client assertions; want an RSA or EC private key", h.Crv)
	case "RSA", "EC":
	default:
		return nil, errorf(ErrUnsupportedKey, "a JWK of kty %q cannot sign client assertions; want an RSA or EC private key", h.Kty)
	}
	if len(h.D) == 0 || string(h.D) == "null" {
		return nil, errorf(ErrPublicKey, "this is a public JWK (kty %s, no \"d\"); import the private JWK", h.Kty)
	}
	var warnings []string
	if h.Use != "" && h.Use != "sig" {
		warnings = append(warnings, fmt.Sprintf("the JWK says use %q", h.Use))
	}
	if len(h.KeyOps) > 0 && string(h.KeyOps) != "null" {
		var ops []string
		if err := json.Unmarshal(h.KeyOps, &ops); err != nil {
			return nil, errorf(ErrUnknownFormat, "the JWK's key_ops is not a list of strings")
		}
		sign := false
		for _, op := range ops {
			sign = sign || op == "sign"
		}
		if !sign {
			warnings = append(warnings, `key_ops lacks "sign"`)
		}
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, errorf(ErrUnknownFormat, "the %s JWK's members are unreadable: %s", h.Kty, joseProblem(err))
	}
	if jwk.IsPublic() {
		return nil, errorf(ErrPublicKey, "this is a public JWK (kty %s, no \"d\"); import the private JWK", h.Kty)
	}
	return finish(jwk.Key, h.Alg, h.Kid, warnings)
}

// joseProblem describes a go-jose JWK error. go-jose's own messages name
// members, not values; encoding/json's are replaced as in jsonProblem.
func joseProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch msg := err.Error(); {
	case errors.As(err, &se) || errors.As(err, &te):
		return jsonProblem(err)
	case strings.Contains(msg, "cannot unmarshal"):
		return "a member is of the wrong type"
	case strings.Contains(msg, "illegal base64"):
		return "a member is not base64url"
	case !strings.HasPrefix(msg, "go-jose/go-jose: "):
		return "unreadable members"
	default:
		return strings.TrimPrefix(msg, "go-jose/go-jose: ")
	}
}

// parseJWKSet reads a JWK Set and picks its one key, or the one whose kid
// is opts.Kid.
func parseJWKSet(data []byte, opts Options) (*Parsed, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, errorf(ErrUnknownFormat, "a JWK Set whose %s", jsonProblem(err))
	}
	if len(set.Keys) == 0 {
		return nil, errorf(ErrUnknownFormat, "the JWK Set holds no keys")
	}
	kids := make([]string, len(set.Keys))
	for i, k := range set.Keys {
		var h struct {
			Kid any `json:"kid"`
		}
		if json.Unmarshal(k, &h) == nil {
			kids[i], _ = h.Kid.(string)
		}
	}
	pick := -1
	switch {
	case opts.Kid != "":
		for i, kid := range kids {
			if kid != opts.Kid {
				continue
			}
			if pick >= 0 {
				return nil, errorf(ErrKid, "the JWK Set holds more than one key with kid %q", opts.Kid)
			}
			pick = i
		}
		if pick < 0 {
			return nil, errorf(ErrKid, "the JWK Set holds no key with kid %q; its kids: %s", opts.Kid, listKids(kids))
		}
	case len(set.Keys) == 1:
		pick = 0
	default:
		return nil, errorf(ErrKid, "the JWK Set holds %d keys (kids %s); name the one to import by its kid", len(set.Keys), listKids(kids))
	}
	p, err := parseJWK(set.Keys[pick])
	if err != nil {
		return nil, err
	}
	p.Format = FormatJWKSet
	return p, nil
}

func listKids(kids []string) string {
	q := make([]string, len(kids))
	for i, k := range kids {
		if k == "" {
			q[i] = "(none)"
		} else {
			q[i] = fmt.Sprintf("%q", k)
		}
	}
	return strings.Join(q, ", ")
}

func isPercentEncodedJSON(data []byte) bool {
	return len(data) >= 3 && data[0] == '%' && bytes.EqualFold(data[:3], []byte("%7B"))
}

// percentDecode undoes the percent-encoding some clients leave on a JWK.
// url's errors quote the bad escape, which is input: not repeated here.
func percentDecode(data []byte) ([]byte, error) {
	s, err := url.QueryUnescape(string(data))
	if err != nil {
		return nil, errorf(ErrUnknownFormat, "percent-encoded text with a broken escape")
	}
	return clean([]byte(s)), nil
}
