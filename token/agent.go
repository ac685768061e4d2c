package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// AgentSource is an oauth2.TokenSource backed by a local `jwkctl serve`
// agent: the program holds no key and no client settings, only the
// agent's address and a profile name. Tokens are cached here until
// shortly before expiry, so steady-state calls do not even reach the agent.
type AgentSource struct {
	// Addr is "unix:/path/to.sock" or "127.0.0.1:PORT".
	Addr string
	// Profile names the agent profile.
	Profile string
	// Scopes, if set, ask the agent for a token with these scopes.
	Scopes []string
	// Secret is the bearer secret of a TCP agent (the content of its
	// secret file); empty for a Unix socket.
	Secret string

	once sync.Once
	hc   *http.Client
	base string
	mu   sync.Mutex
	tok  *oauth2.Token
}

var _ oauth2.TokenSource = (*AgentSource)(nil)

// ErrAgent is returned when the agent refuses or cannot be reached.
var ErrAgent = errors.New("token: agent")

func (s *AgentSource) init() {
	s.once.Do(func() {
		if path, ok := strings.CutPrefix(s.Addr, "unix:"); ok {
			s.base = "http://jwkctl-agent"
			s.hc = &http.Client{Timeout: 70 * time.Second, Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "unix", path)
				},
			}}
			return
		}
		s.base = "http://" + s.Addr
		s.hc = &http.Client{Timeout: 70 * time.Second}
	})
}

// Token implements oauth2.TokenSource.
func (s *AgentSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext returns the cached token or asks the agent for one.
func (s *AgentSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.tok.Expiry.After(time.Now().Add(15*time.Second)) {
		return s.tok, nil
	}
	r, err := s.Fetch(ctx)
	if err != nil {
		return nil, err
	}
	s.tok = &oauth2.Token{AccessToken: r.AccessToken, TokenType: r.TokenType, Expiry: time.Now().Add(time.Duration(r.ExpiresIn) * time.Second)}
	return s.tok, nil
}

// AgentToken is the agent's answer.
type AgentToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// Fetch asks the agent for a token, bypassing the local cache.
func (s *AgentSource) Fetch(ctx context.Context) (*AgentToken, error) {
	if s.Profile == "" {
		return nil, fmt.Errorf("%w: no profile named", ErrAgent)
	}
	s.init()
	q := url.Values{"profile": {s.Profile}}
	if len(s.Scopes) > 0 {
		q.Set("scope", strings.Join(s.Scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/v1/token?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if s.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+s.Secret)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v (is `jwkctl serve` running?)", ErrAgent, s.Addr, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAgent, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Reason string }
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("%w: %s: %s (%s)", ErrAgent, resp.Status, oneLine(e.Reason), oneLine(e.Error))
	}
	var t AgentToken
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return nil, fmt.Errorf("%w: the agent's answer is not a token", ErrAgent)
	}
	return &t, nil
}

// Proof asks the agent for a DPoP proof for one request to a resource
// server, bound to accessToken (ath) when it is set. nonce is the server's
// last DPoP-Nonce, if any.
func (s *AgentSource) Proof(ctx context.Context, method, rawURL, accessToken, nonce string) (string, error) {
	s.init()
	b, _ := json.Marshal(map[string]string{"profile": s.Profile, "htm": method, "htu": rawURL, "access_token": accessToken, "nonce": nonce})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/v1/dpop", strings.NewReader(string(b)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+s.Secret)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w at %s: %v", ErrAgent, s.Addr, unwrapURLError(err))
	}
	defer resp.Body.Close()
	var out struct{ Proof, Error, Reason string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Proof == "" {
		return "", fmt.Errorf("%w: no DPoP proof: %s %s", ErrAgent, resp.Status, oneLine(out.Reason))
	}
	return out.Proof, nil
}
