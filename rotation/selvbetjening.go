package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/token"
)

// Scope is the HelseID scope the client-secret API requires, in a
// DPoP-bound token obtained with the client's current key.
const Scope = "nhn:selvbetjening/client"

// NHN's client-secret endpoints.
const (
	TestEndpoint       = "https://api.selvbetjening.test.nhn.no/v1/client-secret"
	ProductionEndpoint = "https://api.selvbetjening.nhn.no/v1/client-secret"
)

// DefaultEndpoint picks the client-secret endpoint that belongs to a
// HelseID issuer; for other issuers (the dev STS) it is issuer +
// /v1/client-secret.
func DefaultEndpoint(issuer string) string {
	u, err := url.Parse(issuer)
	if err == nil {
		switch strings.ToLower(u.Host) {
		case "helseid-sts.test.nhn.no":
			return TestEndpoint
		case "helseid-sts.nhn.no":
			return ProductionEndpoint
		}
	}
	return strings.TrimRight(issuer, "/") + "/v1/client-secret"
}

// Errors from the client-secret API. A *ProblemError wraps one of them.
var (
	ErrUnauthorized = errors.New("selvbetjening: unauthorized (401)")
	ErrForbidden    = errors.New("selvbetjening: forbidden (403)")
	ErrBadRequest   = errors.New("selvbetjening: request refused (400)")
	ErrServer       = errors.New("selvbetjening: server error")
	ErrBadResponse  = errors.New("selvbetjening: unexpected response")
)

// ProblemError is an RFC 7807 problem answer.
type ProblemError struct {
	Status int
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	err    error
	hint   string
}

func (e *ProblemError) Error() string {
	msg := fmt.Sprintf("%v", e.err)
	for _, s := range []string{e.Title, e.Detail} {
		if s = oneLine(s); s != "" {
			msg += ": " + s
		}
	}
	if e.hint != "" {
		msg += " (" + e.hint + ")"
	}
	return msg
}

func (e *ProblemError) Unwrap() error { return e.err }

// RegisteredKey is one key registered for the client.
type RegisteredKey struct {
	Expiration    *time.Time      `json:"-"`
	RawExpiration json.RawMessage `json:"expiration"`
	Kid           string          `json:"kid"`
	JWKThumbprint string          `json:"jwkThumbprint"`
	Origin        string          `json:"origin"`
	PublicJWK     json.RawMessage `json:"publicJwk"`
}

// Client talks to the client-secret API. HTTP must add the DPoP-bound
// token and proofs (token.NewHTTPClient over a source for Scope).
type Client struct {
	Endpoint string
	HTTP     *http.Client
	// JWKAsString sends the JWK as a JSON string, as older NHN samples did;
	// the default is the JSON object current libraries send.
	JWKAsString bool
}

// List returns the keys registered for the client.
func (c *Client) List(ctx context.Context) ([]RegisteredKey, error) {
	body, err := c.do(ctx, http.MethodGet, nil)
	if err != nil {
		return nil, err
	}
	var keys []RegisteredKey
	if err := json.Unmarshal(body, &keys); err != nil {
		return nil, fmt.Errorf("%w: GET %s: not a list of keys", ErrBadResponse, c.Endpoint)
	}
	for i := range keys {
		if t, ok := parseTime(keys[i].RawExpiration); ok {
			keys[i].Expiration = &t
		}
	}
	return keys, nil
}

// Upload registers a public JWK and returns its expiration (when the next
// rotation is due).
func (c *Client) Upload(ctx context.Context, jwk jose.JSONWebKey) (time.Time, error) {
	if !jwk.IsPublic() {
		return time.Time{}, errors.New("selvbetjening: refusing to upload a private key")
	}
	obj, err := json.Marshal(jwk)
	if err != nil {
		return time.Time{}, err
	}
	payload := obj
	if c.JWKAsString {
		payload, _ = json.Marshal(string(obj))
	}
	body, err := c.do(ctx, http.MethodPost, payload)
	if err != nil {
		return time.Time{}, err
	}
	var out struct {
		Expiration json.RawMessage `json:"expiration"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return time.Time{}, fmt.Errorf("%w: POST %s: no expiration in the answer", ErrBadResponse, c.Endpoint)
	}
	t, ok := parseTime(out.Expiration)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: POST %s: expiration %s is not a date", ErrBadResponse, c.Endpoint, oneLine(string(out.Expiration)))
	}
	return t, nil
}

func (c *Client) do(ctx context.Context, method string, payload []byte) ([]byte, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Endpoint, body)
	if err != nil {
		return nil, fmt.Errorf("selvbetjening: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("selvbetjening: %s %s: %w", method, c.Endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("selvbetjening: %s %s: %w", method, c.Endpoint, err)
	}
	if resp.StatusCode/100 == 2 {
		return b, nil
	}
	p := &ProblemError{Status: resp.StatusCode}
	_ = json.Unmarshal(b, p)
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		p.err, p.hint = ErrUnauthorized, "the token for "+Scope+" was refused; is the scope granted to the client?"
	case resp.StatusCode == http.StatusForbidden:
		p.err, p.hint = ErrForbidden, "the client may not manage its keys; grant it "+Scope+" in Selvbetjening"
	case resp.StatusCode >= 500:
		p.err, p.hint = ErrServer, "try again later"
	case resp.StatusCode == http.StatusBadRequest:
		p.err = ErrBadRequest
	default:
		p.err = fmt.Errorf("%w: %s", ErrBadResponse, resp.Status)
	}
	if p.Title == "" && p.Detail == "" {
		p.Title = resp.Status
	}
	return nil, p
}

// parseTime reads a JSON date: RFC 3339, or .NET's local form without zone
// (taken as UTC).
func parseTime(raw json.RawMessage) (time.Time, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil || s == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		cut := 300
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut-- // not inside a character: the message stays valid UTF-8
		}
		s = s[:cut] + "…"
	}
	return s
}

// ProfileClient is a client-secret API client for a profile's client,
// authenticated with the profile's current key (a DPoP-bound token for
// Scope). The endpoint is the profile's, else the one matching its issuer.
func ProfileClient(ctx context.Context, p *profile.Profile, o profile.ClientOptions, base *http.Client) (*Client, error) {
	q := p.Clone()
	q.DPoP, q.Scopes, q.Resources = new(true), []string{Scope}, nil
	tc, err := profile.NewClient(ctx, q, o)
	if err != nil {
		return nil, err
	}
	endpoint := p.SelvbetjeningURL
	if endpoint == "" {
		endpoint = DefaultEndpoint(p.Issuer)
	}
	return &Client{Endpoint: endpoint, HTTP: token.NewHTTPClient(token.NewSource(tc), base)}, nil
}
