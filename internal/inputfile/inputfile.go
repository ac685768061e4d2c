// Package inputfile reads the files a user names on the command line or in
// a config (keys, passphrases, configs, downloads, secrets) with a cap on
// the bytes read, not on what Stat reports: /dev/zero, a FIFO or
// /dev/stdin report no size and would otherwise be read without end.
//
//	data, err := inputfile.Read(path, inputfile.MaxKey, "a key file")
package inputfile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Caps for the kinds of input jwkctl reads.
const (
	MaxKey        = 1 << 20 // a private JWK, PEM, JWE or Selvbetjening download
	MaxConfig     = 1 << 20 // a config file
	MaxPassphrase = 4 << 10 // a passphrase or PIN file
)

// ErrTooLarge is wrapped by Read when the input holds more than its cap.
var ErrTooLarge = errors.New("inputfile: input too large")

// Read returns the contents of path, reading at most max bytes. what names
// the expected content for messages ("a key file"); messages never quote
// the content. A directory is refused.
func Read(path string, max int64, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	return ReadFrom(f, path, max, what)
}

// ReadFrom is Read for an already open file; name is only for messages.
func ReadFrom(f *os.File, name string, max int64, what string) ([]byte, error) {
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("read %s: is a directory, not %s", name, what)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, unwrapPath(err))
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: %s holds more than %s, too much for %s", ErrTooLarge, name, size(max), what)
	}
	return b, nil
}

// unwrapPath drops the *PathError wrapper, whose text repeats the path.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
