package agent_test

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jwkctl/jwkctl/agent"
)

// WriteSecret replaces only an earlier agent secret: never a file with
// other content, never through a symbolic link, never via a fixed
// temporary name.
func TestWriteSecretRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	const keyJSON = `{"kty":"EC","crv":"P-256","d":"private","x":"x","y":"y"}` + "\n"

	victim := filepath.Join(dir, "victim.json")
	if err := os.WriteFile(victim, []byte(keyJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(dir, "README.txt")
	if err := os.WriteFile(readme, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.secret")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	// An agent secret's content, but behind a symbolic link.
	old := filepath.Join(dir, "old.secret")
	if _, err := agent.WriteSecret(old); err != nil {
		t.Fatal(err)
	}
	oldLink := filepath.Join(dir, "oldlink.secret")
	if err := os.Symlink(old, oldLink); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{victim, "not an agent secret"},
		{readme, "not an agent secret"},
		{link, "symbolic link"},
		{oldLink, "symbolic link"},
		{sub, "not a regular file"},
	} {
		_, err := agent.WriteSecret(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) || strings.Contains(err.Error(), "\n") {
			t.Errorf("WriteSecret(%s) = %v, want one line naming it, with %q", filepath.Base(tc.path), err, tc.want)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != keyJSON {
		t.Errorf("the key file was changed (%d bytes now)", len(b))
	}
	if b, _ := os.ReadFile(readme); string(b) != "hello\n" {
		t.Errorf("README.txt was changed (%d bytes now)", len(b))
	}
	if fi, _ := os.Stat(readme); fi.Mode().Perm() != 0o644 {
		t.Errorf("README.txt mode %v", fi.Mode().Perm())
	}
	for _, l := range []string{link, oldLink} {
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symbolic link: %v", l, err)
		}
	}

	// The old fixed temporary name path+".tmp" as a symbolic link to the
	// key: not written through.
	fresh := filepath.Join(dir, "fresh.secret")
	if err := os.Symlink(victim, fresh+".tmp"); err != nil {
		t.Fatal(err)
	}
	secret, err := agent.WriteSecret(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != keyJSON {
		t.Errorf("the key file was written through %s.tmp (%d bytes now)", fresh, len(b))
	}
	if b, _ := os.ReadFile(fresh); string(b) != secret+"\n" || !strings.HasPrefix(secret, agent.SecretPrefix) || !agent.IsSecret(b) {
		t.Errorf("secret file of %d bytes is not the secret (%d chars) and a newline, or lacks the prefix", len(b), len(secret))
	}
	// Leftovers: only the files made here.
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "README.txt fresh.secret fresh.secret.tmp link.secret old.secret oldlink.secret sub victim.json" {
		t.Errorf("directory holds %s", got)
	}
}

// An earlier secret is replaced, in the current format and in the one of
// agents before the prefix (43 base64url characters).
func TestWriteSecretReplacesEarlierSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.secret")
	first, err := agent.WriteSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	second, err := agent.WriteSecret(path)
	if err != nil {
		t.Fatalf("replacing an agent secret: %v", err)
	}
	if first == second {
		t.Fatal("the same secret twice")
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o600 || !fi.Mode().IsRegular() {
		t.Fatalf("secret file: %v %v", fi, err)
	}
	legacy := "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80"
	if err := os.WriteFile(path, []byte(legacy+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.WriteSecret(path); err != nil {
		t.Fatalf("replacing a secret from an agent before the prefix: %v", err)
	}
	for in, want := range map[string]bool{
		legacy: true, legacy + "\n": true, agent.SecretPrefix + legacy + "\n": true,
		legacy + "\n\n": false, legacy + "A": false, legacy[1:]: false, " " + legacy: false,
		agent.SecretPrefix: false, agent.SecretPrefix + legacy[1:] + "+": false, "": false,
		"-----BEGIN PRIVATE KEY-----\n": false,
	} {
		if got := agent.IsSecret([]byte(in)); got != want {
			t.Errorf("IsSecret(%q) = %v", in, got)
		}
	}
}

// A directory without search permission for the socket group makes a
// 0660 socket unreachable for it: CheckSocketGroup names the directory.
func TestCheckSocketGroup(t *testing.T) {
	gid := os.Getegid()
	g, err := user.LookupGroupId(strconv.Itoa(gid))
	if err != nil {
		t.Skip("no name for our group:", err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, -1, gid); err != nil {
		t.Fatal(err)
	}
	sock := "unix:" + filepath.Join(dir, "jwkctl.sock")
	names := func(err error) bool { return err != nil && strings.Contains(err.Error(), "directory "+dir+" (") }
	for mode, blocked := range map[os.FileMode]bool{0o700: true, 0o750: false, 0o701: false, 0o755: false, 0o740: true} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		err := agent.CheckSocketGroup(sock, g.Name)
		if names(err) != blocked {
			t.Errorf("directory mode %04o: %v", mode, err)
		}
		if blocked && !strings.Contains(err.Error(), "members of group "+g.Name) {
			t.Errorf("mode %04o: %v does not name the group", mode, err)
		}
	}
	if err := agent.CheckSocketGroup(sock, ""); err != nil {
		t.Errorf("no group: %v", err)
	}
	if err := agent.CheckSocketGroup("127.0.0.1:8899", g.Name); err != nil {
		t.Errorf("TCP: %v", err)
	}
}
