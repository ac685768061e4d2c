package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/token"
)

// These tests drive the agent's timers by hand (fakeTimers) on an injected
// clock, so every background refresh and eviction is explicit.

type fakeTimers struct {
	mu sync.Mutex
	ts []*fakeTimer
}

type fakeTimer struct {
	ft   *fakeTimers
	d    time.Duration
	f    func()
	done bool // fired or stopped
}

func (t *fakeTimer) Stop() bool {
	t.ft.mu.Lock()
	defer t.ft.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

func (ft *fakeTimers) afterFunc(d time.Duration, f func()) stopper {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	t := &fakeTimer{ft: ft, d: d, f: f}
	ft.ts = append(ft.ts, t)
	return t
}

// pending lists the timers neither fired nor stopped.
func (ft *fakeTimers) pending() []*fakeTimer {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	var out []*fakeTimer
	for _, t := range ft.ts {
		if !t.done {
			out = append(out, t)
		}
	}
	return out
}

// fire runs every pending timer now, then waits for the exchanges they
// started.
func (ft *fakeTimers) fire(t *testing.T, a *Agent) {
	t.Helper()
	for _, tm := range ft.pending() {
		ft.mu.Lock()
		tm.done = true
		ft.mu.Unlock()
		tm.f()
	}
	settle(t, a)
}

// settle waits for the agent's running exchanges and timer callbacks.
func settle(t *testing.T, a *Agent) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a guard against a hang, not a timing assertion
		t.Fatal("the agent's background work did not end")
	}
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// stubSTS is an Exchanger whose answers the test sets.
type stubSTS struct {
	mu        sync.Mutex
	name      string
	calls     int
	expiresIn int64
	err       error
	failAfter int           // > 0: every call after this many fails
	block     chan struct{} // if set, calls wait for it (or their context)
	started   chan struct{} // closed at the first call, if set
}

func (s *stubSTS) Exchange(ctx context.Context, _ token.Request) (*token.Response, error) {
	s.mu.Lock()
	s.calls++
	n, err, block := s.calls, s.err, s.block
	if n == 1 && s.started != nil {
		close(s.started)
	}
	if s.failAfter > 0 && n > s.failAfter {
		err = errors.New("stub: too many calls")
	}
	exp := s.expiresIn
	if exp == 0 {
		exp = 3600
	}
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return &token.Response{AccessToken: fmt.Sprintf("%stoken-%d", s.name, n), TokenType: "Bearer", ExpiresIn: exp}, nil
}

func (s *stubSTS) DPoP() *assertion.DPoP { return nil }

func (s *stubSTS) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *stubSTS) set(f func(s *stubSTS)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

func newTestAgent(t *testing.T, cfg Config, profiles ...*Profile) (*Agent, *fakeTimers, *testClock) {
	t.Helper()
	clk := &testClock{now: time.Unix(1_800_000_000, 0)}
	cfg.Now = clk.Now
	a := New(cfg, profiles)
	ft := &fakeTimers{}
	a.afterFunc = ft.afterFunc
	t.Cleanup(a.Close)
	return a, ft, clk
}

func (a *Agent) entryCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.entries)
}

// A token that lives no longer than ExpiryMargin (10 s) is handed to the
// caller that fetched it and cached for half its life, instead of being
// fetched again and again.
func TestShortLivedTokens(t *testing.T) {
	for _, life := range []int64{10, 5, 1} {
		t.Run(fmt.Sprint(life), func(t *testing.T) {
			sts := &stubSTS{expiresIn: life, failAfter: 5}
			a, ft, clk := newTestAgent(t, Config{}, &Profile{Name: "p", Client: sts})
			ctx := context.Background()
			r, exp, err := a.Token(ctx, "p", nil)
			if err != nil || r.AccessToken != "token-1" || sts.Calls() != 1 {
				t.Fatalf("first: %v %v, %d STS calls", r, err, sts.Calls())
			}
			if want := clk.Now().Add(time.Duration(life) * time.Second); !exp.Equal(want) {
				t.Fatalf("expiry %v, want %v", exp, want)
			}
			if r, _, err := a.Token(ctx, "p", nil); err != nil || r.AccessToken != "token-1" || sts.Calls() != 1 {
				t.Fatalf("second, same instant: %v %v, %d STS calls", r, err, sts.Calls())
			}
			// The background refresh comes well before the token stops
			// being handed out (at half its life), and not sooner than 1 s.
			p := ft.pending()
			if want := max(time.Duration(life)*time.Second/2, time.Second); len(p) != 1 || p[0].d > want {
				t.Fatalf("refresh timers %v, want one within %v", p, want)
			}
			clk.Add(time.Duration(life) * time.Second * 8 / 10) // past the quarter-life margin
			if r, _, err := a.Token(ctx, "p", nil); err != nil || r.AccessToken != "token-2" || sts.Calls() != 2 {
				t.Fatalf("after 80%% of its life: %v %v, %d STS calls", r, err, sts.Calls())
			}
		})
	}
}

