package token

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/jwkctl/jwkctl/assertion"
)

// Transport authorizes requests to a resource server with tokens from a
// Source: "Authorization: Bearer …", or for a DPoP-bound token
// "Authorization: DPoP …" with a fresh proof (htm, htu, ath and the
// server's last nonce) on every request. When the resource server answers
// use_dpop_nonce it remembers the nonce and retries once; when it answers
// invalid_token it drops the cached token and retries once with a new one.
// A retry needs a replayable body (http.NewRequest sets GetBody for
// bytes, strings and bytes.Buffer bodies).
type Transport struct {
	Source *Source
	// Base sends the requests (default http.DefaultTransport).
	Base http.RoundTripper
	// AllowInsecure lets the token go to non-loopback http URLs. Never set
	// it outside tests.
	AllowInsecure bool
}

// NewHTTPClient returns a client whose requests carry tokens from src,
// based on base (its timeout and transport; nil means a 30 s timeout).
// Redirects are followed only within the same origin, so a token or proof
// never goes to another server.
func NewHTTPClient(src *Source, base *http.Client) *http.Client {
	hc := defaultHTTPClient()
	if base != nil {
		cp := *base
		hc = &cp
	}
	hc.Transport = &Transport{Source: src, Base: hc.Transport}
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("token: stopped after 10 redirects")
		}
		if originOf(req.URL.String()) != originOf(via[0].URL.String()) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return hc
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.AllowInsecure {
		if err := checkURL(req.URL); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	resp, err := t.send(req)
	if err != nil {
		return nil, err
	}
	retryNonce, retryToken := false, false
	switch {
	case t.Source.c.dpop != nil && isChallenge(resp, "use_dpop_nonce") && resp.Header.Get("DPoP-Nonce") != "":
		retryNonce = true // send already remembered the nonce
	case resp.StatusCode == http.StatusUnauthorized && isChallenge(resp, "invalid_token"):
		retryToken = true
	}
	if !retryNonce && !retryToken {
		return resp, nil
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil // cannot replay the body; let the caller see the answer
	}
	if retryToken {
		t.Source.resetIfCurrent(sentToken(resp))
	}
	r2 := req.Clone(req.Context())
	if req.GetBody != nil {
		b, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		r2.Body = b
	}
	resp.Body.Close()
	return t.send(r2)
}

// send adds the token and proof to a copy of req and sends it.
func (t *Transport) send(req *http.Request) (*http.Response, error) {
	tok, err := t.Source.TokenContext(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	r := req.Clone(req.Context())
	origin := originOf(req.URL.String())
	nonces := t.Source.c.nonces
	if dp := t.Source.c.dpop; dp != nil && strings.EqualFold(tok.TokenType, "DPoP") {
		proof, err := dp.Proof(assertion.ProofRequest{Method: req.Method, URL: req.URL.String(), Nonce: nonces.get(origin), AccessToken: tok.AccessToken})
		if err != nil {
			closeBody(req)
			return nil, fmt.Errorf("token: sign the DPoP proof: %w", err)
		}
		r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		r.Header.Set("DPoP", proof)
	} else {
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	nonces.remember(origin, resp.Header)
	return resp, nil
}

// isChallenge reports whether a 401 or 400 response carries the OAuth
// error code in a WWW-Authenticate challenge (RFC 6750 §3, RFC 9449 §7.1),
// as a quoted string or a token (RFC 9110 §11.2 allows both).
func isChallenge(resp *http.Response, code string) bool {
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if slices.Contains(challengeErrors(v), code) {
			return true
		}
	}
	return false
}

// challengeErrors returns the values of every error auth-param in a
// WWW-Authenticate header value, which may hold several challenges
// (RFC 9110 §11.6.1): name=token or name="quoted string", with quoted
// strings skipped whole so their contents are never read as parameters.
func challengeErrors(v string) []string {
	var out []string
	isSep := func(c byte) bool { return c == ' ' || c == '\t' || c == ',' }
	i := 0
	skipSpace := func() {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
	}
	// value reads a token or a quoted string at i.
	value := func() string {
		var b strings.Builder
		if i < len(v) && v[i] == '"' {
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
			}
			i++ // closing quote
			return b.String()
		}
		for ; i < len(v) && !isSep(v[i]) && v[i] != '='; i++ {
			b.WriteByte(v[i])
		}
		return b.String()
	}
	for i < len(v) {
		if isSep(v[i]) || v[i] == '=' { // '=' alone: the padding of a token68
			i++
			continue
		}
		name := value()
		skipSpace()
		if i < len(v) && v[i] == '=' {
			i++
			skipSpace()
			val := value()
			if strings.EqualFold(name, "error") {
				out = append(out, val)
			}
		}
	}
	return out
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// sentToken is the access token the request behind resp carried ("" when
// unknown).
func sentToken(resp *http.Response) string {
	if resp.Request == nil {
		return ""
	}
	_, tok, _ := strings.Cut(resp.Request.Header.Get("Authorization"), " ")
	return tok
}
