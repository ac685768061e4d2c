package token

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t atomic.Pointer[time.Time] }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.set(t)
	return c
}
func (c *fakeClock) now() time.Time      { return *c.t.Load() }
func (c *fakeClock) set(t time.Time)     { c.t.Store(&t) }
func (c *fakeClock) add(d time.Duration) { c.set(c.now().Add(d)) }

func TestSourceCachesUntilShortlyBeforeExpiry(t *testing.T) {
	f := newFakeSTS(t, false)
	f.ttl = 300
	cfg := f.config(t)
	clk := newFakeClock(testNow)
	cfg.Now = clk.now
	f.respondIat(clk)
	src := NewSource(newClient(t, cfg), WithExpiryDelta(20*time.Second))

	tok1, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok1.TokenType != "Bearer" || tok1.Extra("scope") != "nhn:test/a nhn:test/b" || !tok1.Expiry.Equal(testNow.Add(300*time.Second)) {
		t.Errorf("token %+v extra scope %v", tok1, tok1.Extra("scope"))
	}
	clk.add(279 * time.Second)
	tok2, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok2.AccessToken != tok1.AccessToken || len(f.requests()) != 1 {
		t.Fatalf("refreshed early: %d requests", len(f.requests()))
	}
	clk.add(time.Second) // now 20 s before expiry
	tok3, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok3.AccessToken == tok1.AccessToken || len(f.requests()) != 2 {
		t.Fatalf("not refreshed 20 s before expiry: %d requests", len(f.requests()))
	}
	src.Reset()
	if _, err := src.Token(); err != nil || len(f.requests()) != 3 {
		t.Fatalf("Reset did not force a new token: %v, %d requests", err, len(f.requests()))
	}
}

// respondIat makes the fake STS accept assertions whose iat follows clk.
func (f *fakeSTS) respondIat(clk *fakeClock) { f.iatClock = clk.now }