// slowSTS answers each exchange only when the test closes the channel the
// call hands over on calls, so the test decides how long the STS takes on
// the agent's clock.
type slowSTS struct {
	mu        sync.Mutex
	n         int
	expiresIn int64
	calls     chan chan struct{}
}

func (s *slowSTS) Exchange(ctx context.Context, _ token.Request) (*token.Response, error) {
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	answer := make(chan struct{})
	select {
	case s.calls <- answer:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-answer:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &token.Response{AccessToken: fmt.Sprintf("token-%d", n), TokenType: "Bearer", ExpiresIn: s.expiresIn}, nil
}

func (s *slowSTS) DPoP() *assertion.DPoP { return nil }

// In steady state no caller waits for the STS, whatever the token
// lifetime (from 10 s): with an STS that takes 1 s, a caller at any
// instant — before, at and during each background refresh — gets a cached
// token at once. A caller whose context is already cancelled proves it:
// had it had to wait for the exchange, it would have got its context's
// error instead.
func TestCallersNeverWaitForRefresh(t *testing.T) {
	const stsTime = time.Second
	for _, life := range []int64{10, 20, 30, 39, 40, 60, 300, 3600} {
		t.Run(fmt.Sprint(life), func(t *testing.T) {
			sts := &slowSTS{expiresIn: life, calls: make(chan chan struct{})}
			a, ft, clk := newTestAgent(t, Config{}, &Profile{Name: "p", Client: sts})
			first := make(chan error, 1)
			go func() {
				_, _, err := a.Token(context.Background(), "p", nil)
				first <- err
			}()
			answer := <-sts.calls // nothing cached yet: this caller waits
			clk.Add(stsTime)
			close(answer)
			if err := waitErr(t, first); err != nil {
				t.Fatal(err)
			}
			settle(t, a)
			noWait, cancel := context.WithCancel(context.Background())
			cancel()
			step := min(time.Duration(life)*time.Second/100, 100*time.Millisecond)
			elapsed := time.Duration(0) // since the current token arrived
			check := func(want int) {
				t.Helper()
				r, _, err := a.Token(noWait, "p", nil)
				if err != nil || r.AccessToken != fmt.Sprintf("token-%d", want) {
					t.Fatalf("%v into a %d s token's life: %v %v; want token-%d without waiting", elapsed, life, r, err, want)
				}
			}
			for want := 1; want <= 4; want++ {
				p := ft.pending()
				if len(p) != 1 {
					t.Fatalf("%d timers, want the one refresh", len(p))
				}
				due := p[0].d
				for elapsed = 0; elapsed < due; elapsed += step {
					check(want)
					clk.Add(step)
				}
				clk.Add(due - elapsed)
				elapsed = due
				ft.mu.Lock()
				p[0].done = true
				ft.mu.Unlock()
				p[0].f() // the refresh starts
				answer := <-sts.calls
				for end := elapsed + stsTime; elapsed <= end; elapsed += step {
					check(want) // the STS is still working on it
					clk.Add(step)
				}
				close(answer)
				settle(t, a)
				elapsed = 0
				check(want + 1)
			}
		})
	}
}

// A caller stops waiting when its context ends; Close releases the others.
func TestTokenHonoursContextAndClose(t *testing.T) {
	sts := &stubSTS{block: make(chan struct{}), started: make(chan struct{})}
	a, _, _ := newTestAgent(t, Config{}, &Profile{Name: "p", Client: sts})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, _, err := a.Token(ctx, "p", nil)
		first <- err
	}()
	<-sts.started
	cancel()
	if err := waitErr(t, first); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	second := make(chan error, 1)
	go func() {
		_, _, err := a.Token(context.Background(), "p", nil)
		second <- err
	}()
	a.Close() // the STS still hangs: Close cancels the exchange
	if err := waitErr(t, second); !errors.Is(err, ErrClosed) {
		t.Fatalf("caller at close: %v", err)
	}
	if sts.Calls() != 1 {
		t.Fatalf("%d STS calls, want 1", sts.Calls())
	}
}

// waitErr is a guard against a hang, not a timing assertion: a correct
// agent answers at once.
func waitErr(t *testing.T, c chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Token did not return")
		return nil
	}
}

