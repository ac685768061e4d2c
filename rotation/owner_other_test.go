//go:build !unix

package rotation_test

import "io/fs"

// fileGroup has no group to tell on this platform.
func fileGroup(fs.FileInfo) int { return -1 }
