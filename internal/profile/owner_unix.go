//go:build unix

package profile

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwner refuses a config file owned by someone other than the
// current user or root: its owner could change its issuers and key URIs.
func checkOwner(fi fs.FileInfo, path string) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Getuid(); int(st.Uid) != uid && st.Uid != 0 {
		return fmt.Errorf("%w: %s is owned by uid %d, not by you (uid %d) or root, so its owner can change its issuers and key URIs; use a copy you own, or have root own it (sudo chown root %s)",
			ErrInsecure, path, st.Uid, uid, shellQuote(path))
	}
	return nil
}
