package token

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/jwkctl/jwkctl/internal/lazyre"
	"github.com/jwkctl/jwkctl/internal/loopback"
)

// Sentinel errors. An *Error from the token endpoint wraps one (or two, when
// the clocks disagree), so callers test with errors.Is.
var (
	// ErrInvalidClient: the server did not accept the client assertion —
	// unknown client id, a key it does not know (compare kid), wrong aud.
	ErrInvalidClient = errors.New("token: invalid_client")
	// ErrInvalidScope: a scope was not granted to this client.
	ErrInvalidScope = errors.New("token: invalid_scope")
	// ErrUnauthorizedClient: the client may not use this grant.
	ErrUnauthorizedClient = errors.New("token: unauthorized_client")
	// ErrInvalidGrant: the grant (or, at some servers, the assertion) was refused.
	ErrInvalidGrant = errors.New("token: invalid_grant")
	// ErrInvalidRequest: the request was malformed or, for HelseID, an
	// assertion_details/resource value was not accepted.
	ErrInvalidRequest = errors.New("token: invalid_request")
	// ErrInvalidTarget: a resource indicator was not accepted (RFC 8707).
	ErrInvalidTarget = errors.New("token: invalid_target")
	// ErrDPoP: the server refused the DPoP proof (invalid_dpop_proof, or it
	// kept asking for a new nonce).
	ErrDPoP = errors.New("token: DPoP proof refused")
	// ErrClockSkew: this machine's clock and the server's disagree, so
	// assertions look expired or not yet valid.
	ErrClockSkew = errors.New("token: clock skew")
	// ErrServer: the server failed (5xx) or kept rate limiting (429) after
	// all retries.
	ErrServer = errors.New("token: server error")
	// ErrRejected: any other error response from the server.
	ErrRejected = errors.New("token: request rejected")
	// ErrBadResponse: a success status with a body that is not a usable
	// token response (not JSON, wrong content type, no access_token, not
	// DPoP-bound when DPoP was asked for).
	ErrBadResponse = errors.New("token: malformed token response")
	// ErrDiscovery: the OpenID configuration could not be fetched or used.
	ErrDiscovery = errors.New("token: discovery failed")
	// ErrInsecureURL: a URL is plain http to a host that is not loopback.
	ErrInsecureURL = errors.New("token: insecure URL")
)

// codeSentinels maps OAuth error codes to sentinels.
var codeSentinels = map[string]error{
	"invalid_client":      ErrInvalidClient,
	"invalid_scope":       ErrInvalidScope,
	"unauthorized_client": ErrUnauthorizedClient,
	"invalid_grant":       ErrInvalidGrant,
	"invalid_request":     ErrInvalidRequest,
	"invalid_target":      ErrInvalidTarget,
	"invalid_dpop_proof":  ErrDPoP,
	"use_dpop_nonce":      ErrDPoP,
}

// Error is an error response from a token endpoint, in the server's own
// words. It never holds the assertion, the proof or a token.
type Error struct {
	// Code is the OAuth "error" value; empty when the body had none.
	Code string
	// Description is "error_description", cleaned to one line.
	Description string
	// Status is the HTTP status.
	Status int
	// Endpoint is the URL that answered.
	Endpoint string
	// Hint says what to check next, in jwkctl's words.
	Hint string

	sentinels []error
}

// Error is one line: endpoint, status, the server's code and description,
// and the hint.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("token: ")
	if e.Endpoint != "" {
		b.WriteString(e.Endpoint)
		b.WriteString(" ")
	}
	fmt.Fprintf(&b, "answered %d", e.Status)
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the sentinels this error matches. An Error made
// elsewhere (a test, a wrapper) matches its Code's sentinel, as one from
// a token endpoint does.
func (e *Error) Unwrap() []error {
	if e.sentinels == nil {
		if s, ok := codeSentinels[e.Code]; ok {
			return []error{s}
		}
	}
	return e.sentinels
}

// jwtLike matches anything that looks like a compact JWS, so a server that
// echoes an assertion or token back never gets it into our output.
var jwtLike = lazyre.New(`[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)

// maxDescription caps how much of the server's text goes into an error.
const maxDescription = 300

// oneLine cleans text from a server for an error message: no control
// characters, no line breaks, nothing that looks like a JWT, bounded length.
func oneLine(s string) string {
	s = jwtLike().ReplaceAllString(s, "[redacted]")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxDescription {
		cut := maxDescription
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// CheckURL accepts https URLs, and plain http only to a loopback host
// (localhost, 127.0.0.0/8, ::1). Anything else wraps ErrInsecureURL.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q is not a URL", ErrInsecureURL, raw)
	}
	return checkURL(u)
}

func checkURL(u *url.URL) error {
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: %q has no host (give an absolute https:// URL)", ErrInsecureURL, u.Redacted())
	}
	if u.User != nil {
		return fmt.Errorf("%w: %q carries credentials in the URL; remove them", ErrInsecureURL, u.Redacted())
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if loopback.Host(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%w: %s uses plain http; use https (plain http is only allowed to loopback hosts)", ErrInsecureURL, u.Redacted())
	}
	return fmt.Errorf("%w: %s: scheme %q is not https", ErrInsecureURL, u.Redacted(), u.Scheme)
}
