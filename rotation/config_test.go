package rotation_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
	"github.com/jwkctl/jwkctl/rotation"
)

// A --new-key with a pin-value is refused at plan, as profiles refuse
// one: the journal (printed by rotate status -o json) and the config file
// would hold the PIN, and after generate the URI has lost it anyway.
// Nothing is recorded, and the message never holds the PIN.
func TestRotationPlanRefusesPinValue(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	for _, newKey := range []string{
		"pkcs11:token=t;object=new?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=735921",
		"pkcs11:token=t;object=new;PIN-VALUE=735921",
	} {
		_, err := f.runner(nil).Plan(context.Background(), rotation.PlanRequest{NewKey: newKey, Alg: "ES256"})
		if !errors.Is(err, profile.ErrSecret) || !strings.Contains(err.Error(), "pin-source=file:") ||
			!strings.Contains(err.Error(), "pin-source=env:") || strings.Contains(err.Error(), "735921") {
			t.Errorf("plan --new-key %s: %v", newKey, err)
		}
		if _, err := f.journal.Load("prod"); !errors.Is(err, rotation.ErrNoJournal) {
			t.Fatalf("a refused plan left a journal: %v", err)
		}
	}
	// And no journal is ever written with one.
	j := &rotation.Journal{Version: 1, Profile: "prod", Step: rotation.Planned, CurrentKey: f.oldKey,
		NewKey: "pkcs11:token=t;object=new?pin-value=735921"}
	if err := f.journal.Save(j); !errors.Is(err, profile.ErrSecret) || strings.Contains(err.Error(), "735921") {
		t.Fatalf("saving a journal with a pin-value: %v", err)
	}
	if _, err := f.journal.Load("prod"); !errors.Is(err, rotation.ErrNoJournal) {
		t.Fatalf("a journal with a pin-value was written: %v", err)
	}
}

// A journal an older jwkctl wrote with a pin-value is not carried on:
// nothing is generated with it, and the error says to abort.
func TestRotationRefusesOldJournalWithPinValue(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	newKey := "file:" + filepath.Join(t.TempDir(), "new.json")
	if _, err := f.runner(nil).Plan(context.Background(), rotation.PlanRequest{NewKey: newKey}); err != nil {
		t.Fatal(err)
	}
	journals, _ := filepath.Glob(filepath.Join(f.journal.Dir, "prod.*.json"))
	b, _ := os.ReadFile(journals[0])
	// A pkcs11 URI stands in for what an older plan recorded.
	pinned := "pkcs11:token=t;object=new?module-path=/nonexistent.so&pin-value=735921"
	b = regexp.MustCompile(`"new_key": "[^"]*"`).ReplaceAll(b, []byte(`"new_key": "`+pinned+`"`))
	if !strings.Contains(string(b), "735921") {
		t.Fatal("could not plant the pin-value")
	}
	os.WriteFile(journals[0], b, 0o600)
	_, err := f.runner(nil).Run(context.Background(), rotation.Activated, false)
	if !errors.Is(err, profile.ErrSecret) || !strings.Contains(err.Error(), "rotate abort") || strings.Contains(err.Error(), "735921") {
		t.Fatalf("resume of a journal with a pin-value: %v", err)
	}
	if j, err := f.journal.Load("prod"); err != nil || j.Step != rotation.Planned {
		t.Fatalf("journal after the refusal: %v", err)
	}
}

// --overlap 0 is an overlap of zero, not the default: the old key may be
// retired (when asked) right after activation. No overlap given is 72h.
func TestRotationOverlapZero(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	r := f.runner(nil)
	j, err := r.Plan(context.Background(), rotation.PlanRequest{})
	if err != nil || j.Overlap.Duration != rotation.DefaultOverlap {
		t.Fatalf("no overlap given: %v %v", j.Overlap, err)
	}
	r.Abort(context.Background())
	j, err = r.Plan(context.Background(), rotation.PlanRequest{Overlap: 0, OverlapSet: true})
	if err != nil || j.Overlap.Duration != 0 {
		t.Fatalf("overlap 0: %v %v", j.Overlap, err)
	}
	if j, err = r.Run(context.Background(), rotation.Activated, false); err != nil || j.Step != rotation.Activated {
		t.Fatalf("run: %v", err)
	}
	if _, err := keystore.Open(context.Background(), f.oldKey, keystore.Options{}); err != nil {
		t.Fatalf("the old key went without --retire: %v", err)
	}
	if j, err = r.Run(context.Background(), rotation.Retired, false); err != nil || j.Step != rotation.Retired {
		t.Fatalf("retire right after activation with overlap 0: %v", err)
	}
	if _, err := keystore.Open(context.Background(), f.oldKey, keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("old key after retire: %v", err)
	}
}

