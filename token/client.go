package token

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/lazyre"
	"github.com/jwkctl/jwkctl/signer"
)

// AssertionType is the client_assertion_type of private_key_jwt (RFC 7523).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Config describes one client at one token endpoint.
type Config struct {
	// Issuer is the authorization server. The token endpoint is found by
	// discovery at Issuer/.well-known/openid-configuration unless
	// TokenEndpoint is set. For HelseID it is also the assertion audience.
	Issuer string
	// TokenEndpoint skips discovery.
	TokenEndpoint string
	// Audience overrides the assertion's aud (default: Issuer, else
	// TokenEndpoint).
	Audience string
	// ClientID is iss and sub of every assertion, and the client_id parameter.
	ClientID string
	// Signer signs the client assertions.
	Signer *signer.Signer
	// AssertionTyp is the assertion's typ header (default
	// assertion.TypHelseID, "client-authentication+jwt").
	AssertionTyp string
	// AssertionLifetime is exp - iat (default assertion.DefaultLifetime).
	AssertionLifetime time.Duration

	// DPoP asks for DPoP-bound tokens (RFC 9449), with proofs signed by
	// DPoPSigner, or by Signer when that is nil. It has no default here;
	// DPoPByDefault says what the CLI and profiles use (on for HelseID).
	DPoP       bool
	DPoPSigner *signer.Signer

	// Scopes and Resources (RFC 8707 resource indicators) are sent with
	// every request unless a Request overrides them.
	Scopes    []string
	Resources []string
	// ParentOrg and ChildOrg become HelseID's assertion_details claim; see
	// assertion.OrgDetails.
	ParentOrg, ChildOrg string
	// SFMJournalID adds the nhn:sfm:journal-id detail (assertion.SFMJournal).
	SFMJournalID string
	// Details are further assertion_details entries (assertion.ParseDetails
	// reads them from JSON), after the organisation and SFM ones.
	Details []any

	// HTTPClient makes the requests (default: 30 s timeout, system roots).
	// Redirects are never followed at the token endpoint.
	HTTPClient *http.Client
	// Now and Rand make tests exact (default time.Now, crypto/rand).
	Now  func() time.Time
	Rand io.Reader
	// Logger gets one debug line per request and never a secret (default:
	// discard).
	Logger *slog.Logger

	// Retry decides how 5xx, 429 and network failures are retried.
	Retry RetryPolicy
}

// Request overrides the Config for one exchange. The zero Request uses the
// Config as it is.
type Request struct {
	Scopes    []string // nil: Config.Scopes
	Resources []string // nil: Config.Resources
}

// Response is a successful token response.
type Response struct {
	AccessToken string
	TokenType   string // "DPoP" or "Bearer", as the server spelled it
	Scope       string
	ExpiresIn   int64
	// Expiry is when the token runs out, counted from before the request
	// was sent; zero when the server gave no expires_in.
	Expiry time.Time
	// Raw is the whole JSON body, for callers that need more fields.
	Raw json.RawMessage
}

// String never shows the token.
func (r *Response) String() string {
	return fmt.Sprintf("token.Response{TokenType:%s Scope:%q ExpiresIn:%d AccessToken:[redacted]}", r.TokenType, r.Scope, r.ExpiresIn)
}

// LogValue keeps the token out of slog output.
func (r *Response) LogValue() slog.Value {
	return slog.GroupValue(slog.String("token_type", r.TokenType), slog.String("scope", r.Scope), slog.Int64("expires_in", r.ExpiresIn))
}

// IsDPoP reports whether the token is DPoP-bound.
func (r *Response) IsDPoP() bool { return strings.EqualFold(r.TokenType, "DPoP") }

// Client gets tokens from one token endpoint with private_key_jwt, signing
// a fresh client assertion (and DPoP proof) for every HTTP request,
// retries included. It does not cache tokens; Source does. It is safe for
// concurrent use.
type Client struct {
	cfg    Config
	hc     *http.Client
	assert *assertion.Client
	dpop   *assertion.DPoP
	disco  discoveryCache
	nonces *nonceStore
	log    *slog.Logger
	// detailsJSON is every assertion detail, for CacheKey.
	detailsJSON string
}

