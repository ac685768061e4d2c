package commands

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
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
	f.Set("prod", &profile.Profile{Issuer: sts.Issuer(), ClientID: "rot-client", Key: key, DPoP: true, Scopes: []string{devsts.DemoScope}})
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
	// Retiring needs confirmation; without a terminal and --yes it refuses.
	_, errOut, code = runCLI(t, "rotate", "resume", "--profile", "prod", "--retire")
	if code == 0 || !strings.Contains(errOut, "confirmation") {
		t.Fatalf("retire without --yes: %d %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "rotate", "resume", "--profile", "prod", "--retire", "--yes")
	if code == 0 || !strings.Contains(errOut, "overlap") {
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
