package token

import (
	"context"
	"encoding/base64"
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

	"github.com/jwkctl/jwkctl/internal/inputfile"
	"github.com/jwkctl/jwkctl/internal/loopback"
)

// AgentSource is an oauth2.TokenSource backed by a local `jwkctl serve`
// agent: the program holds no key and no client settings, only the
// agent's address and a profile name. Tokens are cached here until
// shortly before expiry, so steady-state calls do not even reach the agent.
type AgentSource struct {
	// Addr is "unix:/path/to.sock" or "127.0.0.1:PORT". A TCP address must
	// be loopback (127.0.0.0/8, [::1] or localhost): the agent only
	// listens there, and its bearer secret goes over plain http.
	Addr string
	// Profile names the agent profile.
	Profile string
	// Scopes, if set, ask the agent for a token with these scopes.
	Scopes []string
	// Secret is the bearer secret of a TCP agent (the content of its
	// secret file); empty for a Unix socket.
	Secret string
	// SecretFile, if set instead, is the agent's secret file, read at
	// every request to the agent: the agent writes a new secret at every
	// start, and a long-running program picks it up without a restart.
	SecretFile string

	once    sync.Once
	initErr error
	hc      *http.Client
	base    string
	semOnce sync.Once
	sem     chan struct{} // one fetch at a time; waiters honour their ctx
	tok     *oauth2.Token
	margin  time.Duration // of tok
}

var _ oauth2.TokenSource = (*AgentSource)(nil)

// ErrAgent is returned when the agent refuses or cannot be reached.
var ErrAgent = errors.New("token: agent")

// ErrAgentUnauthorized is returned, along with ErrAgent, when a TCP agent
// refuses a request for want of its bearer secret (AgentSource.Secret is
// empty, or not the secret of the agent's current run).
var ErrAgentUnauthorized = errors.New("the agent wants its bearer secret")

// agentMargin is how long before expiry AgentSource stops reusing a token
// (half the token's life, for tokens shorter than twice this).
const agentMargin = 15 * time.Second

// init checks Addr and builds the HTTP client, once.
func (s *AgentSource) init() error {
	s.once.Do(func() { s.initErr = s.setup() })
	return s.initErr
}

func (s *AgentSource) setup() error {
	noRedirect := func(*http.Request, []*http.Request) error {
		return errors.New("redirected, which a jwkctl agent never does")
	}
	if path, ok := strings.CutPrefix(s.Addr, "unix:"); ok {
		if path == "" {
			return fmt.Errorf("%w: address %q names no socket; want unix:/path/to.sock", ErrAgent, s.Addr)
		}
		s.base = "http://jwkctl-agent"
		s.hc = &http.Client{Timeout: 70 * time.Second, CheckRedirect: noRedirect, Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", path)
			},
		}}
		return nil
	}
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil || host == "" || port == "" || strings.ContainsAny(s.Addr, "/?#@") {
		return fmt.Errorf("%w: address %q: want unix:/path/to.sock or 127.0.0.1:PORT", ErrAgent, s.Addr)
	}
	if !loopback.Host(host) {
		return fmt.Errorf("%w: address %s is not loopback: a TCP agent listens only on 127.0.0.1 or [::1], and its bearer secret must not cross a network; use unix:/path/to.sock or a loopback address", ErrAgent, s.Addr)
	}
	addr := net.JoinHostPort(host, port)
	s.base = "http://" + addr
	s.hc = &http.Client{Timeout: 70 * time.Second, CheckRedirect: noRedirect, Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			// "localhost" is resolved: make sure it led to loopback.
			if ta, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
				c.Close()
				return nil, fmt.Errorf("%s resolved to %v, which is not loopback", host, c.RemoteAddr())
			}
			return c, nil
		},
	}}
	return nil
}

