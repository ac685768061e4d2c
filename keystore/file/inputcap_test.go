package file_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jwkctl/jwkctl/internal/inputfile"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/file"
)

// fifo makes a FIFO (mode 0600) that a goroutine feeds with n bytes, or
// skips the test where there are none. The writer gives up when the
// reader goes, and is released at the end if nobody opened the FIFO.
func fifo(t *testing.T, n int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	go func() {
		w, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		chunk := []byte(strings.Repeat("x", 4096))
		for n > 0 {
			c := chunk[:min(n, len(chunk))]
			if _, err := w.Write(c); err != nil {
				return
			}
			n -= len(c)
		}
	}()
	t.Cleanup(func() {
		if r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			r.Close()
		}
	})
	return p
}

func oneLine(t *testing.T, err error) {
	t.Helper()
	if err == nil || strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("want a one-line error, got %v", err)
	}
}

// A passphrase file that never ends (/dev/zero, a FIFO fed without end)
// is one clear error, not a read until memory runs out. A pipe that ends
// in time (a shell's <(command)) still works.
func TestPassphraseFileUnbounded(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err == nil {
		_, err := file.ReadPassphraseFile("/dev/zero")
		oneLine(t, err)
	}
	_, err := file.ReadPassphraseFile(fifo(t, 64<<10))
	if !errors.Is(err, inputfile.ErrTooLarge) {
		t.Errorf("FIFO with 64 KiB: %v, want ErrTooLarge", err)
	}
	oneLine(t, err)
	p := fifo(t, 100)
	got, err := file.ReadPassphraseFile(p)
	if err != nil || len(got) != 100 {
		t.Errorf("a short pipe: %d bytes, %v", len(got), err)
	}
}

// A key URI naming /dev/zero, a FIFO or a file larger than any key gives
// one clear error, without reading it all.
func TestKeyFileUnbounded(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.json")
	f, err := os.OpenFile(big, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 << 30); err != nil { // sparse: costs no disk
		t.Skip("no sparse files here:", err)
	}
	f.Close()
	for _, p := range []string{"/dev/zero", fifo(t, 4<<20), big} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		_, err := keystore.Open(ctx, "file://"+p, keystore.Options{})
		oneLine(t, err)
		if p == big && !errors.Is(err, inputfile.ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", p, err)
		}
	}
	if _, err := keystore.List(ctx, "file://"+big, keystore.Options{}); err != nil {
		t.Errorf("keys list of a huge file: %v", err)
	}
}
