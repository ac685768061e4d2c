package token

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jwkctl/jwkctl/internal/ctxsleep"
)

// DefaultMaxRetries is how often a 5xx, 429 or network failure is retried.
const DefaultMaxRetries = 3

// RetryPolicy decides how failed token requests are retried. Every retry
// signs a new assertion. The zero value is the default policy.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first try; 0 means
	// DefaultMaxRetries, negative means none.
	MaxRetries int
	// Backoff is the wait before retry n (1, 2, …); nil means exponential
	// from 500 ms, doubling up to 8 s, with ±20 % jitter.
	Backoff func(n int) time.Duration
	// MaxRetryAfter caps a server's Retry-After (default 30 s); a longer
	// one is waited for only that long.
	MaxRetryAfter time.Duration
	// Sleep waits d or until ctx is done; nil means a timer. Tests inject it.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (p RetryPolicy) max() int {
	switch {
	case p.MaxRetries < 0:
		return 0
	case p.MaxRetries == 0:
		return DefaultMaxRetries
	}
	return p.MaxRetries
}

// DefaultBackoff is 500 ms × 2^(n-1), at most 8 s, ±20 % jitter.
func DefaultBackoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := 500 * time.Millisecond << min(n-1, 4)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}

// wait sleeps before retry n: the server's Retry-After when it gave one,
// else the backoff.
func (c *Client) wait(ctx context.Context, n int, retryAfter time.Duration) error {
	d := retryAfter
	if d <= 0 {
		b := c.cfg.Retry.Backoff
		if b == nil {
			b = DefaultBackoff
		}
		d = b(n)
	}
	sleep := c.cfg.Retry.Sleep
	if sleep == nil {
		sleep = ctxsleep.Sleep
	}
	c.log.Debug("retrying the token request", "retry", n, "wait", d)
	return sleep(ctx, d)
}

// retryAfter reads Retry-After (seconds or an HTTP date), capped.
func (c *Client) retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	limit := c.cfg.Retry.MaxRetryAfter
	if limit <= 0 {
		limit = 30 * time.Second
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs > int64(limit/time.Second) {
			return limit
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(c.cfg.Now())
	}
	return min(max(d, 0), limit)
}