// Token implements oauth2.TokenSource.
func (s *AgentSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext returns the cached token or asks the agent for one.
func (s *AgentSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.semOnce.Do(func() { s.sem = make(chan struct{}, 1) })
	if !acquire(ctx, s.sem) {
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	if s.tok != nil && s.tok.Expiry.After(time.Now().Add(s.margin)) {
		return s.tok, nil
	}
	r, err := s.Fetch(ctx)
	if err != nil {
		return nil, err
	}
	life := time.Duration(r.ExpiresIn) * time.Second
	s.tok = &oauth2.Token{AccessToken: r.AccessToken, TokenType: r.TokenType, Expiry: time.Now().Add(life)}
	s.margin = min(agentMargin, life/2)
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
	if err := s.init(); err != nil {
		return nil, err
	}
	q := url.Values{"profile": {s.Profile}}
	if len(s.Scopes) > 0 {
		q.Set("scope", strings.Join(s.Scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/v1/token?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	var t AgentToken
	if err := s.do(req, &t, "is `jwkctl serve` running?"); err != nil {
		return nil, err
	}
	if t.AccessToken == "" {
		return nil, fmt.Errorf("%w at %s: the answer is not a token", ErrAgent, s.Addr)
	}
	return &t, nil
}

// AgentHealth is an agent's /healthz answer. Profiles and SigningKeys are
// empty unless the agent took the caller as authorized (on its Unix
// socket, or with its bearer secret), and SigningKeys also from agents
// older than that field.
type AgentHealth struct {
	Status   string   `json:"status"`
	Profiles []string `json:"profiles"`
	// SigningKeys maps each served profile to the kid of the key it signs
	// with.
	SigningKeys map[string]string `json:"signing_keys"`
}

// Health asks the agent how it is and, when authorized, which profiles it
// serves and which kid each signs with.
func (s *AgentSource) Health(ctx context.Context) (*AgentHealth, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/healthz", nil)
	if err != nil {
		return nil, err
	}
	var h AgentHealth
	if err := s.do(req, &h, "is `jwkctl serve` running?"); err != nil {
		return nil, err
	}
	if h.Status == "" {
		return nil, fmt.Errorf("%w at %s: the answer is not an agent's health", ErrAgent, s.Addr)
	}
	return &h, nil
}

// Proof asks the agent for a DPoP proof for one request to a resource
// server, bound to accessToken (ath) when it is set. nonce is the server's
// last DPoP-Nonce, if any.
func (s *AgentSource) Proof(ctx context.Context, method, rawURL, accessToken, nonce string) (string, error) {
	if err := s.init(); err != nil {
		return "", err
	}
	b, _ := json.Marshal(map[string]string{"profile": s.Profile, "htm": method, "htu": rawURL, "access_token": accessToken, "nonce": nonce})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/v1/dpop", strings.NewReader(string(b)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	var out struct{ Proof string }
	if err := s.do(req, &out, ""); err != nil {
		return "", err
	}
	if out.Proof == "" {
		return "", fmt.Errorf("%w at %s: no DPoP proof in the answer", ErrAgent, s.Addr)
	}
	return out.Proof, nil
}

// do sends req to the agent (with the secret, if any) and decodes its JSON
// answer into out. An answer that is not the agent's JSON is reported as
// such, without its body.
func (s *AgentSource) do(req *http.Request, out any, hint string) error {
	secret := s.Secret
	if s.SecretFile != "" {
		var err error
		if secret, err = ReadAgentSecret(s.SecretFile); err != nil {
			return fmt.Errorf("%w: %w", ErrAgent, err)
		}
	}
	if secret != "" {
		if !IsAgentSecret([]byte(secret)) {
			return fmt.Errorf("%w: Secret is not a jwkctl agent secret (the content of the file the agent writes at start); not sending it", ErrAgent)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSuffix(secret, "\n")) // the file ends in a newline
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		if hint != "" {
			return fmt.Errorf("%w at %s: %v (%s)", ErrAgent, s.Addr, unwrapURLError(err), hint)
		}
		return fmt.Errorf("%w at %s: %v", ErrAgent, s.Addr, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%w at %s: %v", ErrAgent, s.Addr, err)
	}
	var e struct{ Error, Reason string }
	isAgent := isJSON(resp.Header.Get("Content-Type")) && json.Unmarshal(body, &e) == nil
	switch {
	case !isAgent || (resp.StatusCode != http.StatusOK && e.Error == ""):
		return fmt.Errorf("%w at %s: the answer (%s, %s) is not from a jwkctl agent; check the address", ErrAgent, s.Addr, oneLine(resp.Status), oneLine(resp.Header.Get("Content-Type")))
	case resp.StatusCode == http.StatusUnauthorized && e.Error == "unauthorized":
		if s.Secret == "" {
			return fmt.Errorf("%w at %s: %w: set Secret to the content of its secret file", ErrAgent, s.Addr, ErrAgentUnauthorized)
		}
		return fmt.Errorf("%w at %s: %w: it refused the secret given (the agent writes a new one at every start)", ErrAgent, s.Addr, ErrAgentUnauthorized)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: %s: %s (%s)", ErrAgent, oneLine(resp.Status), oneLine(e.Reason), oneLine(e.Error))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%w at %s: the answer is not from a jwkctl agent (%v)", ErrAgent, s.Addr, err)
	}
	return nil
}

// AgentSecretPrefix starts every bearer secret a jwkctl agent makes.
const AgentSecretPrefix = "jwkctl-agent-secret-v1."

// IsAgentSecret reports whether b is the content of a jwkctl agent's
// secret file: AgentSecretPrefix and 43 base64url characters (or, as
// agents before the prefix wrote them, the 43 characters alone), with at
// most one trailing newline. Clients check it before sending a file's
// content as a bearer secret, so a mistyped path never sends a key.
func IsAgentSecret(b []byte) bool {
	s := strings.TrimSuffix(string(b), "\n")
	s = strings.TrimPrefix(s, AgentSecretPrefix)
	if len(s) != base64.RawURLEncoding.EncodedLen(32) {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(raw) == 32
}

// ErrNotAgentSecret: a file given as an agent's secret file holds
// something else (a mistyped path to a key, say); it is never sent.
var ErrNotAgentSecret = errors.New("not a jwkctl agent secret")

type notSecretError string

func (p notSecretError) Error() string {
	return string(p) + " does not hold a jwkctl agent secret (the file the agent writes at start, its --secret-file); not sending it"
}

func (notSecretError) Is(target error) bool { return target == ErrNotAgentSecret }

// ReadAgentSecret reads an agent's secret file (what `jwkctl serve`
// writes at start) and returns the secret without its newline. A file
// that does not hold one is an error wrapping ErrNotAgentSecret.
func ReadAgentSecret(path string) (string, error) {
	b, err := inputfile.Read(path, 256, "an agent secret file")
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	if !IsAgentSecret(b) {
		return "", notSecretError(path)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}
