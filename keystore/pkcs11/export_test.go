//go:build cgo

package pkcs11

import "github.com/jwkctl/jwkctl/keystore"

// WithoutFastPath makes k sign through crypto11 only, as it does when the
// fast path cannot be set up.
func WithoutFastPath(k keystore.Key) {
	key := k.(*Key)
	key.mu.Lock()
	defer key.mu.Unlock()
	key.b.dropFast(key.fast)
	key.fast = nil
}

// WithoutTokenLocks makes Generate and Import take no per-token lock, as
// where flock(2) is missing or a rival runs on another host.
func WithoutTokenLocks() { tokenLocks = false }