// A config file reached through a symbolic link: activation writes the
// file the link leads to, so the link stays and the file that others read
// switches (retire would otherwise delete the key that file still names),
// and the file keeps its mode, owner and group.
func TestRotationThroughSymlinkedConfig(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	real := f.config
	gid := os.Getgid()
	if os.Getuid() == 0 {
		gid = 65534 // root:nogroup, read by an agent in that group
		if err := os.Chown(real, 0, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(real, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	r := f.runner(nil)
	r.ConfigPath = link
	if _, err := r.Plan(context.Background(), rotation.PlanRequest{}); err != nil {
		t.Fatal(err)
	}
	j, err := r.Run(context.Background(), rotation.Activated, false)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the config link after activation: %v %v", fi.Mode(), err)
	}
	if got := f.profileKey(t); got != j.NewKey {
		t.Fatalf("the linked-to config names %s, want the new key %s", got, j.NewKey)
	}
	fi, err := os.Stat(real)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %04o, want 0640", fi.Mode().Perm())
	}
	if g := fileGroup(fi); g >= 0 && g != gid {
		t.Errorf("group %d, want %d", g, gid)
	}
}

// readOnlyDir makes dir unwritable, even for root (with chattr +i), or
// skips the test.
func readOnlyDir(t *testing.T, dir string) {
	t.Helper()
	if os.Getuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return
	}
	chattr, err := exec.LookPath("chattr")
	if err != nil {
		t.Skip("running as root without chattr: cannot make a read-only directory")
	}
	if out, err := exec.Command(chattr, "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("running as root and chattr +i fails (%v: %s): cannot make a read-only directory", err, out)
	}
	t.Cleanup(func() { exec.Command(chattr, "-i", dir).Run() })
}

// A config file that activation could not rewrite (its directory is
// read-only) is refused at plan, before a key is generated or uploaded,
// with a message that names the config file and the fix; a planned
// rotation whose config became read-only stops before generate.
func TestRotationConfigInReadOnlyDir(t *testing.T) {
	keyDir := t.TempDir()
	f := newFixture(t, "file:"+filepath.Join(keyDir, "client.json"), jose.ES256, 0, keystore.Options{})
	cdir := t.TempDir()
	b, _ := os.ReadFile(f.config)
	f.config = filepath.Join(cdir, "config.yaml")
	if err := os.WriteFile(f.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	readOnlyDir(t, cdir)
	r := f.runner(nil)
	_, err := r.Plan(context.Background(), rotation.PlanRequest{})
	if !errors.Is(err, profile.ErrNotWritable) || !strings.Contains(err.Error(), f.config) ||
		!strings.Contains(err.Error(), "chmod u+w "+cdir) || strings.Contains(err.Error(), ".config-") {
		t.Fatalf("plan with a read-only config directory: %v", err)
	}
	if _, err := f.journal.Load("prod"); !errors.Is(err, rotation.ErrNoJournal) {
		t.Fatalf("a journal was recorded: %v", err)
	}
	if entries, _ := os.ReadDir(keyDir); len(entries) != 1 {
		t.Fatalf("%d key files, want only the old one", len(entries))
	}
	if n := f.sts.SelvbetjeningUploads(); n != 0 {
		t.Fatalf("%d uploads", n)
	}

	// Planned while writable, made read-only before the run.
	g := newFixture(t, "file:"+filepath.Join(t.TempDir(), "keys", "client.json"), jose.ES256, 0, keystore.Options{})
	g.journal.Dir = filepath.Join(t.TempDir(), "journal")
	if _, err := g.runner(nil).Plan(context.Background(), rotation.PlanRequest{}); err != nil {
		t.Fatal(err)
	}
	readOnlyDir(t, filepath.Dir(g.config))
	j, err := g.runner(nil).Run(context.Background(), rotation.Activated, false)
	if !errors.Is(err, profile.ErrNotWritable) || j.Step != rotation.Planned {
		t.Fatalf("run with a read-only config directory: %v", err)
	}
	if _, err := keystore.Open(context.Background(), j.NewKey, keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("the new key was generated: %v", err)
	}
}

// Two rotations of different clients in one config file: each activation
// reads the file under the config file's lock, so a change another one
// saved in the meantime stays.
func TestRotationActivationKeepsOtherProfilesChange(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	pf, err := profile.Load(f.config)
	if err != nil {
		t.Fatal(err)
	}
	pf.Set("other", &profile.Profile{Issuer: f.sts.Issuer(), ClientID: "other-client", Key: "file:" + filepath.Join(t.TempDir(), "other.json")})
	if err := pf.Save(f.config); err != nil {
		t.Fatal(err)
	}
	switchOther := func(key string) {
		t.Helper()
		pf, err := profile.Load(f.config)
		if err != nil {
			t.Fatal(err)
		}
		pf.Profiles["other"].Key = key
		if err := pf.Save(f.config); err != nil {
			t.Fatal(err)
		}
	}
	otherKey := func() string {
		pf, _ := profile.Load(f.config)
		return pf.Profiles["other"].Key
	}
	// The other rotation saves while this one is about to activate.
	second := "file://" + filepath.Join(t.TempDir(), "other-2.json")
	r := f.runner(func(s rotation.Step, after bool) error {
		if s == rotation.Activated && !after {
			switchOther(second)
		}
		return nil
	})
	if _, err := r.Plan(context.Background(), rotation.PlanRequest{}); err != nil {
		t.Fatal(err)
	}
	j, err := r.Run(context.Background(), rotation.Activated, false)
	if err != nil {
		t.Fatal(err)
	}
	if f.profileKey(t) != j.NewKey || otherKey() != second {
		t.Fatalf("after activation: prod %s (want %s), other %s (want %s)", f.profileKey(t), j.NewKey, otherKey(), second)
	}

	// While another process holds the config file's lock, activation waits,
	// then reads what that process saved.
	r = f.runner(nil)
	r.Abort(context.Background())
	if _, err := r.Plan(context.Background(), rotation.PlanRequest{NewKey: "file:" + filepath.Join(t.TempDir(), "third.json")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background(), rotation.Confirmed, false); err != nil {
		t.Fatal(err)
	}
	unlock, err := profile.Lock(context.Background(), f.config)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), rotation.Activated, false)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		unlock()
		t.Fatalf("activation ran while the config was locked: %v", err)
	default:
	}
	third := "file://" + filepath.Join(t.TempDir(), "other-3.json")
	switchOther(third)
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(f.profileKey(t), "third.json") || otherKey() != third {
		t.Fatalf("after the second activation: prod %s, other %s (want %s)", f.profileKey(t), otherKey(), third)
	}
}

