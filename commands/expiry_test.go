package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
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
	cfg, _ := rotateSetupScopes(t, nil, devsts.DemoScope)
	_, errOut, code := runCLI(t, "keys", "expiry", "--config", cfg, "--profile", "prod")
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