// A reload while a refresh is running drops the entry for good: the
// refresh does not re-arm it, the old client is not called again, and
// Close has nothing left to wait for.
func TestReloadDuringRefreshLeavesNoOrphan(t *testing.T) {
	old := &stubSTS{name: "old-", block: make(chan struct{}), started: make(chan struct{})}
	a, ft, _ := newTestAgent(t, Config{}, &Profile{Name: "p", Client: old, Fingerprint: "v1"})
	res := make(chan error, 1)
	go func() {
		r, _, err := a.Token(context.Background(), "p", nil)
		if err == nil && r.AccessToken != "old-token-1" {
			err = fmt.Errorf("got %s", r.AccessToken)
		}
		res <- err
	}()
	<-old.started
	rotated := &stubSTS{name: "new-"}
	a.Reload([]*Profile{{Name: "p", Client: rotated, Fingerprint: "v2"}})
	close(old.block)
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	settle(t, a)
	if p := ft.pending(); len(p) != 0 {
		t.Fatalf("%d timers armed for a dropped entry", len(p))
	}
	ft.fire(t, a)
	if old.Calls() != 1 {
		t.Fatalf("the old client was called %d times, want 1", old.Calls())
	}
	if r, _, err := a.Token(context.Background(), "p", nil); err != nil || r.AccessToken != "new-token-1" {
		t.Fatalf("after the reload: %v %v", r, err)
	}
	if n := a.entryCount(); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
	a.Close()
	if p := ft.pending(); len(p) != 0 {
		t.Fatalf("%d timers armed after Close", len(p))
	}
}

// A request the STS refuses (a bad scope=) starts no background retries,
// and the entry is evicted once nobody asks; callers in the meantime get
// the STS's words without a new STS call.
func TestRefusedEntryIsNotRetriedAndEvicted(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"invalid_scope", &token.Error{Status: 400, Code: "invalid_scope", Description: "scope nope is not allowed"}},
		{"unauthorized_client", &token.Error{Status: 400, Code: "unauthorized_client"}},
		{"never had a token", &token.Error{Status: 503, Description: "down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sts := &stubSTS{err: tc.err}
			a, ft, clk := newTestAgent(t, Config{}, &Profile{Name: "p", Client: sts})
			_, _, err := a.Token(context.Background(), "p", []string{"nope"})
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.err.Error()) {
				t.Fatalf("refused: %v", err)
			}
			clk.Add(100 * time.Millisecond)
			if _, _, err := a.Token(context.Background(), "p", []string{"nope"}); !strings.Contains(err.Error(), tc.err.Error()) || sts.Calls() != 1 {
				t.Fatalf("asked again at once: %v, %d STS calls", err, sts.Calls())
			}
			for range 5 { // early firings only reschedule the eviction
				ft.fire(t, a)
			}
			if sts.Calls() != 1 || a.entryCount() != 1 {
				t.Fatalf("background: %d STS calls, %d entries; want 1 and 1", sts.Calls(), a.entryCount())
			}
			clk.Add(2 * time.Minute)
			ft.fire(t, a)
			if sts.Calls() != 1 || a.entryCount() != 0 || len(ft.pending()) != 0 {
				t.Fatalf("idle: %d STS calls, %d entries, %d timers; want 1, 0, 0", sts.Calls(), a.entryCount(), len(ft.pending()))
			}
			// A caller's unknown scope is not a refresh failure to alert on.
			want := 1.0
			if tc.name == "invalid_scope" {
				want = 0
			}
			if got := counterValue(t, a, "jwkctl_agent_refresh_failures_total"); got != want {
				t.Fatalf("refresh failures %v, want %v", got, want)
			}
		})
	}
}

// A still-valid token whose refresh fails is served until it expires:
// with background retries (backoff) when the STS failed, without when it
// refused the client; then callers get the reason.
func TestFailedRefreshOfValidToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"server error", &token.Error{Status: 503, Description: "maintenance"}, true},
		{"network", errors.New("dial tcp: connection refused"), true},
		{"invalid_client", &token.Error{Status: 400, Code: "invalid_client", Description: "unknown key"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sts := &stubSTS{expiresIn: 60}
			a, ft, clk := newTestAgent(t, Config{}, &Profile{Name: "p", Client: sts})
			if r, _, err := a.Token(context.Background(), "p", nil); err != nil || r.AccessToken != "token-1" {
				t.Fatal(r, err)
			}
			sts.set(func(s *stubSTS) { s.err = tc.err })
			clk.Add(45 * time.Second)
			ft.fire(t, a) // the background refresh fails
			if sts.Calls() != 2 {
				t.Fatalf("%d STS calls, want 2", sts.Calls())
			}
			if r, _, err := a.Token(context.Background(), "p", nil); err != nil || r.AccessToken != "token-1" {
				t.Fatalf("while refreshing fails: %v %v", r, err)
			}
			ft.fire(t, a)
			if want := map[bool]int{true: 3, false: 2}[tc.retry]; sts.Calls() != want {
				t.Fatalf("after the backoff: %d STS calls, want %d", sts.Calls(), want)
			}
			clk.Add(10 * time.Second) // 5 s left, inside the margin
			_, _, err := a.Token(context.Background(), "p", nil)
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.err.Error()) {
				t.Fatalf("after expiry: %v", err)
			}
		})
	}
}

