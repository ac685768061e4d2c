package assertion

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/signer"
)

// TypDPoP is the typ of a DPoP proof (RFC 9449 §4.2).
const TypDPoP = "dpop+jwt"

// DPoPConfig holds what a DPoP prover needs besides its key.
type DPoPConfig struct {
	// Now and Rand make tests exact; nil means time.Now and crypto/rand.
	Now  func() time.Time
	Rand io.Reader
}

// DPoP makes RFC 9449 proofs with one key. It is safe for concurrent use.
type DPoP struct {
	s         *signer.Signer
	cfg       DPoPConfig
	headerB64 string
}

// ProofRequest is one HTTP request to prove possession for.
type ProofRequest struct {
	Method string // htm, e.g. "POST"
	URL    string // htu; query and fragment are dropped (RFC 9449 §4.2)
	Nonce  string // server-provided DPoP-Nonce, if any
	// AccessToken, when set, adds ath = base64url(SHA-256(token)) for
	// requests to a resource server.
	AccessToken string
}

// DPoPClaims is the body of a DPoP proof.
type DPoPClaims struct {
	ID       string `json:"jti"`
	Method   string `json:"htm"`
	URL      string `json:"htu"`
	IssuedAt int64  `json:"iat"`
	Nonce    string `json:"nonce,omitempty"`
	ATH      string `json:"ath,omitempty"`
}

// NewDPoP prepares the fixed header: alg, typ dpop+jwt and the public JWK
// (public half only, no kid or other extras).
func NewDPoP(s *signer.Signer, cfg DPoPConfig) (*DPoP, error) {
	if s == nil {
		return nil, errors.New("assertion: no signer")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	jwk := jose.JSONWebKey{Key: s.Public().Key}
	h, err := encodeHeader(struct {
		Typ string                  `json:"typ"`
		Alg jose.SignatureAlgorithm `json:"alg"`
		JWK *jose.JSONWebKey        `json:"jwk"`
	}{TypDPoP, s.Alg(), &jwk})
	if err != nil {
		return nil, err
	}
	return &DPoP{s: s, cfg: cfg, headerB64: h}, nil
}

// Signer is the signer the proofs are made with.
func (d *DPoP) Signer() *signer.Signer { return d.s }

// Thumbprint is the JWK thumbprint of the proof key (the cnf.jkt a server
// binds tokens to).
func (d *DPoP) Thumbprint() string { return d.s.Thumbprint() }

// Proof returns a new compact DPoP proof for one request.
func (d *DPoP) Proof(req ProofRequest) (string, error) {
	htu, err := HTU(req.URL)
	if err != nil {
		return "", err
	}
	if !ValidMethod(req.Method) {
		return "", fmt.Errorf("assertion: DPoP proof needs the request's HTTP method, got %q", req.Method)
	}
	jti, err := newJTI(d.cfg.Rand)
	if err != nil {
		return "", err
	}
	c := DPoPClaims{
		ID:       jti,
		Method:   req.Method, // as sent: methods are case-sensitive (RFC 9110 §9.1)
		URL:      htu,
		IssuedAt: d.cfg.Now().Unix(),
		Nonce:    req.Nonce,
	}
	if req.AccessToken != "" {
		c.ATH = ATH(req.AccessToken)
	}
	return compact(d.s, d.headerB64, c)
}

// ValidMethod reports whether m is an HTTP method token (RFC 9110 §9.1).
func ValidMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// ATH is base64url(SHA-256(accessToken)), the ath claim of RFC 9449 §4.2.
func ATH(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// HTU makes the htu claim from a request URL: the URL as sent (its
// escaped path), scheme and host lower case, default port dropped, no
// query or fragment. Servers compare it after NormalizeHTU.
func HTU(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "", fmt.Errorf("assertion: DPoP needs an absolute URL, got %q", raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if host == "" {
		// "http://:" or "http://:443/x" has an authority but no host; it
		// would come out as "http:///", which no server answers to.
		return "", fmt.Errorf("assertion: DPoP needs a URL with a host, got %q", raw)
	}
	if _, err := netip.ParseAddr(host); strings.Contains(host, ":") && err != nil {
		return "", fmt.Errorf("assertion: DPoP needs a URL with a host, and %q has none (an IPv6 address goes in brackets)", raw)
	}
	port := u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment, u.User = "", false, "", "", nil
	if u.Path == "" {
		u.Path = "/"
	}
	return u.String(), nil
}

// NormalizeHTU is HTU plus the syntax-based normalisation of RFC 3986
// §6.2.2 that RFC 9449 §4.3 asks servers to apply before comparing htu
// with the request: percent-encodings in upper case, unreserved
// characters decoded, dot segments removed. Reserved characters stay
// encoded ("%2F" is not "/").
func NormalizeHTU(raw string) (string, error) {
	h, err := HTU(raw)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(h)
	if err != nil {
		return "", err
	}
	p := normalizePercent(u.EscapedPath())
	p = removeDotSegments(p)
	return u.Scheme + "://" + u.Host + p, nil
}

func normalizePercent(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && ishex(p[i+1]) && ishex(p[i+2]) {
			c := unhex(p[i+1])<<4 | unhex(p[i+2])
			if unreserved(c) {
				b.WriteByte(c)
			} else {
				b.WriteByte('%')
				b.WriteString(strings.ToUpper(p[i+1 : i+3]))
			}
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// removeDotSegments is RFC 3986 §5.2.4.
func removeDotSegments(in string) string {
	var out []string
	for _, seg := range strings.Split(in, "/")[1:] {
		switch seg {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	p := "/" + strings.Join(out, "/")
	// A trailing "." or ".." leaves a directory: keep its slash.
	if strings.HasSuffix(in, "/.") || strings.HasSuffix(in, "/..") {
		if !strings.HasSuffix(p, "/") {
			p += "/"
		}
	}
	return p
}
