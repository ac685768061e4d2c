package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
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
	// KeyID is the kid (RFC 7638 thumbprint) of the key the profile signs
	// its client assertions with, reported to authorized callers of
	// /healthz and in the signing key metric, so a rotation can tell when
	// no agent uses the old key any more.
	KeyID string
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
	// ExpiryMargin: a cached token this close to expiry is not handed out
	// (default 10 s), so callers have time to use it. For tokens that live
	// less than four times as long, the margin is a quarter of their
	// lifetime. The background refresh starts at least two margins before
	// expiry, so the STS has a margin's time to answer before callers
	// would wait.
	ExpiryMargin time.Duration
	// MaxScopeSets caps the cached scope sets (entries) per profile
	// (default 16); a request for one more is refused with
	// ErrTooManyScopeSets until idle ones are evicted.
	MaxScopeSets int
	Now          func() time.Time
	Logger       *slog.Logger
	Metrics      *Metrics
}

// minRefreshInterval is the shortest delay between background refreshes
// of one entry, however short-lived its tokens are.
const minRefreshInterval = time.Second

// stopper is a pending timer (a *time.Timer, or a fake in tests).
type stopper interface{ Stop() bool }

// Agent caches tokens per profile and scope set, refreshes them ahead of
// expiry, and coalesces concurrent requests into one exchange.
//
// An entry (a profile and scope set) is refreshed in the background only
// while it holds a valid token that callers use; an entry that never got a
// token, or whose client was refused by the STS (a 4xx answer such as
// invalid_scope or invalid_client), is retried only when a caller asks
// again after the backoff. Entries nobody asked for within about one token
// lifetime are evicted.
type Agent struct {
	cfg      Config
	mu       sync.Mutex // guards profiles and entries; taken before entry.mu
	profiles map[string]*Profile
	entries  map[string]*entry
	ctx      context.Context
	cancel   context.CancelFunc

	// wg counts running exchanges and timer callbacks; once closed is
	// set, nothing new is started.
	wgMu   sync.Mutex
	closed bool
	wg     sync.WaitGroup

	afterFunc func(time.Duration, func()) stopper
}

// entry is the cached token for one profile and scope set.
type entry struct {
	key   string // profile name + "\x00" + scope, its key in Agent.entries
	name  string // the profile's name
	req   token.Request
	scope string

	mu       sync.Mutex
	profile  *Profile
	resp     *token.Response
	expiry   time.Time
	lifetime time.Duration // of the current token
	used     bool          // the current token was handed to a caller
	lastUsed time.Time     // when a caller last asked (agent clock)
	flight   *flight       // the running exchange, if any
	lastErr  error
	refused  bool      // lastErr is a refusal that retrying will not cure
	retryAt  time.Time // no new exchange for callers before this, after a failure
	timer    stopper
	timerGen uint64 // which timer is e's own; a stale callback sees another
	failures int
	dropped  bool // evicted, or dropped by a reload: never scheduled again
}

// flight is one exchange with the STS; its result goes to every caller
// that waited for it.
type flight struct {
	done    chan struct{} // closed when resp/expiry/err are set
	resp    *token.Response
	expiry  time.Time
	err     error
	waiters int // callers that asked for this exchange's token (under entry.mu)
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
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.ExpiryMargin <= 0 {
		cfg.ExpiryMargin = 10 * time.Second
	}
	if cfg.MaxScopeSets <= 0 {
		cfg.MaxScopeSets = 16
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
	a.afterFunc = func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }
	a.ctx, a.cancel = context.WithCancel(context.Background())
	for _, p := range profiles {
		a.profiles[p.Name] = p
	}
	cfg.Metrics.attach(a)
	return a
}

// Metrics returns the agent's metrics.
func (a *Agent) Metrics() *Metrics { return a.cfg.Metrics }

