package file

import (
	"errors"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// writeUnnamed writes data to an O_TMPFILE file in dir and links it to
// path. It returns errNoUnnamed, having created nothing, where the file
// system has no O_TMPFILE (EOPNOTSUPP; EISDIR from kernels before 3.11)
// or cannot link it (no /proc to link it by, no hard links).
func writeUnnamed(dir, path string, data []byte) error {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return errNoUnnamed
		}
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	// linkat through /proc needs the descriptor open; writeSync closes
	// it, so link from a duplicate held until after the link.
	dup, err := unix.Dup(fd)
	if err != nil {
		f.Close()
		return &fs.PathError{Op: "dup", Path: path, Err: err}
	}
	defer unix.Close(dup)
	if err := writeSync(f, data); err != nil {
		return err
	}
	// AT_SYMLINK_FOLLOW makes linkat link the file the /proc entry stands
	// for. Unlike rename, linkat never replaces an existing name.
	err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(dup), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT):
		if _, serr := os.Stat("/proc/self/fd"); serr != nil {
			return errNoUnnamed // no /proc: the file goes with dup
		}
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP):
		return errNoUnnamed // no hard links here: the file goes with dup
	}
	return &os.LinkError{Op: "link", Old: "(unnamed file)", New: path, Err: err}
}
