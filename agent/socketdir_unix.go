//go:build unix

package agent

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// CheckSocketGroup tells whether members of group can reach the socket of
// addr ("unix:/path"): connecting needs search (x) permission on every
// directory above it, and a 0660 socket in a directory only its owner's
// group may enter (RuntimeDirectoryMode=0750, say) is unreachable for
// everyone else. It returns nil when they can — or may, being also in the
// directory's group — and when addr is no socket or group is empty; else
// an error naming the first directory (from the socket up) that stops them.
// It is a cheap warning, not access control: ACLs and supplementary
// groups are not looked at.
func CheckSocketGroup(addr, group string) error {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok || group == "" {
		return nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return fmt.Errorf("--socket-group: %w", err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return nil
	}
	// The directories that count are those of the real path.
	start, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return nil
	}
	if start, err = filepath.Abs(start); err != nil {
		return nil
	}
	for dir := start; ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		mode := fi.Mode().Perm()
		sameGroup := int(st.Gid) == gid
		if mode&0o001 == 0 && !(sameGroup && mode&0o010 != 0) {
			owner := strconv.Itoa(int(st.Uid))
			if u, err := user.LookupId(owner); err == nil {
				owner = u.Username
			}
			dirGroup := strconv.Itoa(int(st.Gid))
			if dg, err := user.LookupGroupId(dirGroup); err == nil {
				dirGroup = dg.Name
			}
			unless := ""
			if !sameGroup && mode&0o010 != 0 {
				unless = fmt.Sprintf(" unless they are also in group %s", dirGroup)
			}
			return fmt.Errorf("members of group %s cannot reach the socket %s%s: the directory %s (%s, %s:%s) is not searchable by them; make it o+x (systemd: RuntimeDirectoryMode=0755; the socket itself stays 0660)",
				group, path, unless, dir, fi.Mode(), owner, dirGroup)
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}