// Close stops background refreshes, cancels running exchanges (their
// callers get ErrClosed) and waits for them to end. It may be called more
// than once.
func (a *Agent) Close() {
	a.wgMu.Lock()
	a.closed = true
	a.wgMu.Unlock()
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

// track counts one more running task for Close to wait for; false once
// the agent is closed.
func (a *Agent) track() bool {
	a.wgMu.Lock()
	defer a.wgMu.Unlock()
	if a.closed {
		return false
	}
	a.wg.Add(1)
	return true
}

// Reload replaces the profiles. Cached tokens of profiles whose settings
// are unchanged are kept; the others are dropped, together with their
// pending refreshes (an exchange already running still answers the callers
// waiting for it, but its token is not cached).
func (a *Agent) Reload(profiles []*Profile) {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := map[string]*Profile{}
	for _, p := range profiles {
		next[p.Name] = p
	}
	for _, e := range a.entries {
		e.mu.Lock()
		np, ok := next[e.name]
		if ok && np.Fingerprint == e.profile.Fingerprint && np.Fingerprint != "" {
			// Same settings: keep the token, use the new client for
			// refreshes.
			e.profile = np
		} else {
			a.drop(e)
		}
		e.mu.Unlock()
	}
	a.profiles = next
	a.cfg.Metrics.keepKeyExpiry(next)
	a.cfg.Logger.Info("profiles reloaded", "profiles", strings.Join(names(next), ","))
}

// drop removes e from the cache for good. Called with a.mu and e.mu held.
func (a *Agent) drop(e *entry) {
	a.stopTimer(e)
	e.dropped = true
	if a.entries[e.key] == e {
		delete(a.entries, e.key)
	}
}

func names(m map[string]*Profile) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SigningKeys maps each served profile to the kid its key has (profiles
// without a known kid are left out).
func (a *Agent) SigningKeys() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]string, len(a.profiles))
	for name, p := range a.profiles {
		if p.KeyID != "" {
			out[name] = p.KeyID
		}
	}
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

// ErrTooManyScopeSets means a profile already has Config.MaxScopeSets
// different scope sets cached.
var ErrTooManyScopeSets = errors.New("agent: too many different scope sets")

// ErrClosed is returned to callers still waiting when the agent closes.
var ErrClosed = errors.New("agent: shutting down")

// Profile returns a served profile.
func (a *Agent) Profile(name string) (*Profile, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.profileLocked(name)
}

func (a *Agent) profileLocked(name string) (*Profile, error) {
	p, ok := a.profiles[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (serving: %s)", ErrUnknownProfile, name, strings.Join(names(a.profiles), ", "))
	}
	return p, nil
}

// margin is how long before expiry a cached token of this lifetime stops
// being handed out: ExpiryMargin, or a quarter of the lifetime if that is
// less (so a short-lived token is served for most of its life).
func (a *Agent) margin(lifetime time.Duration) time.Duration {
	return min(a.cfg.ExpiryMargin, lifetime/4)
}

// refreshAfter is when, after a token of this lifetime arrived, its
// background refresh starts: at RefreshAt of the lifetime (less up to 5 %
// jitter), but no later than two margins before expiry. The STS then has
// at least one margin to answer while the old token is still handed out,
// so callers do not wait for it whatever the lifetime (a refresh that
// starts only when the token stops being served makes every caller in
// between wait). Never sooner than minRefreshInterval.
func (a *Agent) refreshAfter(lifetime time.Duration) time.Duration {
	next := time.Duration(float64(lifetime) * a.cfg.RefreshAt * (1 - rand.Float64()*0.05))
	return max(min(next, lifetime-2*a.margin(lifetime)), minRefreshInterval)
}

// usable reports whether e's cached token may be handed out at now.
// Called with e.mu held.
func (a *Agent) usable(e *entry, now time.Time) bool {
	return e.resp != nil && now.Add(a.margin(e.lifetime)).Before(e.expiry)
}

