package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/jwkctl/jwkctl/internal/lazyre"
)

// afterTempWrite, when set (by tests only), runs once the key is written
// and synced to its unnamed or temporary file and before it gets its name:
// the moment a crash is worst.
var afterTempWrite func()

// noUnnamed, set by tests, makes writeNew use a temporary name as it does
// where there is no O_TMPFILE.
var noUnnamed bool

// writeNew writes data to path with mode 0600, atomically and without ever
// replacing an existing file: the data goes to a file in the same
// directory that has no name yet (Linux O_TMPFILE) or a temporary name, is
// synced, and is then hard-linked to its name. link(2) fails if the name
// exists, so two writers racing for one name cannot both win and a reader
// never sees a half-written key. The error wraps fs.ErrExist when the name
// is taken.
//
// A process killed while writing leaves nothing behind with O_TMPFILE: the
// kernel frees an unnamed file when its last descriptor closes. Where
// there is no O_TMPFILE (other systems, some file systems), a killed write
// leaves a .jwkctl-N.tmp file holding the key; the next write in that
// directory removes such files once they are a minute old, and List shows
// them until then.
func writeNew(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	removeStaleTemps(dir, time.Now())
	if !noUnnamed {
		if err := writeUnnamed(dir, path, data); !errors.Is(err, errNoUnnamed) {
			if err != nil {
				return err
			}
			return syncDir(dir)
		}
	}
	tmp, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := writeSync(tmp, data); err != nil {
		return err
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// Some file systems have no hard links; O_EXCL still never
		// overwrites, at the cost of a window where the file is partial.
		if !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, fs.ErrPermission) {
			return err
		}
		if err := writeExcl(path, data); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// errNoUnnamed says the system or file system cannot make an unnamed
// file; writeNew then uses a temporary name.
var errNoUnnamed = errors.New("file: no unnamed temporary files here")

// writeSync makes f 0600 (whatever the umask), writes data, syncs and
// closes f.
func writeSync(f *os.File, data []byte) error {
	err := f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil && afterTempWrite != nil {
		afterTempWrite()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeExcl(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// tempPattern names the temporary files of writeNew (os.CreateTemp puts
// digits for the *); tempRE matches those names and no others.
const tempPattern = ".jwkctl-*.tmp"

var tempRE = lazyre.New(`^\.jwkctl-[0-9]+\.tmp$`)

// staleAfter is how old a temporary file must be before a later write
// takes it for the leftover of a killed one: a write in progress takes
// milliseconds, and one that has not finished in a minute is not running.
const staleAfter = time.Minute

// isTemp reports whether the directory entry is one of writeNew's
// temporary files, and whether it is stale at now.
func isTemp(e fs.DirEntry, now time.Time) (temp, stale bool) {
	if !e.Type().IsRegular() || !tempRE().MatchString(e.Name()) {
		return false, false
	}
	fi, err := e.Info()
	if err != nil {
		return false, false
	}
	return true, now.Sub(fi.ModTime()) >= staleAfter
}

// removeStaleTemps removes the temporary files a killed writeNew left in
// dir. It is best effort: a file it cannot remove stays listed.
func removeStaleTemps(dir string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if _, stale := isTemp(e, now); stale {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// syncDir makes a new or removed directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("file: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("file: sync %s: %w", dir, err)
	}
	return nil
}
