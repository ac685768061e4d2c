package inputfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadCapsUnsizedInput(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, err := Read("/dev/zero", 1<<10, "a key file")
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read(/dev/zero) = %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "1 KiB") {
		t.Errorf("message %q does not name the cap", err)
	}
}

func TestReadFIFO(t *testing.T) {
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
		chunk := make([]byte, 4096)
		for i := 0; i < 64; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}()
	if _, err := Read(p, 8<<10, "a passphrase"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read(fifo) = %v, want ErrTooLarge", err)
	}
}

func TestReadExactAndSmaller(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	if err := os.WriteFile(p, []byte("12345678"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(p, 8, "x"); err != nil || string(b) != "12345678" {
		t.Fatalf("Read at the cap = %q, %v", b, err)
	}
	if _, err := Read(p, 7, "x"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read over the cap = %v", err)
	}
	if _, err := Read(dir, 8, "a key file"); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("Read(dir) = %v", err)
	}
	_, err := Read(filepath.Join(dir, "missing"), 8, "x")
	if err == nil || strings.Count(err.Error(), dir) != 1 {
		t.Fatalf("Read(missing) = %v, want the path once", err)
	}
}
