package file

import (
	"fmt"
	"os"
	"strings"

	"github.com/jwkctl/jwkctl/internal/inputfile"
	"github.com/jwkctl/jwkctl/keystore"
)

// ReadPassphraseFile reads the passphrase of encrypted key files from
// path, without the final newline. Like a key file, it must be readable by
// its owner only; an empty one is refused. A pipe works (a shell's
// <(command)); what holds more than inputfile.MaxPassphrase (/dev/zero, a
// FIFO fed without end) is refused after that much.
func ReadPassphraseFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read passphrase file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read passphrase file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: passphrase file %s has mode %04o; fix it with: chmod 600 %s", keystore.ErrInsecure, path, fi.Mode().Perm(), path)
	}
	b, err := inputfile.ReadFrom(f, path, inputfile.MaxPassphrase, "a passphrase file")
	if err != nil {
		return nil, err
	}
	p := []byte(strings.TrimRight(string(b), "\r\n"))
	if len(p) == 0 {
		return nil, fmt.Errorf("passphrase file %s is empty", path)
	}
	return p, nil
}