// Token returns a valid token for profile and scopes (nil: the profile's
// own) and when it expires: the cached one, or else a fresh one from the
// STS, which is always handed to the callers that waited for it however
// short its life. Concurrent callers share one exchange; ctx bounds the
// wait.
func (a *Agent) Token(ctx context.Context, profile string, scopes []string) (*token.Response, time.Time, error) {
	if a.ctx.Err() != nil {
		return nil, time.Time{}, ErrClosed
	}
	e, err := a.entry(profile, scopes) // e.mu is held
	if err != nil {
		return nil, time.Time{}, err
	}
	now := a.cfg.Now()
	if a.usable(e, now) {
		r, exp := e.resp, e.expiry
		e.used = true
		e.mu.Unlock()
		a.cfg.Metrics.cacheHits.WithLabelValues(e.name).Inc()
		return r, exp, nil
	}
	f := e.flight
	if f == nil {
		if now.Before(e.retryAt) {
			// The STS failed moments ago. Do not hammer it on every
			// caller's behalf; the next try is after the backoff.
			err := e.lastErr
			e.mu.Unlock()
			return nil, time.Time{}, fmt.Errorf("%w for profile %s: %w", ErrUnavailable, e.name, err)
		}
		f = a.start(e)
	}
	f.waiters++
	lastErr := e.lastErr
	e.mu.Unlock()
	select {
	case <-f.done:
	case <-a.ctx.Done():
		return nil, time.Time{}, fmt.Errorf("%w (profile %s)", ErrClosed, e.name)
	case <-ctx.Done():
		if lastErr != nil {
			return nil, time.Time{}, fmt.Errorf("agent: profile %s: %w while waiting for the STS (last refresh error: %v)", e.name, ctx.Err(), lastErr)
		}
		return nil, time.Time{}, fmt.Errorf("agent: profile %s: %w while waiting for the STS", e.name, ctx.Err())
	}
	if errors.Is(f.err, ErrClosed) {
		return nil, time.Time{}, fmt.Errorf("%w (profile %s)", ErrClosed, e.name)
	}
	if f.err != nil {
		return nil, time.Time{}, fmt.Errorf("%w for profile %s: %w", ErrUnavailable, e.name, f.err)
	}
	return f.resp, f.expiry, nil
}

// entry finds or makes the entry for a profile and scope set, notes the
// caller's use, and returns it with e.mu held.
func (a *Agent) entry(name string, scopes []string) (*entry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, err := a.profileLocked(name)
	if err != nil {
		return nil, err
	}
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
	e, ok := a.entries[key]
	if !ok {
		n := 0
		for _, o := range a.entries {
			if o.name == p.Name {
				n++
			}
		}
		if n >= a.cfg.MaxScopeSets {
			return nil, fmt.Errorf("%w for profile %s: %d are cached, the limit; ask for fewer different scope= values (unused ones are dropped after about a token lifetime)", ErrTooManyScopeSets, p.Name, n)
		}
		e = &entry{key: key, name: p.Name, profile: p, req: req, scope: scope}
		a.entries[key] = e
	}
	e.mu.Lock()
	e.lastUsed = a.cfg.Now()
	return e, nil
}

// start begins an exchange for e in the background and returns it.
// Called with e.mu held and no exchange running.
func (a *Agent) start(e *entry) *flight {
	f := &flight{done: make(chan struct{})}
	a.stopTimer(e) // the exchange schedules what comes next
	if !a.track() {
		f.err = ErrClosed
		close(f.done)
		return f
	}
	e.flight = f
	go func() {
		defer a.wg.Done()
		a.exchange(e, f)
	}()
	return f
}

// refused reports whether err is the STS refusing the client or request
// (a 4xx OAuth error such as invalid_scope, invalid_client or
// unauthorized_client), which retrying in the background will not cure.
func refused(err error) bool {
	var te *token.Error
	if !errors.As(err, &te) {
		return false
	}
	return te.Status >= 400 && te.Status < 500 && te.Status != http.StatusRequestTimeout && te.Status != http.StatusTooManyRequests
}

// exchange runs one exchange for e, hands its result to the waiting
// callers, and decides what happens next: on success a background refresh
// ahead of expiry; on failure, while a still-valid token is cached and the
// failure is not a refusal, a retry with backoff; otherwise nothing but
// eviction once nobody asks.
func (a *Agent) exchange(e *entry, f *flight) {
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
	defer close(f.done)
	e.flight = nil
	if err != nil && a.ctx.Err() != nil {
		f.err = ErrClosed // shutting down: not a failure of the STS
		return
	}
	if err != nil {
		f.err = err
		e.lastErr = err
		e.failures++
		e.refused = refused(err)
		// A caller asking for a scope the client lacks is the caller's
		// mistake (it gets the error), not a failing refresh to alert on.
		if e.resp != nil || !errors.Is(err, token.ErrInvalidScope) {
			a.cfg.Metrics.refreshFailures.WithLabelValues(p.Name).Inc()
		}
		a.cfg.Logger.Warn("token refresh failed", "profile", p.Name, "scope", e.scope, "error", err, "failures", e.failures, "retry", a.refreshable(e, now))
		wait := a.backoff(e.failures)
		e.retryAt = now.Add(wait)
		if a.refreshable(e, now) {
			a.schedule(e, wait)
		} else {
			a.scheduleEviction(e, now)
		}
		return
	}
	lifetime := time.Duration(resp.ExpiresIn) * time.Second
	if lifetime <= 0 {
		lifetime = 5 * time.Minute // no expires_in: refresh often
	}
	e.resp, e.expiry, e.lifetime = resp, now.Add(lifetime), lifetime
	e.lastErr, e.refused, e.failures, e.retryAt = nil, false, 0, time.Time{}
	e.used = f.waiters > 0
	f.resp, f.expiry = resp, e.expiry
	a.cfg.Metrics.tokensIssued.WithLabelValues(p.Name).Inc()
	a.schedule(e, a.refreshAfter(lifetime))
	a.cfg.Logger.Info("token refreshed", "profile", p.Name, "scope", e.scope, "expires_in", resp.ExpiresIn, "token_type", resp.TokenType)
}