// NewClient checks cfg and prepares the signers. It makes no request.
func NewClient(cfg Config) (*Client, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("token: no client id (give --client-id, the id Selvbetjening shows for the client)")
	}
	if cfg.Signer == nil {
		return nil, errors.New("token: no signer for the client assertion")
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	if cfg.Issuer == "" && cfg.TokenEndpoint == "" {
		return nil, errors.New("token: give an issuer (--issuer) or a token endpoint (--token-endpoint)")
	}
	for _, u := range []string{cfg.Issuer, cfg.TokenEndpoint} {
		if u != "" {
			if err := CheckURL(u); err != nil {
				return nil, err
			}
		}
	}
	if err := checkResources(cfg.Resources); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	aud := cfg.Audience
	if aud == "" {
		aud = cfg.Issuer
	}
	if aud == "" {
		aud = cfg.TokenEndpoint
	}
	details, err := assertion.OrgDetails(cfg.ParentOrg, cfg.ChildOrg)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	details = append(details, assertion.SFMJournal(cfg.SFMJournalID)...)
	details = append(details, cfg.Details...)
	// Encoded once here: CacheKey hashes them, and a detail that cannot be
	// encoded is a configuration error, not a failure at the first request.
	detailsJSON, err := json.Marshal(details)
	if err != nil {
		return nil, fmt.Errorf("token: assertion details: %w", err)
	}
	ac, err := assertion.NewClient(cfg.Signer, assertion.Config{
		ClientID: cfg.ClientID,
		Audience: aud,
		Lifetime: cfg.AssertionLifetime,
		Typ:      cfg.AssertionTyp,
		Details:  details,
		Now:      cfg.Now,
		Rand:     cfg.Rand,
	})
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	c := &Client{cfg: cfg, assert: ac, nonces: newNonceStore(), log: cfg.Logger, detailsJSON: string(detailsJSON)}
	if cfg.DPoP {
		ds := cfg.DPoPSigner
		if ds == nil {
			ds = cfg.Signer
		}
		c.dpop, err = assertion.NewDPoP(ds, assertion.DPoPConfig{Now: cfg.Now, Rand: cfg.Rand})
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
	} else if cfg.DPoPSigner != nil {
		return nil, errors.New("token: a DPoP key was given but DPoP is off (add --dpop)")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	c.hc = noRedirects(hc)
	return c, nil
}

// DPoP is the prover for this client's proofs; nil when DPoP is off.
func (c *Client) DPoP() *assertion.DPoP { return c.dpop }

// KeyID is the kid of the assertion key: it must match the JWK uploaded
// for this client.
func (c *Client) KeyID() string { return c.cfg.Signer.KeyID() }

// Thumbprint is the RFC 7638 thumbprint of the assertion key, whatever
// kid it signs with: the key's identity for rotation and the agent.
func (c *Client) Thumbprint() string { return c.cfg.Signer.Thumbprint() }

// ClientID is the configured client id.
func (c *Client) ClientID() string { return c.cfg.ClientID }

// Issuer is the configured issuer, without a trailing slash.
func (c *Client) Issuer() string { return c.cfg.Issuer }

// TokenEndpoint is the explicit endpoint, or the discovered one. A
// discovered server that does not list the keys' algorithms gives an
// error wrapping ErrUnsupportedAlg.
func (c *Client) TokenEndpoint(ctx context.Context) (string, error) {
	if c.cfg.TokenEndpoint != "" {
		return c.cfg.TokenEndpoint, nil
	}
	md, err := c.disco.get(ctx, c.hc, c.cfg.Issuer)
	if err != nil {
		return "", err
	}
	if err := c.checkAlgs(md); err != nil {
		return "", err
	}
	return md.TokenEndpoint, nil
}

// CacheKey names what a token from this client and req is good for: the
// endpoint, client, keys, scopes, resources and assertion details. Two
// configurations with the same key get interchangeable tokens.
func (c *Client) CacheKey(req Request) string {
	scopes, resources := c.effective(req)
	h := sha256.New()
	dpopKid := ""
	if c.dpop != nil {
		dpopKid = c.dpop.Thumbprint()
	}
	for _, s := range []string{c.cfg.Issuer, c.cfg.TokenEndpoint, c.cfg.Audience, c.cfg.ClientID,
		c.cfg.Signer.KeyID(), dpopKid, strings.Join(scopes, " "), strings.Join(resources, " "),
		c.detailsJSON} {
		fmt.Fprintf(h, "%d:%s|", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkResources applies RFC 8707 §2: a resource indicator is an absolute
// URI (HelseID's are URNs such as nhn:cp-api) without a fragment.
func checkResources(resources []string) error {
	for _, r := range resources {
		u, err := url.Parse(r)
		if err != nil || u.Scheme == "" || strings.Contains(r, "#") {
			return fmt.Errorf("token: resource %q is not an absolute URI without a fragment (RFC 8707), such as nhn:cp-api or https://api.example.no/", r)
		}
	}
	return nil
}

func (c *Client) effective(req Request) (scopes, resources []string) {
	scopes, resources = c.cfg.Scopes, c.cfg.Resources
	if req.Scopes != nil {
		scopes = req.Scopes
	}
	if req.Resources != nil {
		resources = req.Resources
	}
	return scopes, resources
}

// Exchange runs one client-credentials grant. Every HTTP request it makes
// carries a new client assertion and, with DPoP, a new proof: the first
// try, the retry HelseID asks for with use_dpop_nonce, and each retry after
// a 5xx, a 429 or a network failure. Other 4xx answers are not retried;
// they come back as *Error wrapping a sentinel.
func (c *Client) Exchange(ctx context.Context, req Request) (*Response, error) {
	endpoint, err := c.TokenEndpoint(ctx)
	if err != nil {
		return nil, err
	}
	scopes, resources := c.effective(req)
	if err := checkResources(resources); err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {c.cfg.ClientID},
		"client_assertion_type": {AssertionType},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	for _, r := range resources {
		form.Add("resource", r)
	}
	origin := originOf(endpoint)
	retries, nonceRetried := 0, false
	maxRetries := c.cfg.Retry.max()
	for {
		start := c.cfg.Now()
		out, err := c.post(ctx, endpoint, origin, form)
		if err != nil {
			if retries >= maxRetries || !retryableNetErr(ctx, err) {
				return nil, err
			}
			retries++
			if err := c.wait(ctx, retries, 0); err != nil {
				return nil, err
			}
			continue
		}
		switch {
		case out.status == http.StatusOK:
			return c.parseSuccess(endpoint, start, out)
		case out.status == http.StatusTooManyRequests || out.status >= 500:
			if retries >= maxRetries {
				return nil, c.parseError(endpoint, start, out, retries)
			}
			retries++
			if err := c.wait(ctx, retries, c.retryAfter(out.header)); err != nil {
				return nil, err
			}
			continue
		}
		e := c.parseError(endpoint, start, out, retries)
		if c.dpop != nil && e.Code == "use_dpop_nonce" && out.header.Get("DPoP-Nonce") != "" && !nonceRetried {
			// HelseID's first answer: retry at once with its nonce, a new
			// proof and a new assertion.
			nonceRetried = true
			c.log.Debug("token endpoint asked for a DPoP nonce; retrying with it", "endpoint", endpoint)
			continue
		}
		return nil, e
	}
}

// httpResult is one answer from the token endpoint.
type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func (c *Client) post(ctx context.Context, endpoint, origin string, form url.Values) (*httpResult, error) {
	jwt, err := c.assert.Sign()
	if err != nil {
		return nil, localError{fmt.Errorf("token: sign the client assertion: %w", err)}
	}
	form.Set("client_assertion", jwt)
	body := form.Encode()
	form.Del("client_assertion")
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return nil, localError{fmt.Errorf("token: %w", err)}
	}
	// net/http may resend a request with a GetBody by itself (HTTP/2
	// stream resets): that would replay this assertion and proof. Without
	// it, such a failure comes back here and the retry loop signs anew.
	hreq.GetBody = nil
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.Header.Set("Accept", "application/json")
	if c.dpop != nil {
		proof, err := c.dpop.Proof(assertion.ProofRequest{Method: http.MethodPost, URL: endpoint, Nonce: c.nonces.get(origin)})
		if err != nil {
			return nil, localError{fmt.Errorf("token: sign the DPoP proof: %w", err)}
		}
		hreq.Header.Set("DPoP", proof)
	}
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("token: POST %s: %w", endpoint, unwrapURLError(err))
	}
	defer resp.Body.Close()
	c.nonces.remember(origin, resp.Header)
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("token: POST %s: reading the answer: %w", endpoint, err)
	}
	c.log.Debug("token request", "endpoint", endpoint, "status", resp.StatusCode, "kid", c.cfg.Signer.KeyID(), "dpop", c.dpop != nil)
	return &httpResult{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// unwrapURLError drops *url.Error's "Post "URL":" prefix, which we print
// ourselves.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// localError is a failure before anything was sent (the key would not
// sign, the request could not be built): another try would fail the same
// way, and for an HSM or KMS cost another signature.
type localError struct{ error }

func (e localError) Unwrap() error { return e.error }

// retryableNetErr: a network failure is worth another try (with a new
// assertion) unless the caller gave up or the certificate is wrong.
func retryableNetErr(ctx context.Context, err error) bool {
	if errors.As(err, new(localError)) {
		return false
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return !errors.As(err, &cve) && !errors.As(err, &ua) && !errors.As(err, &hn) && !errors.As(err, &ci)
}

type wireToken struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	Scope       string          `json:"scope"`
}

func (c *Client) parseSuccess(endpoint string, start time.Time, out *httpResult) (*Response, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadResponse, endpoint, fmt.Sprintf(format, args...))
	}
	if ct := out.header.Get("Content-Type"); !isJSON(ct) {
		return nil, bad("content type %q, not application/json (is --issuer or --token-endpoint right?)", oneLine(ct))
	}
	var w wireToken
	if err := json.Unmarshal(out.body, &w); err != nil {
		return nil, bad("the body is not valid JSON")
	}
	if w.AccessToken == "" {
		return nil, bad("no access_token in the answer")
	}
	if w.TokenType == "" {
		return nil, bad("no token_type in the answer")
	}
	exp, err := parseExpiresIn(w.ExpiresIn)
	if err != nil {
		return nil, bad("%v", err)
	}
	r := &Response{AccessToken: w.AccessToken, TokenType: w.TokenType, Scope: w.Scope, ExpiresIn: exp, Raw: json.RawMessage(slices.Clone(out.body))}
	if exp > 0 {
		r.Expiry = start.Add(time.Duration(exp) * time.Second)
	}
	if c.dpop != nil && !r.IsDPoP() {
		return nil, bad("token_type is %q although DPoP was asked for (is the client registered for DPoP?)", oneLine(w.TokenType))
	}
	if c.dpop == nil && r.IsDPoP() {
		return nil, bad("the server sent a DPoP-bound token although no proof was sent")
	}
	return r, nil
}

// maxExpiresIn bounds a sensible token lifetime; more is a server bug
// (or an attack on the cache) rather than a token to keep for years.
const maxExpiresIn = 10 * 365 * 24 * 3600

// jsonNumber is RFC 8259's number: ParseFloat also takes NaN, Inf, hex
// and underscores, none of which a server means as seconds.
var jsonNumber = lazyre.New(`^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$`)

// parseExpiresIn reads expires_in, a JSON number or (some servers) a
// string holding one. Absent or null gives 0: no lifetime was given.
// Anything else must be at least one second and at most maxExpiresIn;
// fractions are cut to whole seconds.
func parseExpiresIn(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	s := string(raw)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if !jsonNumber().MatchString(s) || err != nil || !(f >= 1 && f <= maxExpiresIn) {
		return 0, fmt.Errorf("expires_in %s is not a sensible number of seconds (1 to %d)", oneLine(string(raw)), maxExpiresIn)
	}
	return int64(f), nil
}

type wireError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// skewTolerance is how far the server's Date may be from our clock before
// an error also says "clock skew".
const skewTolerance = 30 * time.Second

// skewWords are whole words (or phrases) in a server's error description
// that point at time claims; "iat" inside "associated" does not count.
var skewWords = lazyre.New(`(?i)\b(expired|not yet valid|nbf|iat|exp|lifetime|clock|future|in the past|skew|too old)\b`)

func (c *Client) parseError(endpoint string, start time.Time, out *httpResult, retries int) *Error {
	e := &Error{Status: out.status, Endpoint: endpoint}
	var w wireError
	if isJSON(out.header.Get("Content-Type")) && json.Unmarshal(out.body, &w) == nil {
		e.Code = oneLine(w.Error)
		e.Description = oneLine(w.Description)
	} else if len(out.body) > 0 {
		e.Description = fmt.Sprintf("a %s body, not an OAuth error", oneLine(out.header.Get("Content-Type")))
	}
	sentinel, ok := codeSentinels[e.Code]
	switch {
	case out.status == http.StatusTooManyRequests || out.status >= 500:
		sentinel = ErrServer
		if retries > 0 {
			e.Hint = fmt.Sprintf("gave up after %d retries; try again later", retries)
		} else {
			e.Hint = "try again later"
		}
	case !ok:
		sentinel = ErrRejected
	}
	e.sentinels = []error{sentinel}

	skew := time.Duration(0)
	if d, err := http.ParseTime(out.header.Get("Date")); err == nil {
		skew = start.Sub(d)
	}
	skewed := skew > skewTolerance || skew < -skewTolerance
	// The Date header alone marks skew only where time can be the cause.
	timeCanMatter := sentinel == ErrInvalidClient || sentinel == ErrInvalidGrant || sentinel == ErrDPoP
	if !timeCanMatter {
		skewed = false
	}
	if timeCanMatter && skewWords().MatchString(e.Description) {
		skewed = true
	}
	switch {
	case skewed && sentinel != ErrServer:
		e.sentinels = append(e.sentinels, ErrClockSkew)
		if skew > time.Second || skew < -time.Second {
			dir := "ahead of"
			if skew < 0 {
				dir, skew = "behind", -skew
			}
			e.Hint = fmt.Sprintf("this machine's clock is %s %s the server's; sync it with NTP", skew.Round(time.Second), dir)
		} else {
			e.Hint = "the assertion's time claims were refused; check that this machine's clock is synced (NTP)"
		}
	case sentinel == ErrInvalidClient:
		e.Hint = fmt.Sprintf("is the JWK uploaded for client %q the one this key exports? compare kid %s with Selvbetjening (jwkctl keys public shows it), and check aud %s",
			c.cfg.ClientID, c.cfg.Signer.KeyID(), c.audience())
	case sentinel == ErrInvalidScope:
		e.Hint = "ask for only the scopes the client has been granted in Selvbetjening"
	case sentinel == ErrUnauthorizedClient:
		e.Hint = "the client may not use client_credentials, or not for these scopes or organisation numbers"
	case sentinel == ErrDPoP && e.Code == "use_dpop_nonce":
		e.Hint = "the server kept asking for a new DPoP nonce"
	}
	return e
}

func (c *Client) audience() string {
	switch {
	case c.cfg.Audience != "":
		return c.cfg.Audience
	case c.cfg.Issuer != "":
		return c.cfg.Issuer
	}
	return c.cfg.TokenEndpoint
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second}
}

// noRedirects returns a copy of hc that never follows a redirect: a 307 at
// the token endpoint would re-send the same assertion.
func noRedirects(hc *http.Client) *http.Client {
	cp := *hc
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}
