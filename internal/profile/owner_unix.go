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

// keepOwner gives tmp, the new config file, the owner and group of orig,
// the file it replaces, so that those who could read the config (an agent
// in its group, say) still can. Root may give it both; another user only
// a group it belongs to, and the owner stays that user. What the system
// does not allow is left as it is: the save goes on.
func keepOwner(tmp *os.File, orig fs.FileInfo) {
	st, ok := orig.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	uid, gid := int(st.Uid), int(st.Gid)
	if cur, err := tmp.Stat(); err == nil {
		if ct, ok := cur.Sys().(*syscall.Stat_t); ok && int(ct.Uid) == uid && int(ct.Gid) == gid {
			return
		}
	}
	if tmp.Chown(uid, gid) == nil {
		return
	}
	_ = tmp.Chown(-1, gid)
}

// errReadOnlyFS is the error of a write to a read-only file system.
var errReadOnlyFS error = syscall.EROFS
