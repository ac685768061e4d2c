//go:build !((unix && !aix && !solaris) || illumos)

package rotation

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// lockFile, where flock(2) is not available, creates p with O_EXCL and
// removes it on unlock. A lock file left by a crashed process is never
// taken over (two processes could both take it over), so it stays until
// someone who knows that process is gone removes it by hand.
func lockFile(p, what string) (unlock func(), err error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// The holder line is short; a lock path that names something
		// large (a mistake, or a FIFO) must not be read whole.
		var b []byte
		if h, err := os.Open(p); err == nil {
			b, _ = io.ReadAll(io.LimitReader(h, 512))
			h.Close()
		}
		return nil, fmt.Errorf("%w for %s (locked by %s; if that process is gone, remove %s)", ErrLocked, what, describeHolder(b), p)
	}
	if err != nil {
		return nil, fmt.Errorf("rotation: lock: %w", err)
	}
	_, werr := f.WriteString(holderLine())
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(p)
		return nil, fmt.Errorf("rotation: lock: %w", werr)
	}
	var once sync.Once
	return func() { once.Do(func() { os.Remove(p) }) }, nil
}
