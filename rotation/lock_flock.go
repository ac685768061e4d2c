//go:build (unix && !aix && !solaris) || illumos

package rotation

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// lockFile takes an exclusive flock(2) on the file p, made if missing and
// never removed: removing a lock file while someone may hold it or be
// about to open it would let two processes hold "the" lock. The kernel
// drops the lock when its holder closes the file or exits, killed or
// not, so a crashed rotation never leaves a stale lock. While held, the
// file holds "pid@host" for the message of a refused lock.
func lockFile(p, what string) (unlock func(), err error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("rotation: lock: %w", err)
	}
	fd := int(f.Fd())
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		b, _ := io.ReadAll(io.LimitReader(f, 512))
		f.Close()
		return nil, fmt.Errorf("%w for %s (locked by %s; the lock ends when that process does)", ErrLocked, what, describeHolder(b))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("rotation: lock %s: %w", p, err)
	}
	// Ours now. What a dead holder wrote is replaced.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(holderLine()), 0)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = f.Truncate(0)
			f.Close() // releases the lock
		})
	}, nil
}
