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

func TestReadPassphraseFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	got, err := file.ReadPassphraseFile(write("ok", "correct horse\r\n", 0o600))
	if err != nil || string(got) != "correct horse" {
		t.Fatalf("got %q, %v", got, err)
	}
	_, err = file.ReadPassphraseFile(write("open", "secret-value", 0o644))
	if !errors.Is(err, keystore.ErrInsecure) || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "secret-value") {
		t.Fatalf("readable by others: %v", err)
	}
	if _, err := file.ReadPassphraseFile(write("empty", "\n", 0o600)); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty: %v", err)
	}
	if _, err := file.ReadPassphraseFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

// TestReadPassphraseFileFIFO: a FIFO that others cannot read passes the
// mode check; the read is still capped, not endless.
func TestReadPassphraseFileFIFO(t *testing.T) {
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
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}()
	if _, err := file.ReadPassphraseFile(p); !errors.Is(err, inputfile.ErrTooLarge) {
		t.Fatalf("ReadPassphraseFile(fifo) = %v, want ErrTooLarge", err)
	}
}