func TestSourceShortLivedToken(t *testing.T) {
	f := newFakeSTS(t, false)
	f.ttl = 20
	clk := newFakeClock(testNow)
	f.respondIat(clk)
	cfg := f.config(t)
	cfg.Now = clk.now
	src := NewSource(newClient(t, cfg)) // default delta 30 s > the token's life
	for range 2 {
		if _, err := src.Token(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests; a 20 s token must be cached for half its life", n)
	}
	clk.add(10 * time.Second)
	if _, err := src.Token(); err != nil || len(f.requests()) != 2 {
		t.Fatalf("not refreshed at half life: %v, %d requests", err, len(f.requests()))
	}
}

func TestSourceConcurrentCallersShareOneExchange(t *testing.T) {
	f := newFakeSTS(t, false)
	gate := make(chan struct{})
	f.respond = func(n int, _ seen, _ http.ResponseWriter) bool {
		<-gate // hold the first exchange until every caller is waiting
		return false
	}
	src := NewSource(newClient(t, f.config(t)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	var started sync.WaitGroup
	for range 100 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			tok, err := src.Token()
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got[tok.AccessToken]++
			mu.Unlock()
		}()
	}
	started.Wait()
	close(gate)
	wg.Wait()
	if n := len(f.requests()); n != 1 || len(got) != 1 {
		t.Fatalf("%d exchanges, %d distinct tokens; want 1 and 1", n, len(got))
	}
}

func TestSourceWaiterHonoursContext(t *testing.T) {
	f := newFakeSTS(t, false)
	gate := make(chan struct{})
	entered := make(chan struct{})
	f.respond = func(int, seen, http.ResponseWriter) bool {
		close(entered)
		<-gate
		return false
	}
	src := NewSource(newClient(t, f.config(t)))
	done := make(chan error, 1)
	go func() {
		_, err := src.Token()
		done <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := src.TokenContext(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting caller: err = %v, want context.Canceled", err)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSourceFileCache(t *testing.T) {
	f := newFakeSTS(t, false)
	dir := filepath.Join(t.TempDir(), "tokens")
	cache := FileCache{Dir: dir}
	c := newClient(t, f.config(t))
	tok, err := NewSource(c, WithCache(cache)).Token()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	st, _ := os.Stat(files[0])
	if st.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode %v, want 0600", st.Mode().Perm())
	}
	// A new process (new Source) uses the cached token: no exchange.
	tok2, err := NewSource(c, WithCache(cache)).Token()
	if err != nil || tok2.AccessToken != tok.AccessToken || len(f.requests()) != 1 {
		t.Fatalf("cache not used: %v, %d requests", err, len(f.requests()))
	}
	// Other scopes are another cache entry.
	if _, err := NewSource(c, WithCache(cache), WithRequest(Request{Scopes: []string{"x"}})).Token(); err != nil || len(f.requests()) != 2 {
		t.Fatalf("different scopes shared a cache entry: %v", err)
	}
	// A cache file others can read is refused (and a new token fetched).
	os.Chmod(files[0], 0o644)
	if _, err := cache.Load(filepath.Base(files[0][:len(files[0])-5])); err == nil {
		t.Error("a world-readable cache file was loaded")
	}
	if _, err := NewSource(c, WithCache(cache)).Token(); err != nil || len(f.requests()) != 3 {
		t.Fatalf("bad cache file not bypassed: %v, %d requests", err, len(f.requests()))
	}
}

func TestSourceResetBypassesFileCache(t *testing.T) {
	f := newFakeSTS(t, false)
	cache := FileCache{Dir: t.TempDir()}
	c := newClient(t, f.config(t))
	src := NewSource(c, WithCache(cache))
	first, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	src.Reset() // the resource server refused the token
	second, err := src.Token()
	if err != nil || second.AccessToken == first.AccessToken {
		t.Fatalf("after Reset the refused token came back from disk: %v", err)
	}
	// The disk cache now holds the new token.
	third, err := NewSource(c, WithCache(cache)).Token()
	if err != nil || third.AccessToken != second.AccessToken {
		t.Fatalf("cache not updated after Reset: %v", err)
	}
}

// The file cache never serves a token no other process could time: one
// without expires_in is not stored, and one with only seconds left (of a
// long life) is replaced like any other near its end.
func TestFileCacheExpiryRules(t *testing.T) {
	f := newFakeSTS(t, false)
	c := newClient(t, f.config(t)) // clock: testNow
	cache := FileCache{Dir: t.TempDir()}
	key := c.CacheKey(Request{})
	raw := func(exp int) []byte {
		return []byte(`{"access_token":"cached","token_type":"Bearer","expires_in":` + fmt.Sprint(exp) + `}`)
	}
	// An hour-long token with 2 s left: not served.
	if err := cache.Store(key, &Response{AccessToken: "cached", TokenType: "Bearer", ExpiresIn: 3600,
		Expiry: testNow.Add(2 * time.Second), Raw: raw(3600)}); err != nil {
		t.Fatal(err)
	}
	tok, err := NewSource(c, WithCache(cache)).Token()
	if err != nil || tok.AccessToken == "cached" || len(f.requests()) != 1 {
		t.Fatalf("a token with 2 s left was served from the cache: %v %v", tok, err)
	}
	// No expires_in: not stored, and such a file is not served.
	dir := t.TempDir()
	nc := FileCache{Dir: dir}
	if err := nc.Store(key, &Response{AccessToken: "forever", TokenType: "Bearer", Raw: []byte(`{"access_token":"forever","token_type":"Bearer"}`)}); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(files) != 0 {
		t.Fatalf("a token without expires_in was written: %v", files)
	}
	os.WriteFile(filepath.Join(dir, key+".json"), []byte(`{"token_type":"Bearer","response":{"access_token":"forever","token_type":"Bearer"}}`), 0o600)
	if r, err := nc.Load(key); err != nil || r != nil {
		t.Fatalf("a cached token without expiry was loaded: %v %v", r, err)
	}
}
