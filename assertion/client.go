package assertion

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/signer"
)

// TypHelseID is the JWT typ HelseID requires on client assertions.
const TypHelseID = "client-authentication+jwt"

// DefaultLifetime is how long an assertion is valid: long enough for one
// token request, short enough that a leaked one is useless soon.
const DefaultLifetime = 10 * time.Second

// MaxLifetime is the longest lifetime allowed without Config.Force.
const MaxLifetime = 60 * time.Second

// ErrLifetime: the lifetime is over MaxLifetime and not forced.
var ErrLifetime = errors.New("assertion: lifetime too long")

// jtiBytes is the jti length: 256 bits from crypto/rand.
const jtiBytes = 32

// Config describes the client assertions one client signs.
type Config struct {
	// ClientID is both iss and sub (RFC 7523 §3).
	ClientID string
	// Audience is aud: for HelseID the issuer URI, for others usually the
	// token endpoint.
	Audience string
	// Lifetime is exp - iat. Zero means DefaultLifetime; more than
	// MaxLifetime is refused unless Force is set.
	Lifetime time.Duration
	Force    bool
	// Typ is the JWT header typ. Empty means TypHelseID; set "JWT" for
	// servers that want the plain RFC 7523 form.
	Typ string
	// Details become the assertion_details claim (HelseID: organisation
	// numbers, see OrgDetails): one detail as a JSON object, several as an
	// array, as HelseID.Library sends them. Nil leaves the claim out.
	Details []any
	// Now and Rand make tests exact; nil means time.Now and crypto/rand.
	Now  func() time.Time
	Rand io.Reader
}

// Client signs RFC 7523 §2.2 client assertions. It is safe for concurrent
// use; every call to Sign gives a new jti.
type Client struct {
	s         *signer.Signer
	cfg       Config
	headerB64 string
	// fixed holds the claims that are the same in every assertion (iss,
	// sub, aud, assertion_details) as JSON members, encoded once by
	// encoding/json; Sign appends only iat, nbf, exp and jti.
	fixed []byte
}

// Claims is the JWT body of a client assertion.
type Claims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	Audience  string `json:"aud"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expiry    int64  `json:"exp"`
	ID        string `json:"jti"`
	// Details is one detail (an object) or several (an array).
	Details any `json:"assertion_details,omitempty"`
}

// NewClient checks cfg and prepares the fixed header (alg, kid, typ).
func NewClient(s *signer.Signer, cfg Config) (*Client, error) {
	if s == nil {
		return nil, errors.New("assertion: no signer")
	}
	if cfg.ClientID == "" {
		return nil, errors.New("assertion: client id is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("assertion: audience is required (for HelseID, the issuer URI)")
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Lifetime < time.Second {
		return nil, fmt.Errorf("assertion: lifetime %v is too short (at least 1s)", cfg.Lifetime)
	}
	if cfg.Lifetime > MaxLifetime && !cfg.Force {
		return nil, fmt.Errorf("%w: %v is longer than %v; a leaked assertion would stay usable (set Config.Force if the server really needs it)", ErrLifetime, cfg.Lifetime, MaxLifetime)
	}
	if cfg.Typ == "" {
		cfg.Typ = TypHelseID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	h, err := encodeHeader(struct {
		Alg jose.SignatureAlgorithm `json:"alg"`
		Kid string                  `json:"kid"`
		Typ string                  `json:"typ"`
	}{s.Alg(), s.KeyID(), cfg.Typ})
	if err != nil {
		return nil, err
	}
	var details any // nil: left out
	switch len(cfg.Details) {
	case 0:
	case 1:
		details = cfg.Details[0]
	default:
		details = cfg.Details
	}
	fixed, err := json.Marshal(struct {
		Issuer   string `json:"iss"`
		Subject  string `json:"sub"`
		Audience string `json:"aud"`
		Details  any    `json:"assertion_details,omitempty"`
	}{cfg.ClientID, cfg.ClientID, cfg.Audience, details})
	if err != nil {
		return nil, fmt.Errorf("assertion: encode claims: %w", err)
	}
	// The members without the object's braces.
	fixed = fixed[1 : len(fixed)-1]
	return &Client{s: s, cfg: cfg, headerB64: h, fixed: fixed}, nil
}

// Signer is the signer the assertions are made with.
func (c *Client) Signer() *signer.Signer { return c.s }

// Sign returns a new compact client assertion.
func (c *Client) Sign() (string, error) {
	jti, err := newJTI(c.cfg.Rand)
	if err != nil {
		return "", err
	}
	now := c.cfg.Now().Unix()
	// The same JSON encoding/json would give for Claims, built by hand:
	// the variable members are numbers and a base64url jti, which need no
	// escaping.
	p := make([]byte, 0, len(c.fixed)+112)
	p = append(p, '{')
	p = append(p, c.fixed...)
	p = append(p, `,"iat":`...)
	p = strconv.AppendInt(p, now, 10)
	p = append(p, `,"nbf":`...)
	p = strconv.AppendInt(p, now, 10)
	p = append(p, `,"exp":`...)
	p = strconv.AppendInt(p, now+int64(c.cfg.Lifetime/time.Second), 10)
	p = append(p, `,"jti":"`...)
	p = append(p, jti...)
	p = append(p, `"}`...)
	return compactPayload(c.s, c.headerB64, p)
}

func newJTI(r io.Reader) (string, error) {
	var b [jtiBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("assertion: random jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
