//go:build unix

package rotation

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// A journal others can write is refused, as a config file is: whoever
// can change it can point a retire at another key. One others can read
// is carried on, with a warning naming the file and the fix.
func TestRotationJournalMode(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if err := s.Save(testJournal("prod", Activated)); err != nil {
		t.Fatal(err)
	}
	p := s.path("prod")
	for _, mode := range []os.FileMode{0o666, 0o620, 0o602} {
		os.Chmod(p, mode)
		_, err := s.Load("prod")
		if !errors.Is(err, ErrInsecureJournal) {
			t.Fatalf("mode %04o: %v, want ErrInsecureJournal", mode, err)
		}
		for _, w := range []string{p, "chmod 600 " + p, "jwkctl rotate abort --profile prod"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("mode %04o: error lacks %q: %v", mode, w, err)
			}
		}
		if _, err := s.List(); !errors.Is(err, ErrInsecureJournal) {
			t.Errorf("List with mode %04o: %v", mode, err)
		}
	}
	var logged bytes.Buffer
	s.Log = slog.New(slog.NewTextHandler(&logged, nil))
	os.Chmod(p, 0o644)
	if j, err := s.Load("prod"); err != nil || j.Step != Activated {
		t.Fatalf("mode 0644: %v", err)
	}
	if !strings.Contains(logged.String(), p) || !strings.Contains(logged.String(), "chmod 600") {
		t.Fatalf("no warning for a journal others can read: %q", logged.String())
	}
	// The next save writes it 0600 again.
	j, _ := s.Load("prod")
	if err := s.Save(j); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after save: %04o", fi.Mode().Perm())
	}
}
