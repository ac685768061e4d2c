package commands

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
)

// The rotation runbook from the command line, against the dev STS and its
// fake Selvbetjening API: expiry check, rotate run, status, expiry again.
func TestRotateAndExpiryCLI(t *testing.T) {
	dir := t.TempDir()
	key, pub := testKey(t)
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sts.EnableSelvbetjening()
	if err := sts.RegisterClient("rot-client", []jose.JSONWebKey{pub}, []string{devsts.DemoScope, devsts.SelvbetjeningScope}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	f.Set("prod", &profile.Profile{Issuer: sts.Issuer(), ClientID: "rot-client", Key: key, DPoP: new(true), Scopes: []string{devsts.DemoScope}})
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JWKCTL_CONFIG", cfg)
	t.Setenv("JWKCTL_JOURNAL_DIR", filepath.Join(dir, "journal"))

	// The fake registers the uploaded-at-start key with no recorded
	// expiry, so it reports a year from now.
	out, errOut, code := runCLI(t, "keys", "expiry", "--profile", "prod")
	if code != 0 || !strings.HasPrefix(out, "OK: the current key expires in") {
		t.Fatalf("expiry: %d %s %s", code, out, errOut)
	}
	_, _, code = runCLI(t, "keys", "expiry", "--profile", "prod", "--warn", "400d")
	if code != 1 {
		t.Fatalf("--warn 400d: exit %d, want 1", code)
	}
	out, _, code = runCLI(t, "keys", "expiry", "--profile", "prod", "--warn", "400d", "--critical", "380d")
	if code != 2 || !strings.HasPrefix(out, "CRITICAL") {
		t.Fatalf("--critical 380d: exit %d %s", code, out)
	}

	out, errOut, code = runCLI(t, "rotate", "run", "--profile", "prod", "--overlap", "1h")
	if code != 0 {
		t.Fatalf("rotate run: %s", errOut)
	}
	if !strings.Contains(out, "step              activated") && !strings.Contains(out, "activated") {
		t.Fatalf("rotate run output:\n%s", out)
	}
	out, _, code = runCLI(t, "rotate", "status", "--profile", "prod", "-o", "json")
	if code != 0 || !strings.Contains(out, `"step": "activated"`) {
		t.Fatalf("status: %s", out)
	}
	pf, _ := profile.Load(cfg)
	if pf.Profiles["prod"].Key == key {
		t.Fatal("the profile still uses the old key")
	}
	// The new key is the current one now, and registered.
	out, _, code = runCLI(t, "keys", "expiry", "--profile", "prod")
	if code != 0 || strings.Count(out, "*") != 1 || !strings.Contains(out, time.Now().AddDate(1, 0, 0).Format("2006-01")) {
		t.Fatalf("expiry after rotation: %d\n%s", code, out)
	}
	// Inside the overlap nothing is asked: it says until when the old key
	// stays. (Past it, retiring needs confirmation: see --force-retire below.)
	_, errOut, code = runCLI(t, "rotate", "resume", "--profile", "prod", "--retire")
	if code != 0 || !strings.Contains(errOut, "the old key stays until") || strings.Contains(errOut, "confirmation") {
		t.Fatalf("retire inside the overlap without --yes: %d %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "rotate", "resume", "--profile", "prod", "--force-retire")
	if code == 0 || !strings.Contains(errOut, "confirmation") {
		t.Fatalf("force-retire without --yes: %d %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "rotate", "resume", "--profile", "prod", "--retire", "--yes")
	if code != 0 || !strings.Contains(errOut, "overlap") {
		t.Fatalf("retire inside the overlap: %d %s", code, errOut)
	}
	// A file key can only be deleted; a mistyped mode is a usage error.
	_, errOut, code = runCLI(t, "rotate", "resume", "--profile", "prod", "--retire", "--retire-by", "disable", "--yes")
	if code != 1 || !strings.Contains(errOut, "file keys cannot be disabled, only deleted") {
		t.Fatalf("retire a file key by disabling: %d %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "rotate", "resume", "--profile", "prod", "--retire", "--retire-by", "shred", "--yes")
	if code != ExitUsage || !strings.Contains(errOut, "--retire-by must be delete or disable") {
		t.Fatalf("--retire-by shred: %d %s", code, errOut)
	}
}

// rotateSetup: a dev STS with the fake Selvbetjening API, a client whose
// key is a new ES256 key file (encrypted when pass is set), and a config
// with profile "prod" for it, named by JWKCTL_CONFIG; journals in a
// temporary JWKCTL_JOURNAL_DIR.
func rotateSetup(t *testing.T, pass []byte) (cfg, key string) {
	t.Helper()
	return rotateSetupScopes(t, pass, devsts.DemoScope, devsts.SelvbetjeningScope)
}

// rotateSetupScopes is rotateSetup with the scopes the dev STS grants the
// client ("prod" in the config, with its key in a file).
func rotateSetupScopes(t *testing.T, pass []byte, granted ...string) (cfg, key string) {
	t.Helper()
	dir := t.TempDir()
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	k, err := keystore.Generate(t.Context(), keystore.GenerateRequest{URI: keystore.MustParse("file:" + filepath.Join(dir, "client.json")), Spec: spec, Options: keystore.Options{Passphrase: pass}})
	if err != nil {
		t.Fatal(err)
	}
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	sts.EnableSelvbetjening()
	if err := sts.RegisterClient("rot-client", []jose.JSONWebKey{{Key: k.Public()}}, granted); err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	f.Set("prod", &profile.Profile{Issuer: sts.Issuer(), ClientID: "rot-client", Key: k.URI().String(), DPoP: new(true), Scopes: []string{devsts.DemoScope}})
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JWKCTL_CONFIG", cfg)
	t.Setenv("JWKCTL_JOURNAL_DIR", filepath.Join(dir, "journal"))
	return cfg, k.URI().String()
}

// A key file encrypted with a passphrase from JWKCTL_PASSPHRASE or
// --passphrase-file rotates like any other, into a key file encrypted with
// the same passphrase; the passphrase is never printed.
func TestRotateEncryptedKeyCLI(t *testing.T) {
	pass := "rotate-me-secretly"
	checkNew := func(t *testing.T, cfg, old, out, errOut string) {
		t.Helper()
		if strings.Contains(out+errOut, pass) {
			t.Fatal("the passphrase was printed")
		}
		pf, _ := profile.Load(cfg)
		newKey := pf.Profiles["prod"].Key
		if newKey == old {
			t.Fatal("the profile still uses the old key")
		}
		if _, err := keystore.Open(t.Context(), newKey, keystore.Options{}); !errors.Is(err, keystore.ErrPassphrase) {
			t.Fatalf("the new key file opens without a passphrase (plaintext?): %v", err)
		}
		if _, err := keystore.Open(t.Context(), newKey, keystore.Options{Passphrase: []byte(pass)}); err != nil {
			t.Fatalf("the new key with the passphrase: %v", err)
		}
	}
	t.Run("JWKCTL_PASSPHRASE", func(t *testing.T) {
		cfg, old := rotateSetup(t, []byte(pass))
		t.Setenv("JWKCTL_PASSPHRASE", pass)
		if _, errOut, code := runCLI(t, "rotate", "plan", "--profile", "prod"); code != 0 {
			t.Fatalf("rotate plan: %d %s", code, errOut)
		}
		out, errOut, code := runCLI(t, "rotate", "run", "--profile", "prod")
		if code != 0 {
			t.Fatalf("rotate run: %d %s", code, errOut)
		}
		checkNew(t, cfg, old, out, errOut)
	})
	t.Run("--passphrase-file", func(t *testing.T) {
		cfg, old := rotateSetup(t, []byte(pass))
		pf := filepath.Join(t.TempDir(), "pass")
		os.WriteFile(pf, []byte(pass+"\n"), 0o600)
		if _, errOut, code := runCLI(t, "rotate", "plan", "--profile", "prod"); code == 0 || !strings.Contains(errOut, "--passphrase-file") {
			t.Fatalf("rotate plan without the passphrase: %d %s", code, errOut)
		}
		out, errOut, code := runCLI(t, "rotate", "run", "--profile", "prod", "--passphrase-file", pf)
		if code != 0 {
			t.Fatalf("rotate run: %d %s", code, errOut)
		}
		checkNew(t, cfg, old, out, errOut)
	})
}

// rotate run carries out the recorded plan; a plan flag given with it
// would be ignored silently, so it is refused. A negative overlap is
// refused at plan.
func TestRotateRunRefusesPlanFlagsWhenPlanned(t *testing.T) {
	rotateSetup(t, nil)
	if _, errOut, code := runCLI(t, "rotate", "plan", "--profile", "prod", "--overlap", "-5h"); code == 0 || !strings.Contains(errOut, "negative") {
		t.Fatalf("plan --overlap -5h: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "rotate", "plan", "--profile", "prod"); code != 0 {
		t.Fatalf("rotate plan: %s", errOut)
	}
	for _, args := range [][]string{{"--overlap", "1s"}, {"--alg", "PS256"}, {"--bits", "3072"}, {"--jwk-as-string"},
		{"--new-key", "file:" + filepath.Join(t.TempDir(), "x.json")}, {"--selvbetjening-url", "https://127.0.0.1:1/v1/client-secret"}} {
		_, errOut, code := runCLI(t, append([]string{"rotate", "run", "--profile", "prod"}, args...)...)
		if code == 0 || !strings.Contains(errOut, "already planned") || !strings.Contains(errOut, args[0]) || !strings.Contains(errOut, "rotate abort") {
			t.Fatalf("rotate run %v after plan: %d %s", args, code, errOut)
		}
	}
	out, _, _ := runCLI(t, "rotate", "status", "--profile", "prod", "-o", "json")
	var j struct {
		Step    string `json:"step"`
		Overlap string `json:"overlap"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || j.Step != "planned" || j.Overlap != "72h0m0s" {
		t.Fatalf("journal after refused runs: %v %+v", err, j)
	}
	if _, errOut, code := runCLI(t, "rotate", "run", "--profile", "prod"); code != 0 {
		t.Fatalf("rotate run without plan flags: %s", errOut)
	}
}

// Profiles "a b" and "a_b" (one journal file under the old names) each
// have their own rotation: resuming a_b never carries out a b's plan nor
// switches a_b to a b's new key.
func TestRotateProfilesWithLookalikeNamesCLI(t *testing.T) {
	cfg, key := rotateSetup(t, nil)
	f, err := profile.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Set("a b", f.Profiles["prod"].Clone())
	f.Set("a_b", f.Profiles["prod"].Clone())
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, "rotate", "plan", "--profile", "a b", "--new-key", "file:"+filepath.Join(t.TempDir(), "ab.json")); code != 0 {
		t.Fatalf("plan a b: %s", errOut)
	}
	for _, cmd := range []string{"resume", "status"} {
		if _, errOut, code := runCLI(t, "rotate", cmd, "--profile", "a_b"); code == 0 || !strings.Contains(errOut, "no rotation in progress for profile a_b") {
			t.Fatalf("rotate %s --profile a_b while a b is planned: %d %s", cmd, code, errOut)
		}
	}
	if _, errOut, code := runCLI(t, "rotate", "resume", "--profile", "a b"); code != 0 {
		t.Fatalf("resume a b: %s", errOut)
	}
	f, _ = profile.Load(cfg)
	if f.Profiles["a_b"].Key != key || f.Profiles["prod"].Key != key || f.Profiles["a b"].Key == key {
		t.Fatalf("keys after rotating a b: a b %s, a_b %s, prod %s (was %s)", f.Profiles["a b"].Key, f.Profiles["a_b"].Key, f.Profiles["prod"].Key, key)
	}
}

// Every rotate flag can come from a JWKCTL_… variable too.
func TestRotateFlagsHaveEnvVars(t *testing.T) {
	for _, sub := range rotateCommand().Subcommands {
		for _, f := range sub.Flags {
			ev, ok := f.(interface{ GetEnvVars() []string })
			if !ok || len(ev.GetEnvVars()) == 0 {
				t.Errorf("rotate %s --%s has no JWKCTL_… variable", sub.Name, f.Names()[0])
			}
		}
	}
	// And they work: JWKCTL_YES confirms an abort without a terminal.
	rotateSetup(t, nil)
	if _, errOut, code := runCLI(t, "rotate", "plan", "--profile", "prod"); code != 0 {
		t.Fatal(errOut)
	}
	t.Setenv("JWKCTL_YES", "true")
	if _, errOut, code := runCLI(t, "rotate", "abort", "--profile", "prod"); code != 0 || !strings.Contains(errOut, "nothing was created") {
		t.Fatalf("abort with JWKCTL_YES: %d %s", code, errOut)
	}
}

// keys expiry is a monitoring check: WARNING and CRITICAL are 1 and 2, so
// every error exits 3 (UNKNOWN), as one line "jwkctl: …", with hints that
// fit a command that reads its servers from the profile.
func TestKeysExpiryErrorsAreUnknown(t *testing.T) {
	_, key := rotateSetup(t, nil)
	down := filepath.Join(t.TempDir(), "down.yaml")
	f := &profile.File{}
	f.Set("down", &profile.Profile{Issuer: "http://127.0.0.1:1", ClientID: "rot-client", Key: key})
	if err := f.Save(down); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing --profile", []string{}, "missing --profile"},
		{"bad --warn", []string{"--profile", "prod", "--warn", "soon"}, "--warn"},
		{"bad --critical", []string{"--profile", "prod", "--critical", "-3d"}, "--critical"},
		{"bad --output", []string{"--profile", "prod", "-o", "yaml"}, "--output"},
		{"no such profile", []string{"--profile", "nope"}, "nope"},
		{"HelseID unreachable", []string{"--config", down, "--profile", "down"}, "profile down in " + down},
		{"unknown flag", []string{"--profile", "prod", "--bogus"}, "bogus"},
		{"stray argument", []string{"--profile", "prod", "extra"}, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, append([]string{"keys", "expiry"}, tc.args...)...)
			if code != 3 || out != "" || !strings.HasPrefix(errOut, "jwkctl: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 3 and one line mentioning %q", code, out, errOut, tc.want)
			}
			if strings.Contains(errOut, "--issuer") || strings.Contains(errOut, "--token-endpoint") {
				t.Fatalf("the hint names flags keys expiry does not have: %s", errOut)
			}
		})
	}
	out, _, _ := runCLI(t, "keys", "expiry", "--help")
	if !strings.Contains(out, "exits 3, UNKNOWN") {
		t.Fatalf("help does not document exit code 3:\n%s", out)
	}
}

// The audit's case, from the command line: the docs' offline rehearsal
// with the config's key relative to the config file, rotate and retire run
// from another directory that has other keys at the same relative paths.
// Only the profile's old key is deleted.
func TestRotateRelativeKeyFromAnotherDirectory(t *testing.T) {
	demo := filepath.Join(t.TempDir(), "demo")
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	old, err := keystore.Generate(t.Context(), keystore.GenerateRequest{URI: keystore.MustParse("file:" + filepath.Join(demo, "client.json")), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sts.EnableSelvbetjening()
	if err := sts.RegisterClient("demo", []jose.JSONWebKey{{Key: old.Public()}}, []string{devsts.DemoScope, devsts.SelvbetjeningScope}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(demo, "config.yaml")
	os.WriteFile(cfg, []byte("profiles:\n  demo:\n    issuer: "+sts.Issuer()+"\n    client_id: demo\n    key: file:client.json\n    dpop: true\n    scopes: [nhn:demo-api/read]\n"), 0o600)
	other := t.TempDir()
	var decoys []string
	for _, p := range []string{"client.json", "demo/client.json"} {
		k, err := keystore.Generate(t.Context(), keystore.GenerateRequest{URI: keystore.MustParse("file:" + filepath.Join(other, p)), Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		decoys = append(decoys, k.URI().String())
	}
	t.Chdir(other)
	t.Setenv("JWKCTL_CONFIG", cfg)
	t.Setenv("JWKCTL_JOURNAL_DIR", filepath.Join(t.TempDir(), "journal"))

	if out, errOut, code := runCLI(t, "rotate", "run", "--profile", "demo", "--overlap", "1m"); code != 0 {
		t.Fatalf("rotate run: %d\n%s%s", code, out, errOut)
	}
	b, _ := os.ReadFile(cfg)
	if !strings.Contains(string(b), "key: file:client-") {
		t.Fatalf("the new key is not written relative to the config file:\n%s", b)
	}
	out, errOut, code := runCLI(t, "rotate", "resume", "--profile", "demo", "--retire", "--force-retire", "--yes")
	if code != 0 || !strings.Contains(out, "old key "+old.URI().String()) {
		t.Fatalf("retire: %d\n%s%s", code, out, errOut)
	}
	for _, d := range decoys {
		if _, err := keystore.Open(t.Context(), d, keystore.Options{}); err != nil {
			t.Errorf("a key in the working directory was touched: %v", err)
		}
	}
	if _, err := keystore.Open(t.Context(), old.URI().String(), keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("the profile's old key after retire: %v", err)
	}
}

// The runbook's offline rehearsal as a user walks it: the config file
// keeps the user's comments and formatting through activation (only the
// key changes), status names the keys by role and says which one the
// profile uses, and retiring inside the overlap says in one line until
// when the old key stays and which command retires it then or now.
func TestRotateRehearsalKeepsConfigAndExplainsOverlap(t *testing.T) {
	demo := filepath.Join(t.TempDir(), "demo")
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	old, err := keystore.Generate(t.Context(), keystore.GenerateRequest{URI: keystore.MustParse("file:" + filepath.Join(demo, "client.json")), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sts.EnableSelvbetjening()
	if err := sts.RegisterClient("demo", []jose.JSONWebKey{{Key: old.Public()}}, []string{devsts.DemoScope, devsts.SelvbetjeningScope}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(demo, "config.yaml")
	src := "# my jwkctl profiles\ndefault: demo   # my default\n\nprofiles:\n  demo:\n    issuer: " + sts.Issuer() + "\n    client_id: demo\n" +
		"    key: file:client.json              # relative to this file: " + demo + "/client.json\n" +
		"    dpop: true\n    scopes: [nhn:demo-api/read]\n"
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	t.Setenv("JWKCTL_CONFIG", cfg)
	t.Setenv("JWKCTL_JOURNAL_DIR", filepath.Join(t.TempDir(), "journal"))

	if out, errOut, code := runCLI(t, "rotate", "run", "--profile", "demo", "--overlap", "1m"); code != 0 {
		t.Fatalf("rotate run: %d\n%s%s", code, out, errOut)
	}
	pf, err := profile.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	newKey := pf.Profiles["demo"].Key
	if newKey == old.URI().String() {
		t.Fatal("the profile still uses the old key")
	}
	want := strings.Replace(src, "key: file:client.json ", "key: file:"+filepath.Base(keystore.MustParse(newKey).Path)+" ", 1)
	if b, _ := os.ReadFile(cfg); string(b) != want {
		t.Errorf("config after activation:\n%s\nwant only the key changed:\n%s", b, want)
	}

	out, errOut, code := runCLI(t, "rotate", "status", "--profile", "demo")
	if code != 0 {
		t.Fatalf("status: %d %s", code, errOut)
	}
	for _, w := range []string{"old key " + old.URI().String(), "old kid ", "new key " + newKey, "new kid ", "profile uses the new key (since "} {
		if !strings.Contains(squeeze(out), w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "current") {
		t.Errorf("status calls a key current after the switch:\n%s", out)
	}

	// Not a failure: a daily cron job asking to retire stays quiet (exit
	// 0) until the overlap has passed.
	out, errOut, code = runCLI(t, "rotate", "resume", "--profile", "demo", "--retire", "--yes")
	if code != 0 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "the old key stays until ") {
		t.Fatalf("retire inside the overlap: %d %q %q", code, out, errOut)
	}
	for _, w := range []string{"the old key stays until ", " (overlap 1m0s); run jwkctl rotate resume --profile demo --retire after that, or jwkctl rotate resume --profile demo --force-retire to retire it now\n"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("overlap error lacks %q: %s", w, errOut)
		}
	}
	for _, bad := range []string{"step retired", "rotation:", "fix the cause", "jwkctl: "} {
		if strings.Contains(errOut, bad) {
			t.Errorf("overlap error says %q: %s", bad, errOut)
		}
	}
	if _, err := keystore.Open(t.Context(), old.URI().String(), keystore.Options{}); err != nil {
		t.Fatalf("the old key inside the overlap: %v", err)
	}
	if out, errOut, code := runCLI(t, "rotate", "resume", "--profile", "demo", "--force-retire", "--yes"); code != 0 {
		t.Fatalf("--force-retire: %d\n%s%s", code, out, errOut)
	}
	out, _, _ = runCLI(t, "rotate", "status", "--profile", "demo")
	if !strings.Contains(squeeze(out), "old key "+old.URI().String()+" (retired ") || !strings.Contains(squeeze(out), "profile uses the new key") {
		t.Errorf("status after retire:\n%s", out)
	}
}

// squeeze folds runs of blanks, so table output can be matched.
func squeeze(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		b.WriteString(strings.Join(strings.Fields(l), " ") + "\n")
	}
	return b.String()
}

// rotate plan refuses a --new-key with a pin-value, as profiles do, and
// records nothing: the journal (which rotate status -o json prints) and
// the config file never hold a PIN. A journal an older jwkctl wrote with
// one is printed redacted.
func TestRotatePlanRefusesPinValueCLI(t *testing.T) {
	rotateSetup(t, nil)
	const pin = "735921"
	_, errOut, code := runCLI(t, "rotate", "plan", "--profile", "prod", "--alg", "ES256",
		"--new-key", "pkcs11:token=prod;object=helseid-2027?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value="+pin)
	if code == 0 || strings.Contains(errOut, pin) || !strings.Contains(errOut, "pin-source=file:") || !strings.Contains(errOut, "pin-source=env:") {
		t.Fatalf("plan with a pin-value: %d %s", code, errOut)
	}
	out, errOut, code := runCLI(t, "rotate", "status", "--profile", "prod", "-o", "json")
	if code == 0 || strings.Contains(out+errOut, pin) || !strings.Contains(errOut, "no rotation in progress") {
		t.Fatalf("status after the refused plan: %d %s %s", code, out, errOut)
	}
	// A journal under the old name, as an older jwkctl wrote it.
	dir := os.Getenv("JWKCTL_JOURNAL_DIR")
	os.MkdirAll(dir, 0o700)
	old := `{"version":1,"profile":"prod","client_id":"rot-client","issuer":"https://x","selvbetjening_endpoint":"https://x/v1/client-secret",` +
		`"step":"planned","current_key":"file:///k.json","new_key":"pkcs11:token=prod;object=n?pin-value=` + pin + `","alg":"ES256","overlap":"72h0m0s","history":[]}`
	if err := os.WriteFile(filepath.Join(dir, "prod.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status", "-o", "json"}, {"status"}, {"resume"}} {
		out, errOut, _ := runCLI(t, append(append([]string{"rotate"}, args...), "--profile", "prod")...)
		if strings.Contains(out+errOut, pin) {
			t.Errorf("rotate %v prints the PIN:\n%s%s", args, out, errOut)
		}
		if args[0] == "resume" && !strings.Contains(errOut, "rotate abort") {
			t.Errorf("resume of a journal with a pin-value: %s", errOut)
		}
	}
}

// --overlap 0 (or JWKCTL_OVERLAP=0) is kept as zero; without it the
// overlap is 72h.
func TestRotateOverlapZeroCLI(t *testing.T) {
	overlap := func() string {
		t.Helper()
		out, _, _ := runCLI(t, "rotate", "status", "--profile", "prod", "-o", "json")
		var j struct {
			Overlap string `json:"overlap"`
		}
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		return j.Overlap
	}
	rotateSetup(t, nil)
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{nil, "", "72h0m0s"},
		{[]string{"--overlap", "0"}, "", "0s"},
		{nil, "0s", "0s"},
		{[]string{"--overlap", "90m"}, "", "1h30m0s"},
	} {
		t.Setenv("JWKCTL_OVERLAP", tc.env)
		if tc.env == "" {
			os.Unsetenv("JWKCTL_OVERLAP")
		}
		if _, errOut, code := runCLI(t, append([]string{"rotate", "plan", "--profile", "prod"}, tc.args...)...); code != 0 {
			t.Fatalf("plan %v: %s", tc.args, errOut)
		}
		if got := overlap(); got != tc.want {
			t.Errorf("plan %v (JWKCTL_OVERLAP=%q): overlap %s, want %s", tc.args, tc.env, got, tc.want)
		}
		if _, errOut, code := runCLI(t, "rotate", "abort", "--profile", "prod", "--yes"); code != 0 {
			t.Fatal(errOut)
		}
	}
	// With overlap 0, --retire retires right after activation.
	rotateSetup(t, nil)
	if out, errOut, code := runCLI(t, "rotate", "run", "--profile", "prod", "--overlap", "0", "--retire", "--yes"); code != 0 || !strings.Contains(out, "retired") {
		t.Fatalf("run --overlap 0 --retire: %d\n%s%s", code, out, errOut)
	}
}

// A damaged journal ({} or null, an unknown step) is one line naming the
// file and the way out; nothing is carried out from it (an unknown step
// once restarted the rotation from plan), and rotate abort drops it.
func TestRotateDamagedJournalCLI(t *testing.T) {
	rotateSetup(t, nil)
	if _, errOut, code := runCLI(t, "rotate", "plan", "--profile", "prod"); code != 0 {
		t.Fatal(errOut)
	}
	dir := os.Getenv("JWKCTL_JOURNAL_DIR")
	journals, _ := filepath.Glob(filepath.Join(dir, "prod.*.json"))
	if len(journals) != 1 {
		t.Fatalf("journals: %q", journals)
	}
	planned, _ := os.ReadFile(journals[0])
	bogus := strings.Replace(string(planned), `"step": "planned"`, `"step": "bogus"`, 1)
	for _, content := range []string{"{}", "null", bogus} {
		os.WriteFile(journals[0], []byte(content), 0o600)
		for _, cmd := range []string{"resume", "run", "status"} {
			out, errOut, code := runCLI(t, "rotate", cmd, "--profile", "prod")
			if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "damaged journal "+journals[0]) ||
				!strings.Contains(errOut, "jwkctl rotate abort --profile prod") || strings.Contains(errOut, "another profile") {
				t.Fatalf("rotate %s with journal %.20q: %d\n%s%s", cmd, content, code, out, errOut)
			}
		}
		if b, _ := os.ReadFile(journals[0]); string(b) != content {
			t.Fatalf("the damaged journal was rewritten:\n%s", b)
		}
		if keys, _ := filepath.Glob(filepath.Join(filepath.Dir(os.Getenv("JWKCTL_CONFIG")), "client-*.json")); len(keys) != 0 {
			t.Fatalf("a key was generated from a damaged journal: %q", keys)
		}
	}
	_, errOut, code := runCLI(t, "rotate", "abort", "--profile", "prod", "--yes")
	if code != 0 || !strings.Contains(errOut, "removed the journal "+journals[0]) || !strings.Contains(errOut, "keys expiry --profile prod") {
		t.Fatalf("abort of a damaged journal: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "rotate", "status", "--profile", "prod"); code == 0 || !strings.Contains(errOut, "no rotation in progress") {
		t.Fatalf("status after abort: %d %s", code, errOut)
	}
}

// rotate run --retire with an overlap activates and then, inside the
// overlap, says until when the old key stays: exit 0, the old key kept.
func TestRotateRunRetireInsideOverlapCLI(t *testing.T) {
	_, old := rotateSetup(t, nil)
	out, errOut, code := runCLI(t, "rotate", "run", "--profile", "prod", "--retire", "--yes")
	if code != 0 || !strings.Contains(out, "activated") || !strings.Contains(errOut, "the old key stays until ") || strings.Contains(errOut, "jwkctl: ") {
		t.Fatalf("run --retire with the default overlap: %d\n%s%s", code, out, errOut)
	}
	if _, err := keystore.Open(t.Context(), old, keystore.Options{}); err != nil {
		t.Fatalf("the old key inside the overlap: %v", err)
	}
}
