//go:build !((unix && !aix && !solaris) || illumos)

package profile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"
)

// lockFile, where flock(2) is not available, creates p with O_EXCL and
// removes it on unlock. A lock file left by a crashed process is never
// taken over (two processes could both take it over): after lockWait the
// error says to remove it if no jwkctl is running.
func lockFile(ctx context.Context, p, config string) (unlock func(), err error) {
	deadline := time.Now().Add(lockWait)
	for {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			host, _ := os.Hostname()
			_, werr := fmt.Fprintf(f, "%d@%s\n", os.Getpid(), host)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				os.Remove(p)
				return nil, fmt.Errorf("profile: lock the config file %s: %w", config, werr)
			}
			var once sync.Once
			return func() { once.Do(func() { os.Remove(p) }) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("profile: lock the config file %s: %w", config, err)
		}
		if err := waitLock(ctx, deadline, p, config, " (if no jwkctl is running, a crashed one left the lock file: remove it)"); err != nil {
			return nil, err
		}
	}
}
