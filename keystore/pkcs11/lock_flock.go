//go:build cgo && ((unix && !aix && !solaris) || illumos)

package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockFile takes an exclusive flock(2) on the file p, made if missing and
// never removed (removing a lock file that someone may be about to open
// would let two processes hold "the" lock). The kernel drops the lock when
// its holder closes the file or exits, killed or not, so a crash never
// leaves a stale lock. The file stays empty and is opened only for
// reading, so one made by another user does not lock others out.
func lockFile(ctx context.Context, p, token string) (unlock func(), err error) {
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: lock %s for making a key: %w", token, err)
	}
	// Whatever the umask: other users must be able to open it to lock.
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm() != 0o644 {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Getuid() {
			_ = f.Chmod(0o644)
		}
	}
	fd := int(f.Fd())
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EINTR) && !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("pkcs11: lock %s for making a key (%s): %w", token, p, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("pkcs11: another process has been making a key on %s for too long (lock %s): %w", token, p, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
