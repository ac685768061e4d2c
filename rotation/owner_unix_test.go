//go:build unix

package rotation_test

import (
	"io/fs"
	"syscall"
)

// fileGroup is the file's group id, or -1 where there is none.
func fileGroup(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Gid)
	}
	return -1
}
