package token

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
)

// WellKnownPath is where an issuer publishes its OpenID configuration.
const WellKnownPath = "/.well-known/openid-configuration"

// maxBody bounds every response body read from a server.
const maxBody = 1 << 20

// Metadata is the part of an issuer's OpenID configuration jwkctl uses.
type Metadata struct {
	Issuer                string   `json:"issuer"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri,omitempty"`
	DPoPSigningAlgs       []string `json:"dpop_signing_alg_values_supported,omitempty"`
	TokenEndpointAuthAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
}

// Discover fetches issuer's OpenID configuration and checks that it names
// the same issuer and an acceptable token endpoint. hc nil means a default
// client.
func Discover(ctx context.Context, hc *http.Client, issuer string) (*Metadata, error) {
	issuer = strings.TrimRight(issuer, "/")
	if err := CheckURL(issuer); err != nil {
		return nil, fmt.Errorf("%w: issuer: %w", ErrDiscovery, err)
	}
	if hc == nil {
		hc = defaultHTTPClient()
	}
	u := issuer + WellKnownPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiscovery, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := noRedirects(hc).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w (check --issuer, or give --token-endpoint)", ErrDiscovery, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading the body: %w", ErrDiscovery, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %d (check --issuer, or give --token-endpoint)", ErrDiscovery, u, resp.StatusCode)
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		return nil, fmt.Errorf("%w: %s answered with %q, not JSON (check --issuer)", ErrDiscovery, u, resp.Header.Get("Content-Type"))
	}
	var md Metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("%w: %s: not a valid OpenID configuration: %w", ErrDiscovery, u, err)
	}
	if strings.TrimRight(md.Issuer, "/") != issuer {
		return nil, fmt.Errorf("%w: %s names issuer %q, not %q (use the issuer exactly as the server spells it)", ErrDiscovery, u, oneLine(md.Issuer), issuer)
	}
	if md.TokenEndpoint == "" {
		return nil, fmt.Errorf("%w: %s has no token_endpoint (give --token-endpoint)", ErrDiscovery, u)
	}
	if err := CheckURL(md.TokenEndpoint); err != nil {
		return nil, fmt.Errorf("%w: token_endpoint: %w", ErrDiscovery, err)
	}
	return &md, nil
}

// isJSON accepts application/json and application/*+json, any parameters.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// discoveryCache remembers one issuer's metadata for a Client. A failed
// discovery is not remembered, so the next call tries again.
type discoveryCache struct {
	once sync.Once
	sem  chan struct{} // one discovery at a time; waiters honour their ctx
	md   *Metadata
}

func (d *discoveryCache) get(ctx context.Context, hc *http.Client, issuer string) (*Metadata, error) {
	d.once.Do(func() { d.sem = make(chan struct{}, 1) })
	if !acquire(ctx, d.sem) {
		return nil, ctx.Err()
	}
	defer func() { <-d.sem }()
	if d.md != nil {
		return d.md, nil
	}
	md, err := Discover(ctx, hc, issuer)
	if err != nil {
		return nil, err
	}
	d.md = md
	return md, nil
}

// acquire takes the one-slot semaphore sem, or gives up when ctx ends
// first; a free slot is taken even if ctx has ended.
func acquire(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}
