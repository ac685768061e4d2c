//go:build linux

package commands

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair, so a test can be the user at a
// terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skip("no pseudo-terminals here:", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skip("cannot unlock the pseudo-terminal:", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skip("no pseudo-terminal number:", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skip("cannot open the pseudo-terminal:", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// On a terminal, init asks before it deletes the download, and says that
// deleting is no secure erase; only a yes deletes it.
func TestInitAsksToDeleteTheDownloadOnATerminal(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for answer, deleted := range map[string]bool{"yes": true, "y": true, "n": false, "": false} {
		t.Run("answer "+answer, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "config.yaml"))
			from := filepath.Join(dir, "download.json")
			doc := handDownload("https://helseid-sts.test.nhn.no", uuidLike(t), jsonString(handECJWK(t, k, "x")))
			os.WriteFile(from, []byte(doc), 0o600)
			master, slave := openPTY(t)
			if _, err := master.Write([]byte(answer + "\n")); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			app := App()
			app.Reader, app.Writer, app.ErrWriter = slave, &out, &errb
			if code := Main(app, []string{"jwkctl", "init", "--from", from}); code != 0 {
				t.Fatalf("init: %s", errb.String())
			}
			if !strings.Contains(errb.String(), "holds the private key. Delete it now?") || !strings.Contains(errb.String(), "no secure erase") {
				t.Errorf("no question, or no word on secure erase:\n%s", errb.String())
			}
			_, err := os.Stat(from)
			if gone := os.IsNotExist(err); gone != deleted {
				t.Errorf("answer %q: download deleted %v, want %v", answer, gone, deleted)
			}
			// --keep-download does not ask.
			errb.Reset()
			os.WriteFile(from, []byte(doc), 0o600)
			app = App()
			app.Reader, app.Writer, app.ErrWriter = slave, &out, &errb
			if code := Main(app, []string{"jwkctl", "init", "--from", from, "--keep-download"}); code != 0 || strings.Contains(errb.String(), "Delete it now?") {
				t.Errorf("--keep-download: %d %s", code, errb.String())
			}
			if _, err := os.Stat(from); err != nil {
				t.Errorf("--keep-download: %v", err)
			}
		})
	}
}
