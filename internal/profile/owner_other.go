//go:build !unix

package profile

import (
	"errors"
	"io/fs"
	"os"
)

// checkOwner has no Unix owner to compare on this platform.
func checkOwner(fs.FileInfo, string) error { return nil }

// keepOwner has no Unix owner and group to keep on this platform.
func keepOwner(*os.File, fs.FileInfo) {}

// errReadOnlyFS: no such error to tell apart on this platform.
var errReadOnlyFS = errors.New("read-only file system")
