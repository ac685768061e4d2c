package commands

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
)

// Without --profile, keys expiry checks the config's default profile, as
// the other commands do.
func TestKeysExpiryDefaultProfile(t *testing.T) {
	cfg, _ := rotateSetup(t, nil)
	f, err := profile.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Default = "prod"
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "keys", "expiry")
	if code != 0 || !strings.HasPrefix(out, "OK: the current key expires in 365 days") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

// A client without the Selvbetjening scope gets a hint about the scope,
// not about reachability.
func TestKeysExpiryWithoutSelvbetjeningScope(t *testing.T) {
	dir := t.TempDir()
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	k, err := keystore.Generate(t.Context(), keystore.GenerateRequest{URI: keystore.MustParse("file:" + filepath.Join(dir, "client.json")), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sts.EnableSelvbetjening()
	if err := sts.RegisterClient("no-sb", []jose.JSONWebKey{{Key: k.Public()}}, []string{devsts.DemoScope}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	f.Set("p", &profile.Profile{Issuer: sts.Issuer(), ClientID: "no-sb", Key: k.URI().String(), DPoP: true})
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, "keys", "expiry", "--config", cfg, "--profile", "p")
	if code != 3 || !strings.Contains(errOut, "needs the scope nhn:selvbetjening/client") || strings.Contains(errOut, "reachable") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestDaysLeft(t *testing.T) {
	for left, want := range map[time.Duration]int{
		240*time.Hour - 5*time.Second: 10,
		240*time.Hour + 11*time.Hour:  10,
		36 * time.Hour:                2,
		11 * time.Hour:                0,
	} {
		if got := daysLeft(left); got != want {
			t.Errorf("daysLeft(%v) = %d, want %d", left, got, want)
		}
	}
}