// A PKCS#11 key whose module-path and pin-source=file: are relative to the
// config file keeps them relative through activation (runbook step 6).
func TestRotationKeepsRelativePKCS11Paths(t *testing.T) {
	tok := softhsmtest.Token(t)
	f := newFixture(t, tok.URI("relpaths-current"), jose.ES256, 0, keystore.Options{})
	dir := filepath.Dir(f.config)
	if err := os.WriteFile(filepath.Join(dir, "hsm.pin"), []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	module, err := filepath.Rel(dir, tok.Module)
	if err != nil {
		t.Fatal(err)
	}
	query := "?module-path=" + module + "&pin-source=file:hsm.pin"
	src := "profiles:\n  prod: # the HSM one\n    issuer: " + f.sts.Issuer() + "\n    client_id: " + clientID +
		"\n    key: pkcs11:token=" + tok.Label + ";object=relpaths-current" + query + "\n    dpop: true\n    scopes: [" + devsts.DemoScope + "]\n"
	if err := os.WriteFile(f.config, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	r := f.runner(nil)
	if _, err := r.Plan(context.Background(), rotation.PlanRequest{}); err != nil {
		t.Fatal(err)
	}
	j, err := r.Run(context.Background(), rotation.Activated, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.config)
	obj := keystore.MustParse(j.NewKey).PKCS11.Object
	if !strings.HasPrefix(obj, "relpaths-current-20") {
		t.Fatalf("new object %s", obj)
	}
	// The generated key's URI names its id too.
	newPath, _, _ := strings.Cut(keystore.MustParse(j.NewKey).String(), "?")
	if want := strings.Replace(src, "pkcs11:token="+tok.Label+";object=relpaths-current"+query, newPath+query, 1); string(b) != want {
		t.Errorf("config after activation:\n%s\nwant only the key's object (and id) changed:\n%s", b, want)
	}
	if err := f.tokenWith(t, f.profileKey(t)); err != nil {
		t.Fatalf("token with the profile's new key: %v", err)
	}
}
