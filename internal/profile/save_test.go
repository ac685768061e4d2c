package profile

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A config file reached through a symbolic link is saved into the file
// the link leads to: the link stays a link, and the file everyone else
// reads (through the link or not) gets the change.
func TestSaveThroughSymlink(t *testing.T) {
	real := writeConfig(t, t.TempDir(), "# mine\nprofiles:\n  a:\n    key: file:///keys/old.json # the key\n")
	linkDir := t.TempDir()
	link := filepath.Join(linkDir, "config.yaml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	// And a link to the link, relative.
	link2 := filepath.Join(linkDir, "via.yaml")
	if err := os.Symlink("config.yaml", link2); err != nil {
		t.Fatal(err)
	}
	for i, path := range []string{link, link2} {
		f, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		newKey := "file:///keys/new" + string(rune('0'+i)) + ".json"
		f.Profiles["a"].Key = newKey
		if err := f.Save(path); err != nil {
			t.Fatal(err)
		}
		for _, l := range []string{link, link2} {
			if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("after saving %s, %s is no longer a link: %v %v", path, l, fi.Mode(), err)
			}
		}
		b, _ := os.ReadFile(real)
		if want := "# mine\nprofiles:\n  a:\n    key: " + newKey + " # the key\n"; string(b) != want {
			t.Fatalf("the linked-to file after saving %s:\n%s\nwant\n%s", path, b, want)
		}
		if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v", fi.Mode().Perm())
		}
	}
	for _, d := range []string{filepath.Dir(real), linkDir} {
		if left, _ := filepath.Glob(filepath.Join(d, ".config-*")); len(left) != 0 {
			t.Errorf("temp files left behind: %v", left)
		}
	}
	// A link to a file still to be made: the file is made where it points.
	dangling := filepath.Join(linkDir, "new.yaml")
	target := filepath.Join(t.TempDir(), "made.yaml")
	if err := os.Symlink(target, dangling); err != nil {
		t.Fatal(err)
	}
	f := &File{}
	f.Set("b", &Profile{Issuer: "https://x"})
	if err := f.Save(dangling); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(dangling); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the dangling link was replaced: %v", err)
	}
	if g, err := Load(target); err != nil || g.Profiles["b"] == nil {
		t.Fatalf("the linked-to file: %v", err)
	}
}

// readOnlyDir makes dir unwritable, even for root (with chattr +i), or
// skips the test.
func readOnlyDir(t *testing.T, dir string) {
	t.Helper()
	if os.Getuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return
	}
	chattr, err := exec.LookPath("chattr")
	if err != nil {
		t.Skip("running as root without chattr: cannot make a read-only directory")
	}
	if out, err := exec.Command(chattr, "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("running as root and chattr +i fails (%v: %s): cannot make a read-only directory", err, out)
	}
	t.Cleanup(func() { exec.Command(chattr, "-i", dir).Run() })
}

// A config file in a directory that cannot take the temp file: the check
// and Save name the config file and what to fix, never the temp file.
func TestCheckConfigWritable(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "profiles:\n  a:\n    key: file:///keys/old.json\n")
	if err := CheckWritable(path); err != nil {
		t.Fatalf("writable: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".config-*")); len(left) != 0 {
		t.Errorf("the check left %v", left)
	}
	// Through a link, the linked-to file's directory counts.
	linkDir := t.TempDir()
	link := filepath.Join(linkDir, "config.yaml")
	os.Symlink(path, link)
	f, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	readOnlyDir(t, dir)
	for _, p := range []string{path, link} {
		err := CheckWritable(p)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if !errors.Is(err, ErrNotWritable) || !strings.Contains(msg, p+" is saved by") || !strings.Contains(msg, "chmod u+w "+dir) || strings.Contains(msg, ".config-") {
			t.Errorf("CheckWritable(%s) = %v", p, err)
		}
	}
	if err := CheckWritable(link); err == nil || !strings.Contains(err.Error(), "links to") {
		t.Errorf("through a link: %v", err)
	}
	if _, err := Lock(t.Context(), link); !errors.Is(err, ErrNotWritable) || !strings.Contains(err.Error(), link) {
		t.Errorf("Lock with a read-only directory: %v", err)
	}
	f.Profiles["a"].Key = "file:///keys/new.json"
	err = f.Save(link)
	if !errors.Is(err, ErrNotWritable) || !strings.Contains(err.Error(), link) || strings.Contains(err.Error(), ".config-") {
		t.Errorf("Save into a read-only directory: %v", err)
	}
	// The link's own directory is writable, and stays untouched.
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link: %v", err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "old.json") {
		t.Errorf("the config changed: %s", b)
	}
}

