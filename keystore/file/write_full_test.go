//go:build linux

package file

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The helper process for TestFullDiskWrite: with a file size limit far
// below a key's size (EFBIG, as a full disk gives ENOSPC, part-way through
// the write), it writes a key and prints its private scalar and the error.
func TestFullDiskWriteHelper(t *testing.T) {
	path := os.Getenv("JWKCTL_TEST_FULL_WRITE")
	if path == "" {
		t.Skip("helper process for TestFullDiskWrite")
	}
	data, d := helperKey(t)
	// Go ignores SIGXFSZ, so the write returns EFBIG instead.
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 64, Max: 64}); err != nil {
		t.Skip("no file size limit:", err)
	}
	err := writeNew(path, data)
	os.Stdout.WriteString("d=" + d + "\nerr=" + strings.ReplaceAll(errString(err), "\n", " ") + "\n")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A write that fails part-way (a full disk) returns an error and leaves
// neither the key's name nor any file with the key material, on both
// write paths.
func TestFullDiskWrite(t *testing.T) {
	for _, unnamed := range []bool{true, false} {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestFullDiskWriteHelper$")
		cmd.Env = append(os.Environ(), "JWKCTL_TEST_FULL_WRITE="+filepath.Join(dir, "k.json"))
		if !unnamed {
			cmd.Env = append(cmd.Env, "JWKCTL_TEST_NO_UNNAMED=1")
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		var d, werr string
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(l, "d="); ok {
				d = v
			}
			if v, ok := strings.CutPrefix(l, "err="); ok {
				werr = v
			}
		}
		if d == "" {
			t.Skipf("helper did not write (%s)", out)
		}
		if werr == "" {
			t.Errorf("unnamed=%v: a write past the limit succeeded", unnamed)
		}
		if _, err := os.Lstat(filepath.Join(dir, "k.json")); err == nil {
			t.Errorf("unnamed=%v: a failed write left the key's name", unnamed)
		}
		if files := holding(t, dir, d); len(files) != 0 {
			t.Errorf("unnamed=%v: a failed write left the key in %v", unnamed, files)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("unnamed=%v: a failed write left %v", unnamed, entries)
		}
	}
}
