//go:build cgo

package pkcs11

import (
	"time"

	"github.com/jwkctl/jwkctl/keystore"
)

// WithoutFastPath makes k sign through crypto11 only, as it does when the
// fast path cannot be set up.
func WithoutFastPath(k keystore.Key) {
	key := k.(*Key)
	key.mu.Lock()
	defer key.mu.Unlock()
	key.b.dropFast(key.fast)
	key.fast = nil
}

// SetTokenLocks turns the per-token lock of Generate and Import off (as
// where flock(2) is missing or a rival runs on another host) or on again.
func SetTokenLocks(on bool) { tokenLocks = on }

// SetClock makes the backoff between log-in attempts to a token that is
// gone read f instead of the time.
func SetClock(f func() time.Time) { now = f }

// ReloginTries counts the attempts to log in again to a token whose
// session was lost.
func ReloginTries() int64 { return reloginTries.Load() }
