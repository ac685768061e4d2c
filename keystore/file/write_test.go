package file

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jwkctl/jwkctl/keystore"
)

// The helper process for TestKilledWrite: it writes a key whose private
// scalar it prints, and stops for good once the key is in its unnamed or
// temporary file, waiting for the kill.
func TestKilledWriteHelper(t *testing.T) {
	path := os.Getenv("JWKCTL_TEST_KILLED_WRITE")
	if path == "" {
		t.Skip("helper process for TestKilledWrite")
	}
	data, d := helperKey(t)
	afterTempWrite = func() {
		os.Stdout.WriteString("d=" + d + "\n")
		time.Sleep(time.Hour)
	}
	_ = writeNew(path, data)
	t.Fatal("writeNew returned")
}

// helperKey sets up a write helper process (the write path from
// JWKCTL_TEST_NO_UNNAMED) and makes the key file it writes: its bytes and
// the private scalar they hold, which the parent then looks for on disk.
func helperKey(t *testing.T) (data []byte, d string) {
	t.Helper()
	noUnnamed = os.Getenv("JWKCTL_TEST_NO_UNNAMED") == "1"
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	data, err = encode(priv, "ES256", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var jwk struct{ D string }
	if err := json.Unmarshal(data, &jwk); err != nil || len(jwk.D) < 40 {
		t.Fatalf("no private scalar in %d bytes of key file: %v", len(data), err)
	}
	return data, jwk.D
}

// killedWrite runs a writer of a key to dir/k.json, SIGKILLs it when the
// key is written but not yet named, and returns the private scalar (as the
// JWK holds it) that it wrote.
func killedWrite(t *testing.T, dir string, unnamed bool) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriteHelper$")
	cmd.Env = append(os.Environ(), "JWKCTL_TEST_KILLED_WRITE="+filepath.Join(dir, "k.json"))
	if !unnamed {
		cmd.Env = append(cmd.Env, "JWKCTL_TEST_NO_UNNAMED=1")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	d, ok := strings.CutPrefix(strings.TrimSpace(line), "d=")
	if err != nil || !ok {
		t.Fatalf("helper: %q, %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	return d
}

// holding returns the files under dir (hidden ones too) whose bytes hold s.
func holding(t *testing.T, dir, s string) []string {
	t.Helper()
	var found []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil && bytes.Contains(b, []byte(s)) {
			found = append(found, e.Name())
		}
	}
	return found
}

// A write killed after the key is on disk but before it has its name
// leaves no file with the key where O_TMPFILE works (Linux).
func TestKilledWriteLeavesNoKey(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("O_TMPFILE is Linux's; other systems take the path TestKilledWriteTempCleaned tests")
	}
	dir := t.TempDir()
	d := killedWrite(t, dir, true)
	if files := holding(t, dir, d); len(files) != 0 {
		t.Fatalf("a killed write left the private key in %v", files)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a killed write left %v", entries)
	}
}

// Without O_TMPFILE a killed write leaves its temporary file: List shows
// it, and the next write in the directory removes it once it is stale (a
// fresh one may be a write in progress and stays).
func TestKilledWriteTempCleaned(t *testing.T) {
	dir := t.TempDir()
	d := killedWrite(t, dir, false)
	left := holding(t, dir, d)
	if len(left) != 1 || !tempRE().MatchString(left[0]) {
		t.Fatalf("files holding the key after the kill: %v, want one temporary file", left)
	}
	tmp := filepath.Join(dir, left[0])

	list := func() map[string]string {
		t.Helper()
		infos, err := Backend{}.List(context.Background(), &keystore.URI{Scheme: keystore.SchemeFile, Path: dir}, keystore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, in := range infos {
			m[filepath.Base(in.URI.Path)] = in.State
		}
		return m
	}
	if got := list()[left[0]]; got != "temp-file" {
		t.Errorf("keys list shows the fresh temporary file as %q, want temp-file (all: %v)", got, list())
	}
	noUnnamed = true
	defer func() { noUnnamed = false }()
	if err := writeNew(filepath.Join(dir, "a.json"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("a fresh temporary file was removed: %v", err)
	}

	old := time.Now().Add(-2 * staleAfter)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if got := list()[left[0]]; got != "stale-temp-file" {
		t.Errorf("keys list shows the stale temporary file as %q, want stale-temp-file", got)
	}
	if err := writeNew(filepath.Join(dir, "b.json"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if files := holding(t, dir, d); len(files) != 0 {
		t.Errorf("after the next write the killed key is still in %v", files)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.json")); err != nil {
		t.Errorf("the cleanup took a key file: %v", err)
	}
}

// Files that merely look like ours stay: the cleanup takes only our name
// pattern, and only regular files.
func TestStaleCleanupTakesOnlyOurs(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * staleAfter)
	keep := []string{".jwkctl-12x.tmp", "jwkctl-1.tmp", ".jwkctl-1.tmp.bak", ".other-1.tmp", "k.json"}
	for _, n := range keep {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	if err := os.Mkdir(filepath.Join(dir, ".jwkctl-2.tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, ".jwkctl-2.tmp")
	if err := writeNew(filepath.Join(dir, "new.json"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	for _, n := range keep {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s removed: %v", n, err)
		}
	}
}
