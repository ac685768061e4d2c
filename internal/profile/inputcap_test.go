package profile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jwkctl/jwkctl/internal/inputfile"
)

// A config path naming /dev/zero, a FIFO or a file larger than any config
// gives one clear error, without reading it all (a FIFO is not even
// opened: opening one waits for a writer).
func TestConfigUnbounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	big := writeConfig(t, dir, "profiles: {}\n")
	if err := os.Truncate(big, 64<<20); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dev/zero", fifo, big} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		_, err := Load(p)
		if err == nil || strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("Load(%s): %v, want a one-line error", p, err)
		}
		if p == big && !errors.Is(err, inputfile.ErrTooLarge) {
			t.Errorf("Load(%s): %v, want ErrTooLarge", p, err)
		}
	}
}
