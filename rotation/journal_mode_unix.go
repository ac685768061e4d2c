//go:build unix

package rotation

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkJournalMode says why a journal file is insecure ("" if it is not):
// group or others may write it, or it is owned by someone other than the
// current user or root. readable reports that group or others may read it.
func checkJournalMode(fi fs.FileInfo) (insecure string, readable bool) {
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 {
		return fmt.Sprintf("it has mode %04o, so others can change which key a retire deletes", perm), false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := os.Getuid(); int(st.Uid) != uid && st.Uid != 0 {
			return fmt.Sprintf("it is owned by uid %d, not by you (uid %d) or root, so its owner can change which key a retire deletes", st.Uid, uid), false
		}
	}
	return "", perm&0o044 != 0
}
