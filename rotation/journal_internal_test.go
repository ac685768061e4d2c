package rotation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/signer"
)

// flockPlatform: the lock is a flock(2), released by the kernel when its
// holder dies (lock_flock.go); elsewhere an O_EXCL file (lock_other.go).
func flockPlatform() bool {
	switch runtime.GOOS {
	case "linux", "android", "darwin", "ios", "freebsd", "netbsd", "openbsd", "dragonfly", "illumos":
		return true
	}
	return false
}

func TestRotationLockExclusive(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	unlock, err := s.Lock("p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock("p"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "locked by pid ") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock() // a second call does nothing
	unlock, err = s.Lock("p")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock()
}

// Two rotations racing for a lock file left by a process that is gone must
// not both get it (before flock, the stale-lock takeover let both through:
// B removed the lock A had just made).
func TestRotationLockRaceOnStaleLock(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name string
		path string
		lock func() (func(), error)
	}{
		{"profile", s.lockPath("p"), func() (func(), error) { return s.Lock("p") }},
		{"client", s.clientLockPath("https://sts.example", "c"), func() (func(), error) { return s.LockClient("https://sts.example", "c") }},
	} {
		for round := range 300 {
			if err := os.WriteFile(tc.path, []byte("999999999@"+host+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var (
				wg      sync.WaitGroup
				start   = make(chan struct{})
				unlocks [2]func()
				errs    [2]error
			)
			for i := range 2 {
				wg.Go(func() {
					<-start
					unlocks[i], errs[i] = tc.lock()
				})
			}
			close(start)
			wg.Wait()
			won := 0
			for i := range 2 {
				if errs[i] == nil {
					won++
				} else if !errors.Is(errs[i], ErrLocked) {
					t.Fatalf("%s lock, round %d: %v", tc.name, round, errs[i])
				}
			}
			if won > 1 {
				t.Fatalf("%s lock, round %d: both rotations took the lock", tc.name, round)
			}
			if won == 0 && flockPlatform() {
				t.Fatalf("%s lock, round %d: a dead process's lock kept both out: %v", tc.name, round, errs)
			}
			for _, u := range unlocks {
				if u != nil {
					u()
				}
			}
		}
	}
}

// testJournal is a complete journal of profile at step: every field that
// step needs is there.
func testJournal(profile string, step Step) *Journal {
	j := &Journal{Version: 1, Profile: profile, ClientID: "client of " + profile, Issuer: "https://sts.example",
		Endpoint: "https://sts.example/v1/client-secret", Step: step, CurrentKey: "file:///keys/old.json", CurrentKid: "old-kid",
		NewKey: "file:///keys/new.json", Alg: "ES256", Overlap: Duration{DefaultOverlap}}
	if step.Done(Generated) {
		jwk, err := signer.PublicJWK(&testECKey.PublicKey, jose.ES256)
		if err != nil {
			panic(err)
		}
		j.NewKid = jwk.KeyID
		j.NewPublicJWK, _ = json.Marshal(jwk)
	}
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	if step.Done(Activated) {
		j.ActivatedAt = &at
	}
	if step.Done(Retired) {
		j.RetireStartedAt, j.RetiredAt = &at, &at
	}
	return j
}

var testECKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

func listedProfiles(t *testing.T, s Store) []string {
	t.Helper()
	js, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range js {
		names = append(names, j.Profile)
	}
	return names
}

// Every profile has its own journal and lock, whatever its name: "a b" and
// "a_b" (the same under the old names), case, dots, long names.
func TestRotationJournalPerProfile(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	names := []string{"a b", "a_b", "a/b", "a\\b", "a.b", ".x", "_x", "..", ".", "prod", "Prod", "ä", "_", "@client", strings.Repeat("long-", 80)}
	for _, n := range names {
		if err := s.Save(testJournal(n, Generated)); err != nil {
			t.Fatalf("save %q: %v", n, err)
		}
	}
	for _, n := range names {
		j, err := s.Load(n)
		if err != nil || j.Profile != n || j.ClientID != "client of "+n {
			t.Fatalf("load %q: %v %+v", n, err, j)
		}
	}
	if got := listedProfiles(t, s); len(got) != len(names) {
		t.Fatalf("List: %q, want all of %q", got, names)
	}
	entries, _ := os.ReadDir(s.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || len(e.Name()) > 100 {
			t.Errorf("journal file name %q", e.Name())
		}
	}
	var unlocks []func()
	for _, n := range names {
		u, err := s.Lock(n)
		if err != nil {
			t.Fatalf("lock %q while the others are held: %v", n, err)
		}
		unlocks = append(unlocks, u)
	}
	for _, u := range unlocks {
		u()
	}
	if err := s.Remove("a b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("a b"); !errors.Is(err, ErrNoJournal) {
		t.Fatalf("load after remove: %v", err)
	}
	if j, err := s.Load("a_b"); err != nil || j.Profile != "a_b" {
		t.Fatalf("removing a b touched a_b: %v", err)
	}
	if _, err := s.Load(""); err == nil {
		t.Fatal("a journal for no profile")
	}
}

// A journal file that records another profile is never taken for this
// profile's.
func TestRotationJournalLoadChecksProfile(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if err := s.Save(testJournal("a", Confirmed)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(s.path("a"))
	if err := os.WriteFile(s.path("b"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := s.Load("b")
	if !errors.Is(err, ErrOtherProfile) || !strings.Contains(err.Error(), `profile "a", not "b"`) {
		t.Fatalf("load b from a's journal: %v %+v", err, j)
	}
}

// A journal written under the old name ("a_b.json", shared by "a b" and
// "a_b") is still found for its own profile, only for it, and moves to
// the new name at the next save.
func TestRotationJournalLegacyName(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeOld := func(name string, j *Journal) string {
		t.Helper()
		b, _ := json.Marshal(j)
		p := filepath.Join(s.Dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := writeOld("a_b.json", testJournal("a b", Uploaded))
	writeOld(".x.json", testJournal(".x", Planned))
	j, err := s.Load("a b")
	if err != nil || j.Step != Uploaded {
		t.Fatalf("load a b from its old journal name: %v %+v", err, j)
	}
	if j, err := s.Load("a_b"); !errors.Is(err, ErrNoJournal) {
		t.Fatalf("a_b got a b's journal: %v %+v", err, j)
	}
	if got := listedProfiles(t, s); len(got) != 2 {
		t.Fatalf("List: %q, want a b and .x", got)
	}
	j.Step = Confirmed
	if err := s.Save(j); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old journal after save: %v", err)
	}
	if j, err := s.Load("a b"); err != nil || j.Step != Confirmed {
		t.Fatalf("load after migration: %v %+v", err, j)
	}
	// A crash between the new journal's rename and the old one's removal
	// leaves both: the new one wins, List shows the profile once.
	writeOld("a_b.json", testJournal("a b", Uploaded))
	if j, err := s.Load("a b"); err != nil || j.Step != Confirmed {
		t.Fatalf("load with both names present: %v %+v", err, j)
	}
	if got := listedProfiles(t, s); len(got) != 2 {
		t.Fatalf("List with both names present: %q", got)
	}
	if err := s.Remove("a b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("a b"); !errors.Is(err, ErrNoJournal) {
		t.Fatalf("load after remove: %v", err)
	}
	// Another profile's old journal is not removed with this one's.
	writeOld("a_b.json", testJournal("a b", Uploaded))
	if err := s.Remove("a_b"); err != nil {
		t.Fatal(err)
	}
	if j, err := s.Load("a b"); err != nil || j.Step != Uploaded {
		t.Fatalf("removing a_b removed a b's old journal: %v", err)
	}
}

// A journal file that is no rotation's record is damaged, never "another
// profile's" nor a rotation to restart: empty, null, an unknown step, a
// field its step needs missing. The error names the file and how to
// recover, and nothing is carried out.
func TestRotationJournalStrict(t *testing.T) {
	complete := func(step Step, edit func(m map[string]any)) string {
		b, _ := json.Marshal(testJournal("prod", step))
		var m map[string]any
		json.Unmarshal(b, &m)
		edit(m)
		b, _ = json.Marshal(m)
		return string(b)
	}
	for _, tc := range []struct {
		name, content, want string
	}{
		{"empty object", "{}", "records no rotation"},
		{"null", "null", "records no rotation"},
		{"empty file", "", "not JSON"},
		{"not an object", `["planned"]`, "not JSON"},
		{"unknown step", complete(Planned, func(m map[string]any) { m["step"] = "bogus" }), `unknown step "bogus"`},
		{"no step", complete(Planned, func(m map[string]any) { delete(m, "step") }), "step"},
		{"newer version", complete(Planned, func(m map[string]any) { m["version"] = 2 }), "version 2"},
		{"no current key", complete(Planned, func(m map[string]any) { delete(m, "current_key") }), "current_key"},
		{"no client", complete(Uploaded, func(m map[string]any) { delete(m, "client_id"); delete(m, "issuer") }), "client_id, issuer"},
		{"generated without its kid", complete(Generated, func(m map[string]any) { delete(m, "new_kid") }), "new_kid"},
		{"self-tested without its JWK", complete(SelfTested, func(m map[string]any) { delete(m, "new_public_jwk") }), "new_public_jwk"},
		{"JWK of another kid", complete(Confirmed, func(m map[string]any) { m["new_kid"] = "someone-else" }), "new_public_jwk"},
		{"activated without a time", complete(Activated, func(m map[string]any) { delete(m, "activated_at") }), "activated_at"},
		{"retired without a time", complete(Retired, func(m map[string]any) { delete(m, "retired_at") }), "retired_at"},
		{"unparsable key", complete(Planned, func(m map[string]any) { m["new_key"] = "nonsense:x" }), "new_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Store{Dir: t.TempDir()}
			if err := os.WriteFile(s.path("prod"), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			j, err := s.Load("prod")
			if !errors.Is(err, ErrDamaged) || errors.Is(err, ErrOtherProfile) {
				t.Fatalf("Load: %v %+v, want ErrDamaged", err, j)
			}
			for _, w := range []string{s.path("prod"), tc.want, "jwkctl rotate abort --profile prod", "jwkctl keys expiry --profile prod"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if _, err := s.List(); !errors.Is(err, ErrDamaged) {
				t.Errorf("List: %v, want ErrDamaged", err)
			}
		})
	}
	// The complete journals load, at every step.
	for _, step := range order {
		s := Store{Dir: t.TempDir()}
		if err := s.Save(testJournal("prod", step)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load("prod"); err != nil {
			t.Errorf("complete journal at %s: %v", step, err)
		}
	}
}

// The runbook's state diagram names exactly the journal's steps, in order.
func TestRotationDocsStateDiagramMatchesSteps(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "rotation.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, diagram, ok := strings.Cut(string(b), "```mermaid\nstateDiagram-v2\n")
	if !ok {
		t.Fatal("docs/rotation.md has no stateDiagram-v2")
	}
	diagram, _, _ = strings.Cut(diagram, "```")
	var states []string
	for _, line := range strings.Split(diagram, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), `state "`); ok {
			name, _, _ := strings.Cut(rest, `"`)
			states = append(states, name)
		}
	}
	var want []string
	for _, s := range order {
		want = append(want, string(s))
	}
	if strings.Join(states, " ") != strings.Join(want, " ") {
		t.Fatalf("diagram states %q, want the journal's steps %q", states, want)
	}
}
