//go:build (unix && !aix && !solaris) || illumos

package profile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// lockFile takes an exclusive flock(2) on the file p, made if missing and
// never removed (removing a lock file that someone may be about to open
// would let two processes hold "the" lock). The kernel drops the lock
// when its holder closes the file or exits, killed or not, so a crash
// never leaves a stale lock. The file stays empty and is opened only for
// reading, so one made by root does not lock other users out.
func lockFile(ctx context.Context, p, config string) (unlock func(), err error) {
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if errors.Is(err, os.ErrPermission) {
		if _, serr := os.Lstat(p); serr == nil {
			// The lock file is there but not ours to read: say so, rather
			// than blame the directory.
			return nil, fmt.Errorf("profile: lock file %s of the config file %s cannot be opened (%v); its owner can fix it with: chmod 644 %s", p, config, err, p)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("profile: lock the config file %s: %w", config, err)
	}
	// 0644, not 0600 like the key and config files, whatever the umask:
	// everyone who may change the config (root and a service account that
	// both rotate it, say) must open the lock file to flock it, and one
	// made 0600 by whoever came first would lock the others out. Being
	// empty, it shows nothing but that the config file exists.
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm() != 0o644 {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Getuid() {
			_ = f.Chmod(0o644)
		}
	}
	fd := int(f.Fd())
	deadline := time.Now().Add(lockWait)
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("profile: lock the config file %s (%s): %w", config, p, err)
		}
		if err := waitLock(ctx, deadline, p, config, ""); err != nil {
			f.Close()
			return nil, err
		}
	}
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }, nil // closing releases the lock
}
