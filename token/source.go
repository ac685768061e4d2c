package token

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// DefaultExpiryDelta is how long before expiry a cached token is replaced.
const DefaultExpiryDelta = 30 * time.Second

// noExpiryLifetime is how long a token without expires_in is cached.
const noExpiryLifetime = time.Minute

// Cache stores token responses beyond one process (FileCache on disk).
// Load returns nil, nil when there is nothing usable.
type Cache interface {
	Load(key string) (*Response, error)
	Store(key string, r *Response) error
}

// SourceOption changes a Source.
type SourceOption func(*Source)

// WithExpiryDelta replaces a token d before it expires (default
// DefaultExpiryDelta; for short-lived tokens at most half their life).
func WithExpiryDelta(d time.Duration) SourceOption { return func(s *Source) { s.delta = d } }

// WithRequest sets the scopes and resources the Source asks for.
func WithRequest(r Request) SourceOption { return func(s *Source) { s.req = r } }

// WithCache adds a second-level cache, consulted when memory has no valid
// token and written after every exchange.
func WithCache(c Cache) SourceOption { return func(s *Source) { s.cache = c } }

// Source is an oauth2.TokenSource over a Client: it caches the token until
// shortly before it expires and lets one caller at a time refresh it while
// the others wait for that result. It is safe for concurrent use. A cached
// Token costs an atomic load and a clock read, and no signature.
//
// With DPoP, make HTTP clients with NewHTTPClient, which signs a proof
// (with ath) for every request. oauth2.NewClient and oauth2.Transport know
// nothing of DPoP: they would send "Authorization: DPoP <token>" without
// a proof, which a resource server must refuse (RFC 9449 §7.1).
type Source struct {
	c     *Client
	req   Request
	delta time.Duration
	cache Cache
	key   string

	cur       atomic.Pointer[entry]
	skipCache atomic.Bool   // after Reset: the cached token was refused too
	sem       chan struct{} // one refresh at a time
}

type entry struct {
	resp    *Response
	tok     *oauth2.Token
	refresh time.Time // replace from this instant on
}

var _ oauth2.TokenSource = (*Source)(nil)

// NewSource wraps c in a caching token source.
func NewSource(c *Client, opts ...SourceOption) *Source {
	s := &Source{c: c, delta: DefaultExpiryDelta, sem: make(chan struct{}, 1)}
	for _, o := range opts {
		o(s)
	}
	s.key = c.CacheKey(s.req)
	return s
}

// Client is the client the Source gets tokens from.
func (s *Source) Client() *Client { return s.c }

// Token returns a valid token, from the cache when it can. Token.Extra
// holds the raw response fields; TokenType is "DPoP" for a bound token.
func (s *Source) Token() (*oauth2.Token, error) { return s.TokenContext(context.Background()) }

// TokenContext is Token with a context for the exchange (and for waiting
// on another caller's exchange).
func (s *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	e, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	return e.tok, nil
}

// Response returns the cached token response, refreshing it when due.
func (s *Source) Response(ctx context.Context) (*Response, error) {
	e, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	return e.resp, nil
}

// Reset forgets the cached token, for example after a resource server
// answered invalid_token. The next call exchanges a new one.
func (s *Source) Reset() {
	s.skipCache.Store(true)
	s.cur.Store(nil)
}

// resetIfCurrent is Reset, but only while the cached token is still the
// one a server refused: of many requests refused for the same old token,
// the first resets, and the others use the new one instead of fetching
// (and signing for) one each.
func (s *Source) resetIfCurrent(refused string) {
	e := s.cur.Load()
	if e == nil || (refused != "" && e.tok.AccessToken != refused) {
		return
	}
	// skipCache first, as in Reset: a get between the two must not load
	// the refused token back from the file cache.
	s.skipCache.Store(true)
	s.cur.CompareAndSwap(e, nil)
}

func (s *Source) get(ctx context.Context) (*entry, error) {
	if e := s.cur.Load(); e != nil && s.c.cfg.Now().Before(e.refresh) {
		return e, nil
	}
	if !acquire(ctx, s.sem) {
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	now := s.c.cfg.Now()
	// Another caller may have refreshed while this one waited.
	if e := s.cur.Load(); e != nil && now.Before(e.refresh) {
		return e, nil
	}
	if s.cache != nil && !s.skipCache.Swap(false) {
		if r, err := s.cache.Load(s.key); err == nil && r != nil {
			if e := s.newEntry(r, now); now.Before(e.refresh) && r.IsDPoP() == (s.c.dpop != nil) {
				s.cur.Store(e)
				return e, nil
			}
		} else if err != nil {
			s.c.log.Warn("token cache unreadable; getting a new token", "err", err)
		}
	}
	r, err := s.c.Exchange(ctx, s.req)
	if err != nil {
		return nil, err
	}
	e := s.newEntry(r, now)
	s.cur.Store(e)
	if s.cache != nil {
		if err := s.cache.Store(s.key, r); err != nil {
			s.c.log.Warn("token cache not written", "err", err)
		}
	}
	return e, nil
}

func (s *Source) newEntry(r *Response, now time.Time) *entry {
	tt := "Bearer"
	if r.IsDPoP() {
		tt = "DPoP"
	}
	tok := &oauth2.Token{AccessToken: r.AccessToken, TokenType: tt, Expiry: r.Expiry, ExpiresIn: r.ExpiresIn}
	var extra map[string]any
	if json.Unmarshal(r.Raw, &extra) == nil && extra != nil {
		tok = tok.WithExtra(extra)
	}
	refresh := now.Add(noExpiryLifetime)
	if !r.Expiry.IsZero() {
		// Half the token's whole life at most (short-lived tokens), from
		// expires_in: for a token loaded from the cache, Expiry - now is
		// only what is left of it.
		life := r.Expiry.Sub(now)
		if r.ExpiresIn > 0 {
			life = time.Duration(r.ExpiresIn) * time.Second
		}
		refresh = r.Expiry.Add(-min(s.delta, life/2))
	}
	return &entry{resp: r, tok: tok, refresh: refresh}
}
