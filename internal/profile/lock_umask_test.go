//go:build (unix && !aix && !solaris) || illumos

package profile

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The config lock file stays 0644 under a narrow umask, so a lock file
// made by one user (root, say) does not lock others out.
func TestLockFileModeIgnoresUmask(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("profiles: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077)
	unlock, err := Lock(context.Background(), cfg)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	fi, err := os.Stat(filepath.Join(dir, ".config.yaml.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("lock file mode %04o, want 0644", fi.Mode().Perm())
	}
}
