package profile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// lockWait is how long Lock waits for another process to finish its
// change of the same config file.
var lockWait = 30 * time.Second

// lockRetry is how often Lock tries again while the lock is taken.
const lockRetry = 20 * time.Millisecond

// Lock takes the config file's lock, for a read-change-write of the file
// (Load, change, Save) that must not lose another process's change made
// in between; the caller calls unlock after Save. It waits while another
// process holds the lock, up to 30 seconds or until ctx ends.
//
// The lock is taken on a file next to the config file (next to the file a
// symbolic link leads to, so every name of one config file shares one
// lock): ".config.yaml.lock" for config.yaml. The config file itself
// cannot carry the lock, since Save replaces it with a new file. See
// lockFile for how the lock works on each platform.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	target, err := targetPath(path)
	if err != nil {
		return nil, err
	}
	unlock, err = lockFile(ctx, lockPath(target), path)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, errReadOnlyFS) {
		// The lock file goes where Save's temp file would: same cause, same fix.
		return nil, notWritable(path, target, err)
	}
	return unlock, err
}

func lockPath(target string) string {
	return filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".lock")
}

// waitLock waits before the next try, or says why to stop: ctx ended, or
// the deadline has passed.
func waitLock(ctx context.Context, deadline time.Time, lock, config, hint string) error {
	if time.Now().After(deadline) {
		return fmt.Errorf("profile: the config file %s is locked by another process changing it (lock file %s), still after %v; try again%s", config, lock, lockWait, hint)
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("profile: waiting for the lock of %s: %w", config, ctx.Err())
	case <-time.After(lockRetry):
		return nil
	}
}