// Entries nobody asks for are refreshed at most once more, then evicted.
func TestUnusedEntryIsEvicted(t *testing.T) {
	sts := &stubSTS{expiresIn: 3600}
	a, ft, clk := newTestAgent(t, Config{}, &Profile{Name: "p", Client: sts})
	if _, _, err := a.Token(context.Background(), "p", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	clk.Add(45 * time.Minute)
	ft.fire(t, a) // used: refreshed
	if sts.Calls() != 2 || a.entryCount() != 1 {
		t.Fatalf("%d STS calls, %d entries; want 2 and 1", sts.Calls(), a.entryCount())
	}
	clk.Add(45 * time.Minute)
	ft.fire(t, a) // nobody asked for the new token: evicted
	if sts.Calls() != 2 || a.entryCount() != 0 || len(ft.pending()) != 0 || len(a.expiries()) != 0 {
		t.Fatalf("%d STS calls, %d entries, %d timers; want 2, 0, 0", sts.Calls(), a.entryCount(), len(ft.pending()))
	}
	// Asked for in between: kept and refreshed.
	if _, _, err := a.Token(context.Background(), "p", []string{"a"}); err != nil || sts.Calls() != 3 {
		t.Fatal(err, sts.Calls())
	}
	clk.Add(45 * time.Minute)
	ft.fire(t, a)
	a.Token(context.Background(), "p", []string{"a"})
	clk.Add(45 * time.Minute)
	ft.fire(t, a)
	if sts.Calls() != 5 || a.entryCount() != 1 {
		t.Fatalf("in use: %d STS calls, %d entries; want 5 and 1", sts.Calls(), a.entryCount())
	}
}

// A profile caches at most MaxScopeSets scope sets.
func TestScopeSetCap(t *testing.T) {
	sts := &stubSTS{}
	a, _, _ := newTestAgent(t, Config{MaxScopeSets: 3}, &Profile{Name: "p", Client: sts}, &Profile{Name: "q", Client: sts})
	for _, s := range [][]string{nil, {"a"}, {"b"}, {"a"}, {"b", "b"}} {
		if _, _, err := a.Token(context.Background(), "p", s); err != nil {
			t.Fatalf("%v: %v", s, err)
		}
	}
	_, _, err := a.Token(context.Background(), "p", []string{"c"})
	if !errors.Is(err, ErrTooManyScopeSets) || !strings.Contains(err.Error(), "profile p") {
		t.Fatalf("one too many: %v", err)
	}
	if _, _, err := a.Token(context.Background(), "q", []string{"c"}); err != nil {
		t.Fatalf("another profile: %v", err)
	}
	if sts.Calls() != 4 {
		t.Fatalf("%d STS calls, want 4", sts.Calls())
	}
}

// A timer whose callback runs late — after an exchange has already
// scheduled the next timer — does nothing: no extra STS call, and still
// exactly one live timer for the entry.
func TestStaleTimerCallbackIsIgnored(t *testing.T) {
	sts := &stubSTS{}
	a, ft, clk := newTestAgent(t, Config{}, &Profile{Name: "p", Client: sts})
	if _, _, err := a.Token(context.Background(), "p", nil); err != nil {
		t.Fatal(err)
	}
	p := ft.pending()
	if len(p) != 1 {
		t.Fatalf("%d timers after the first token, want 1", len(p))
	}
	stale := p[0]
	// The timer fires, but its callback is held up; meanwhile an exchange
	// runs and arms the next timer.
	ft.mu.Lock()
	stale.done = true
	ft.mu.Unlock()
	clk.Add(50 * time.Minute)
	a.Refresh()
	settle(t, a)
	if sts.Calls() != 2 || len(ft.pending()) != 1 {
		t.Fatalf("after the refresh: %d STS calls, %d timers; want 2 and 1", sts.Calls(), len(ft.pending()))
	}
	// A caller takes the new token, so the entry is in use.
	if r, _, err := a.Token(context.Background(), "p", nil); err != nil || r.AccessToken != "token-2" {
		t.Fatalf("token after the refresh: %v %v", r, err)
	}
	stale.f() // the late callback
	settle(t, a)
	if sts.Calls() != 2 || len(ft.pending()) != 1 || a.entryCount() != 1 {
		t.Fatalf("after the late callback: %d STS calls, %d live timers, %d entries; want 2, 1 and 1", sts.Calls(), len(ft.pending()), a.entryCount())
	}
}

// counterValue is the value of a counter in the agent's registry (0 when
// it has no sample yet).
func counterValue(t *testing.T, a *Agent, name string) float64 {
	t.Helper()
	mfs, err := a.cfg.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