// A rotated PKCS#11 key keeps the relative pin-source=file: and
// module-path of the key it replaces relative to the config file, as a
// file key keeps its relative path.
func TestSaveKeepsPKCS11PathsRelative(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, `profiles:
  a:
    key: pkcs11:token=t;object=k?module-path=lib/softhsm2.so&pin-source=file:hsm.pin
  b:
    key: pkcs11:token=t;object=k?module-path=./libsofthsm2.so&pin-source=file:./pins/hsm.pin # b
  c:
    key: pkcs11:token=t;object=k?module-path=../lib/softhsm2.so&pin-source=file:../hsm.pin
  d:
    key: pkcs11:token=t;object=k?module-path=lib/softhsm2.so&pin-source=file:hsm.pin
  e:
    key: pkcs11:token=t;object=k?module-path=libsofthsm2.so&pin-source=env:PIN
`)
	t.Chdir(t.TempDir())
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// What rotation does: the same URI, resolved, with another object.
	for _, name := range []string{"a", "b", "c", "e"} {
		f.Profiles[name].Key = strings.Replace(f.Profiles[name].Key, "object=k?", "object=k-20270101-000000?", 1)
	}
	// Moved elsewhere: absolute stays absolute.
	f.Profiles["d"].Key = "pkcs11:token=t;object=k2?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/jwkctl/hsm.pin"
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := `profiles:
  a:
    key: pkcs11:token=t;object=k-20270101-000000?module-path=lib/softhsm2.so&pin-source=file:hsm.pin
  b:
    key: pkcs11:token=t;object=k-20270101-000000?module-path=./libsofthsm2.so&pin-source=file:./pins/hsm.pin # b
  c:
    key: pkcs11:token=t;object=k-20270101-000000?module-path=../lib/softhsm2.so&pin-source=file:../hsm.pin
  d:
    key: pkcs11:token=t;object=k2?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/jwkctl/hsm.pin
  e:
    key: pkcs11:token=t;object=k-20270101-000000?module-path=libsofthsm2.so&pin-source=env:PIN
`
	if string(b) != want {
		t.Errorf("saved:\n%s\nwant:\n%s", b, want)
	}
	again, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range f.Profiles {
		if again.Profiles[name].Key != p.Key {
			t.Errorf("%s after a round trip: %s, want %s", name, again.Profiles[name].Key, p.Key)
		}
	}
}

// Lock keeps a second locker (through any name of the file) waiting until
// the first unlocks.
func TestLockConfig(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "profiles: {}\n")
	link := filepath.Join(t.TempDir(), "link.yaml")
	os.Symlink(path, link)
	unlock, err := Lock(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Bool
	done := make(chan error)
	go func() {
		u, err := Lock(t.Context(), link)
		if err == nil {
			got.Store(true)
			u()
		}
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if got.Load() {
		t.Fatal("a second Lock through a link got the lock while it was held")
	}
	unlock()
	unlock() // twice is harmless
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".config.yaml.lock")); err != nil {
		t.Errorf("lock file: %v", err)
	}
	// Waiting ends with the context.
	unlock, _ = Lock(t.Context(), path)
	defer unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), path) {
		t.Errorf("Lock with an ending context: %v", err)
	}
}
