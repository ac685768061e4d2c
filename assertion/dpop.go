package assertion

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
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
func (d *DPoP) Thumbprint() string { return d.s.KeyID() }

// Proof returns a new compact DPoP proof for one request.
func (d *DPoP) Proof(req ProofRequest) (string, error) {
	htu, err := HTU(req.URL)
	if err != nil {
		return "", err
	}
	if req.Method == "" {
		return "", errors.New("assertion: DPoP proof needs an HTTP method")
	}
	jti, err := newJTI(d.cfg.Rand)
	if err != nil {
		return "", err
	}
	c := DPoPClaims{
		ID:       jti,
		Method:   strings.ToUpper(req.Method),
		URL:      htu,
		IssuedAt: d.cfg.Now().Unix(),
		Nonce:    req.Nonce,
	}
	if req.AccessToken != "" {
		c.ATH = ATH(req.AccessToken)
	}
	return compact(d.s, d.headerB64, c)
}

// ATH is base64url(SHA-256(accessToken)), the ath claim of RFC 9449 §4.2.
func ATH(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// HTU normalises a request URL for the htu claim: scheme and host lower
// case, default port dropped, no query or fragment.
func HTU(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("assertion: DPoP needs an absolute URL, got %q", raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
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
