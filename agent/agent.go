package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/token"
)

// Exchanger gets a token for a request; *token.Client is one.
type Exchanger interface {
	Exchange(ctx context.Context, req token.Request) (*token.Response, error)
	DPoP() *assertion.DPoP
}

// Profile is one client the agent serves tokens for.
type Profile struct {
	Name   string
	Client Exchanger
	// Scopes are the profile's default scopes (what the client asks for
	// when a caller names none).
	Scopes []string
	// Backend names the key's backend for metrics ("file", "pkcs11", …).
	Backend string
	// Fingerprint identifies the profile's settings; a reload keeps the
	// cached tokens of profiles whose fingerprint did not change.
	Fingerprint string
}

// Config tunes the agent. The zero value works.
type Config struct {
	// RefreshAt is the fraction of a token's lifetime after which it is
	// refreshed in the background (default 0.75, with up to 5 % jitter).
	RefreshAt float64
	// MinBackoff and MaxBackoff bound the retry delay after a failed
	// refresh (default 1 s and 60 s).
	MinBackoff, MaxBackoff time.Duration
	// ExpiryMargin: a token this close to expiry is not handed out
	// (default 10 s), so callers have time to use it.
	ExpiryMargin time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
	Metrics      *Metrics
}

// Agent caches tokens per profile and scope set, refreshes them ahead of
// expiry, and coalesces concurrent requests into one exchange.
type Agent struct {
	cfg      Config
	mu       sync.Mutex
	profiles map[string]*Profile
	entries  map[string]*entry
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// entry is the cached token for one profile and scope set.
type entry struct {
	profile *Profile
	req     token.Request
	scope   string

	mu       sync.Mutex
	resp     *token.Response
	expiry   time.Time
	inflight chan struct{} // closed when the running exchange ends
	lastErr  error
	retryAt  time.Time // no new exchange for callers before this, after a failure
	timer    *time.Timer
	failures int
}

// New makes an agent serving profiles.
func New(cfg Config, profiles []*Profile) *Agent {
	if cfg.RefreshAt <= 0 || cfg.RefreshAt >= 1 {
		cfg.RefreshAt = 0.75
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.ExpiryMargin <= 0 {
		cfg.ExpiryMargin = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	a := &Agent{cfg: cfg, profiles: map[string]*Profile{}, entries: map[string]*entry{}}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	for _, p := range profiles {
		a.profiles[p.Name] = p
	}
	cfg.Metrics.attach(a)
	return a
}

// Metrics returns the agent's metrics.
func (a *Agent) Metrics() *Metrics { return a.cfg.Metrics }

// Close stops background refreshes.
func (a *Agent) Close() {
	a.cancel()
	a.mu.Lock()
	for _, e := range a.entries {
		e.mu.Lock()
		a.stopTimer(e)
		e.mu.Unlock()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// Reload replaces the profiles. Cached tokens of profiles whose settings
// are unchanged are kept; the others are dropped.
func (a *Agent) Reload(profiles []*Profile) {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := map[string]*Profile{}
	for _, p := range profiles {
		next[p.Name] = p
	}
	for key, e := range a.entries {
		np, ok := next[e.profile.Name]
		if ok && np.Fingerprint == e.profile.Fingerprint && np.Fingerprint != "" {
			// Same settings: keep the token, use the new client for
			// refreshes.
			e.mu.Lock()
			e.profile = np
			e.mu.Unlock()
			continue
		}
		e.mu.Lock()
		a.stopTimer(e)
		e.mu.Unlock()
		delete(a.entries, key)
	}
	a.profiles = next
	a.cfg.Logger.Info("profiles reloaded", "profiles", strings.Join(names(next), ","))
}

func names(m map[string]*Profile) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Profiles lists the served profile names.
func (a *Agent) Profiles() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return names(a.profiles)
}

// ErrUnknownProfile is returned for a profile the agent does not serve.
var ErrUnknownProfile = errors.New("agent: unknown profile")

// ErrUnavailable means no valid token is cached and the STS could not be
// reached or refused; it wraps the cause.
var ErrUnavailable = errors.New("agent: no valid token")

// Profile returns a served profile.
func (a *Agent) Profile(name string) (*Profile, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.profiles[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (serving: %s)", ErrUnknownProfile, name, strings.Join(names(a.profiles), ", "))
	}
	return p, nil
}

// Token returns a valid cached token for profile and scopes (nil: the
// profile's own) and when it expires, fetching one if needed. Concurrent
// callers share one exchange.
func (a *Agent) Token(ctx context.Context, profile string, scopes []string) (*token.Response, time.Time, error) {
	p, err := a.Profile(profile)
	if err != nil {
		return nil, time.Time{}, err
	}
	e := a.entry(p, scopes)
	for first := true; ; first = false {
		e.mu.Lock()
		if e.resp != nil && a.cfg.Now().Add(a.cfg.ExpiryMargin).Before(e.expiry) {
			r, exp := e.resp, e.expiry
			e.mu.Unlock()
			if first {
				a.cfg.Metrics.cacheHits.WithLabelValues(p.Name).Inc()
			}
			return r, exp, nil
		}
		if e.inflight == nil && a.cfg.Now().Before(e.retryAt) {
			// The STS failed moments ago; a background retry is
			// scheduled. Do not hammer it on every caller's behalf.
			err := e.lastErr
			e.mu.Unlock()
			return nil, time.Time{}, fmt.Errorf("%w for profile %s: %v", ErrUnavailable, p.Name, err)
		}
		if e.inflight == nil {
			e.inflight = make(chan struct{})
			done := e.inflight
			e.mu.Unlock()
			a.refresh(e, done)
			continue
		}
		wait := e.inflight
		lastErr := e.lastErr
		e.mu.Unlock()
		select {
		case <-wait:
			e.mu.Lock()
			ok := e.resp != nil && a.cfg.Now().Add(a.cfg.ExpiryMargin).Before(e.expiry)
			lastErr = e.lastErr
			e.mu.Unlock()
			if !ok {
				return nil, time.Time{}, fmt.Errorf("%w for profile %s: %v", ErrUnavailable, p.Name, lastErr)
			}
		case <-ctx.Done():
			return nil, time.Time{}, fmt.Errorf("%w (last refresh error: %v)", ctx.Err(), lastErr)
		}
	}
}

func (a *Agent) entry(p *Profile, scopes []string) *entry {
	req := token.Request{}
	scope := strings.Join(p.Scopes, " ")
	if len(scopes) > 0 {
		s := slices.Clone(scopes)
		sort.Strings(s)
		s = slices.Compact(s)
		req.Scopes = s
		scope = strings.Join(s, " ")
	}
	key := p.Name + "\x00" + scope
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.entries[key]
	if !ok {
		e = &entry{profile: p, req: req, scope: scope}
		a.entries[key] = e
	}
	return e
}

// refresh runs one exchange for e and closes done when it ends. On
// success it schedules the next refresh; on failure a retry with backoff,
// while a still-valid token keeps being served.
func (a *Agent) refresh(e *entry, done chan struct{}) {
	e.mu.Lock()
	p := e.profile
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(a.ctx, time.Minute)
	start := time.Now()
	resp, err := p.Client.Exchange(ctx, e.req)
	cancel()
	a.cfg.Metrics.stsLatency.WithLabelValues(p.Name).Observe(time.Since(start).Seconds())
	now := a.cfg.Now()

	e.mu.Lock()
	defer e.mu.Unlock()
	e.inflight = nil
	defer close(done)
	if err != nil {
		e.lastErr = err
		e.failures++
		a.cfg.Metrics.refreshFailures.WithLabelValues(p.Name).Inc()
		a.cfg.Logger.Warn("token refresh failed", "profile", p.Name, "scope", e.scope, "error", err, "failures", e.failures)
		wait := a.backoff(e.failures)
		e.retryAt = now.Add(wait)
		a.schedule(e, wait)
		return
	}
	e.resp, e.lastErr, e.failures, e.retryAt = resp, nil, 0, time.Time{}
	lifetime := time.Duration(resp.ExpiresIn) * time.Second
	if lifetime <= 0 {
		lifetime = 5 * time.Minute // no expires_in: refresh often
	}
	e.expiry = now.Add(lifetime)
	a.cfg.Metrics.tokensIssued.WithLabelValues(p.Name).Inc()
	jitter := 1 - rand.Float64()*0.05
	a.schedule(e, time.Duration(float64(lifetime)*a.cfg.RefreshAt*jitter))
	a.cfg.Logger.Info("token refreshed", "profile", p.Name, "scope", e.scope, "expires_in", resp.ExpiresIn, "token_type", resp.TokenType)
}

func (a *Agent) backoff(failures int) time.Duration {
	d := a.cfg.MinBackoff << min(failures-1, 16)
	if d > a.cfg.MaxBackoff || d <= 0 {
		d = a.cfg.MaxBackoff
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// schedule arranges a background refresh of e after d. Called with e.mu held.
func (a *Agent) schedule(e *entry, d time.Duration) {
	if a.ctx.Err() != nil {
		return
	}
	a.stopTimer(e)
	a.wg.Add(1)
	e.timer = time.AfterFunc(d, func() {
		defer a.wg.Done()
		if a.ctx.Err() != nil {
			return
		}
		e.mu.Lock()
		if e.inflight != nil {
			e.mu.Unlock()
			return
		}
		e.inflight = make(chan struct{})
		done := e.inflight
		e.mu.Unlock()
		a.refresh(e, done)
	})
}

// stopTimer cancels e's pending refresh. Called with e.mu held.
func (a *Agent) stopTimer(e *entry) {
	if e.timer != nil && e.timer.Stop() {
		a.wg.Done() // the refresh will not run
	}
	e.timer = nil
}

// expiries reports each cached token's expiry, for metrics.
func (a *Agent) expiries() map[[2]string]time.Time {
	a.mu.Lock()
	es := make([]*entry, 0, len(a.entries))
	for _, e := range a.entries {
		es = append(es, e)
	}
	a.mu.Unlock()
	out := map[[2]string]time.Time{}
	for _, e := range es {
		e.mu.Lock()
		if e.resp != nil {
			out[[2]string{e.profile.Name, e.scope}] = e.expiry
		}
		e.mu.Unlock()
	}
	return out
}

// Refresh forces a background refresh of every cached entry now (for
// tests and for a reload that must pick up a new key).
func (a *Agent) Refresh() {
	a.mu.Lock()
	es := make([]*entry, 0, len(a.entries))
	for _, e := range a.entries {
		es = append(es, e)
	}
	a.mu.Unlock()
	for _, e := range es {
		e.mu.Lock()
		if e.inflight != nil {
			e.mu.Unlock()
			continue
		}
		e.inflight = make(chan struct{})
		done := e.inflight
		e.mu.Unlock()
		a.refresh(e, done)
	}
}
