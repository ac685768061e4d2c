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
// its owner only; an empty one is refused.
func ReadPassphraseFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read passphrase file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: passphrase file %s has mode %04o; fix it with: chmod 600 %s", keystore.ErrInsecure, path, fi.Mode().Perm(), path)
	}
	b, err := inputfile.Read(path, inputfile.MaxPassphrase, "a passphrase file")
	if err != nil {
		return nil, err
	}
	p := []byte(strings.TrimRight(string(b), "\r\n"))
	if len(p) == 0 {
		return nil, fmt.Errorf("passphrase file %s is empty", path)
	}
	return p, nil
}
