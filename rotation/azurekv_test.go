package rotation_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/azurekv/azurekvtest"
	"github.com/jwkctl/jwkctl/rotation"
)

const azureKey = "azurekv://demo.vault.azure.net/keys/helseid"

// A Key Vault key an interrupted retire disabled no longer gives its
// public key (Key Vault refuses get on a disabled key), so its kid cannot
// be checked again; the resumed retire finishes because the kid was
// checked when that retire started and Key Vault never reuses a version.
// The same state without a started retire is refused, touching nothing.
//
// The profile may name the key with or without its version; a versionless
// URI means the key's current version, which is what gets disabled.
func TestAzureKVCrashAfterDisableResumes(t *testing.T) {
	for _, versioned := range []bool{true, false} {
		t.Run(map[bool]string{true: "versioned", false: "versionless"}[versioned], func(t *testing.T) {
			testAzureKVCrashAfterDisableResumes(t, versioned)
		})
	}
}

func testAzureKVCrashAfterDisableResumes(t *testing.T, versioned bool) {
	_, opts := azurekvtest.Start(t)
	f := newFixture(t, azureKey, jose.ES256, 0, opts)
	if !strings.HasPrefix(f.oldKey, azureKey+"/") {
		t.Fatalf("the generated key %s names no version", f.oldKey)
	}
	if !versioned {
		pf, err := profile.Load(f.config)
		if err != nil {
			t.Fatal(err)
		}
		pf.Profiles["prod"].Key = azureKey
		if err := pf.Save(f.config); err != nil {
			t.Fatal(err)
		}
		f.oldKey = azureKey
	}
	r := f.activated(t)
	ctx := context.Background()

	if err := keystore.SetEnabled(ctx, f.oldKey, false, opts); err != nil {
		t.Fatal(err)
	}
	r.DisableOld = true
	if _, err := r.Run(ctx, rotation.Retired, true); err == nil || !strings.Contains(err.Error(), "nothing was deleted or disabled") {
		t.Fatalf("retire of a key disabled by someone else: %v", err)
	}
	if err := keystore.SetEnabled(ctx, f.oldKey, true, opts); err != nil {
		t.Fatal(err)
	}

	crashing := f.runner(func(s rotation.Step, after bool) error {
		if s == rotation.Retired && after {
			return errCrash
		}
		return nil
	})
	crashing.DisableOld = true
	if _, err := crashing.Run(ctx, rotation.Retired, true); !errors.Is(err, errCrash) {
		t.Fatalf("crash right after the disable: %v", err)
	}
	if _, err := keystore.Open(ctx, f.oldKey, opts); err == nil {
		t.Fatal("the old key still opens after the disable")
	}
	r = f.runner(nil)
	r.DisableOld = true
	j, err := r.Run(ctx, rotation.Retired, true)
	if err != nil || j.Step != rotation.Retired {
		t.Fatalf("resume after a crash inside the Key Vault disable: %v", err)
	}
	if err := f.tokenWith(t, j.NewKey); err != nil {
		t.Fatalf("token with the new Key Vault key: %v", err)
	}
}
