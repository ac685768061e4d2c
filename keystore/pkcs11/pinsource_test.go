package pkcs11

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jwkctl/jwkctl/internal/inputfile"
	"github.com/jwkctl/jwkctl/keystore"
)

// A pin-source file fed without end (a FIFO) is one clear error, not a
// read until memory runs out; its content never shows in the error.
func TestPinSourceUnbounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pin")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	go func() {
		w, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		chunk := []byte(strings.Repeat("7", 4096))
		for range 64 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}()
	_, err := readPinSource("file:" + p)
	if !errors.Is(err, inputfile.ErrTooLarge) || !errors.Is(err, keystore.ErrPIN) || strings.Contains(err.Error(), "7777") {
		t.Fatalf("readPinSource(FIFO) = %v, want ErrPIN and ErrTooLarge without the content", err)
	}
}
