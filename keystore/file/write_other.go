//go:build !linux

package file

// writeUnnamed always declines here: O_TMPFILE is Linux's.
func writeUnnamed(dir, path string, data []byte) error { return errNoUnnamed }
