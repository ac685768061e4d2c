//go:build unix

package profile

import (
	"os"
	"syscall"
	"testing"
)

// Save keeps the config file's owner and group (and its mode): a 0640
// root:nogroup config that an agent reads through its group stays so.
func TestSaveKeepsOwnerAndGroup(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "profiles:\n  a:\n    key: file:///keys/old.json\n")
	uid, gid := os.Getuid(), -1
	if uid == 0 {
		gid = 65534 // nogroup
	} else {
		groups, _ := os.Getgroups()
		for _, g := range groups {
			if g != os.Getegid() {
				gid = g
				break
			}
		}
		if gid < 0 {
			t.Skip("not root, and in no group but the primary one: cannot give the file another group")
		}
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Profiles["a"].Key = "file:///keys/new.json"
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != 0o640 {
		t.Errorf("after Save: %d:%d %04o, want %d:%d 0640", st.Uid, st.Gid, fi.Mode().Perm(), uid, gid)
	}
}
