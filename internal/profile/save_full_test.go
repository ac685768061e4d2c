//go:build linux

package profile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The helper process for TestFullDiskSave: it loads the config at
// JWKCTL_TEST_FULL_SAVE, adds profiles until the file would be several
// kilobytes, limits the size of any file it writes below that (EFBIG
// part-way through the write, as a full disk gives ENOSPC) and saves. It
// prints Save's error.
func TestFullDiskSaveHelper(t *testing.T) {
	path := os.Getenv("JWKCTL_TEST_FULL_SAVE")
	if path == "" {
		t.Skip("helper process for TestFullDiskSave")
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		p := &Profile{Issuer: "https://helseid-sts.test.nhn.no", ClientID: fmt.Sprintf("client-%d", i), Key: fmt.Sprintf("file:keys/client-%d.json", i), Scopes: []string{"nhn:cp-api/access-v2-dpop"}}
		if err := f.Set(fmt.Sprintf("extra-%d", i), p); err != nil {
			t.Fatal(err)
		}
	}
	// Go ignores SIGXFSZ, so the write returns EFBIG instead.
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 1024, Max: 1024}); err != nil {
		t.Skip("no file size limit:", err)
	}
	err = f.Save(path)
	os.Stdout.WriteString("saved\nerr=" + strings.ReplaceAll(fmt.Sprint(err), "\n", " ") + "\n")
}

// A config save that fails part-way (a full disk) returns an error and
// leaves the config file exactly as it was, with no temp file beside it.
func TestFullDiskSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	before := "# the operator's comment\ndefault: prod\nprofiles:\n  prod:\n    issuer: https://helseid-sts.nhn.no\n    client_id: c-1\n    key: file:keys/client.json\n"
	if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFullDiskSaveHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "JWKCTL_TEST_FULL_SAVE="+path)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "saved\n") {
		t.Skipf("the helper did not save (%s)", out)
	}
	_, werr, _ := strings.Cut(string(out), "err=")
	werr, _, _ = strings.Cut(werr, "\n")
	if werr == "<nil>" || !strings.Contains(werr, "file too large") {
		t.Errorf("a save past the size limit answered %q, want the write's error", werr)
	}
	after, err := os.ReadFile(path)
	if err != nil || string(after) != before {
		t.Errorf("the config after a failed save: %q, %v; want it unchanged", after, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files beside the config after a failed save: %v", names)
	}
}