// refreshable reports whether e is refreshed in the background: it holds
// a token still valid at now, and its last failure (if any) was not a
// refusal. Called with e.mu held.
func (a *Agent) refreshable(e *entry, now time.Time) bool {
	return e.resp != nil && now.Before(e.expiry) && !e.refused
}

// idleLimit is how long an entry that is not refreshed in the background
// stays cached without callers: one token lifetime, at least MaxBackoff.
func (a *Agent) idleLimit(e *entry) time.Duration {
	return max(e.lifetime, a.cfg.MaxBackoff)
}

// scheduleEviction arranges for e to be evicted once nobody asked for it
// within idleLimit, and not before its retry time, so a caller that keeps
// asking sees the last failure rather than a new STS call. Called with
// e.mu held.
func (a *Agent) scheduleEviction(e *entry, now time.Time) {
	at := e.lastUsed.Add(a.idleLimit(e))
	if e.retryAt.After(at) {
		at = e.retryAt
	}
	a.schedule(e, max(at.Sub(now), 0))
}

func (a *Agent) backoff(failures int) time.Duration {
	d := a.cfg.MinBackoff << min(failures-1, 16)
	if d > a.cfg.MaxBackoff || d <= 0 {
		d = a.cfg.MaxBackoff
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// schedule arranges for tick(e) after d. Called with e.mu held.
func (a *Agent) schedule(e *entry, d time.Duration) {
	a.stopTimer(e)
	if e.dropped || a.ctx.Err() != nil {
		return
	}
	e.timerGen++
	gen := e.timerGen
	e.timer = a.afterFunc(d, func() {
		if !a.track() {
			return
		}
		defer a.wg.Done()
		a.tick(e, gen)
	})
}

// tick is e's timer: refresh it in the background if it is refreshable
// and its token was used, else evict it once idle. gen tells which timer
// fired: one stopped or replaced while its callback waited for the locks
// does nothing.
func (a *Agent) tick(e *entry, gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if gen != e.timerGen {
		return
	}
	e.timer = nil
	if e.dropped || e.flight != nil {
		return // an exchange running schedules what comes next
	}
	now := a.cfg.Now()
	if a.refreshable(e, now) {
		if !e.used {
			a.evict(e, "no caller asked for its token")
			return
		}
		a.start(e)
		return
	}
	if now.Sub(e.lastUsed) >= a.idleLimit(e) && !now.Before(e.retryAt) {
		a.evict(e, "no caller asked for it")
		return
	}
	a.scheduleEviction(e, now)
}

// evict drops an idle entry. Called with a.mu and e.mu held.
func (a *Agent) evict(e *entry, why string) {
	a.drop(e)
	a.cfg.Logger.Info("token cache entry evicted", "profile", e.name, "scope", e.scope, "reason", why)
}

// stopTimer cancels e's pending tick. Called with e.mu held.
func (a *Agent) stopTimer(e *entry) {
	if e.timer != nil {
		e.timer.Stop()
	}
	e.timer = nil
	e.timerGen++ // a callback already on its way finds it is not current
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
			out[[2]string{e.name, e.scope}] = e.expiry
		}
		e.mu.Unlock()
	}
	return out
}

// Refresh forces a refresh of every cached entry now and waits for the
// exchanges to end (for tests and for a reload that must pick up a new
// key).
func (a *Agent) Refresh() {
	a.mu.Lock()
	es := make([]*entry, 0, len(a.entries))
	for _, e := range a.entries {
		es = append(es, e)
	}
	a.mu.Unlock()
	var flights []*flight
	for _, e := range es {
		e.mu.Lock()
		if e.flight == nil && !e.dropped {
			flights = append(flights, a.start(e))
		}
		e.mu.Unlock()
	}
	for _, f := range flights {
		<-f.done
	}
}
