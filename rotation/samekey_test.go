package rotation

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sameKey compares what two URIs name, not how they are spelt.
func TestSameKey(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.MkdirAll(filepath.Join(dir, "demo"), 0o700)
	os.WriteFile(filepath.Join(dir, "demo", "client.json"), []byte("{}"), 0o600)
	os.Symlink(filepath.Join(dir, "demo", "client.json"), filepath.Join(dir, "link.json"))
	abs := "file://" + filepath.Join(dir, "demo", "client.json")
	const kms = "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"file:./demo/client.json", "file:demo/client.json", true},
		{"file:./demo/client.json", abs, true},
		{"file:demo//client.json", "file:demo/x/../client.json", true},
		{"file:link.json", abs, true},
		{"file:demo/client.json", "file:demo/other.json", false},
		{"pkcs11:token=t;object=k?module-path=/a.so&pin-source=env:P", "pkcs11:object=k;token=t;type=private?module-path=/b.so", true},
		{"pkcs11:token=t;object=k;id=%01", "pkcs11:token=t;id=%01", true},
		{"pkcs11:token=t;object=k", "pkcs11:token=t;id=%01", true}, // cannot tell: counts as the same
		{"pkcs11:token=t;object=k", "pkcs11:token=t;object=k2", false},
		{"pkcs11:token=t;object=k;id=%01", "pkcs11:token=t;object=k;id=%02", false},
		{"pkcs11:token=t;object=k", "pkcs11:token=u;object=k", false},
		{kms, "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1", true},
		{kms, "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2", false},
		{kms, abs, false},
		{"azurekv://v1.vault.azure.net/keys/helseid/0a", "AZUREKV://V1.vault.azure.net/keys/HelseID/0A", true},
		{"azurekv://v1.vault.azure.net/keys/helseid", "azurekv://v1.vault.azure.net/keys/helseid/0a", true}, // the current version may be that one
		{"azurekv://v1.vault.azure.net/keys/helseid/0a", "azurekv://v1.vault.azure.net/keys/helseid/0b", false},
		{"azurekv://v1.vault.azure.net/keys/helseid", "azurekv://v2.vault.azure.net/keys/helseid", false},
		{"azurekv://v1.vault.azure.net/keys/helseid", "azurekv://v1.vault.azure.net/keys/helseid-20260101-000000", false},
	} {
		if got := sameKey(c.a, c.b); got != c.same {
			t.Errorf("sameKey(%s, %s) = %v, want %v", c.a, c.b, got, c.same)
		}
		if got := sameKey(c.b, c.a); got != c.same {
			t.Errorf("sameKey(%s, %s) = %v, want %v", c.b, c.a, got, c.same)
		}
	}
}

func TestSameKeyAWSKMS(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"awskms:///alias/k?region=eu-north-1", "awskms:///alias/k?region=eu-north-1&profile=p", true},
		{"awskms:///alias/k?region=eu-north-1", "awskms:///alias/k", true}, // the default region may be it
		{"awskms:///alias/k?region=eu-north-1", "awskms:///alias/k?region=eu-west-1", false},
		{"awskms:///alias/k?region=eu-north-1", "awskms:///alias/k2?region=eu-north-1", false},
	} {
		if got := sameKey(c.a, c.b); got != c.same {
			t.Errorf("sameKey(%s, %s) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}

func TestDeriveNewAWSKMSKey(t *testing.T) {
	now := time.Date(2026, 3, 14, 2, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{
		"awskms:///alias/helseid?region=eu-north-1":                             "awskms:///alias/helseid-20260314-020000?region=eu-north-1",
		"awskms:///alias/helseid-20250101-000000?region=eu-north-1&profile=ops": "awskms:///alias/helseid-20260314-020000?profile=ops&region=eu-north-1",
		"awskms:///arn:aws:kms:eu-west-1:111122223333:alias/team/k":             "awskms:///alias/team/k-20260314-020000?region=eu-west-1",
	} {
		got, err := deriveNewKey(in, now)
		if err != nil || got != want {
			t.Errorf("deriveNewKey(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := deriveNewKey("awskms:///1234abcd-12ab-34cd-56ef-1234567890ab?region=eu-north-1", now); err == nil {
		t.Error("a key ID gave a new key name")
	}
}

// A Key Vault key rotates into a new key in the same vault (never a new
// version of the old one), named after the old one and the time.
func TestDeriveNewAzureKey(t *testing.T) {
	now := time.Date(2026, 12, 4, 15, 30, 0, 0, time.UTC)
	for in, want := range map[string]string{
		"azurekv://v1.vault.azure.net/keys/helseid/0123456789abcdef0123456789abcdef": "azurekv://v1.vault.azure.net/keys/helseid-20261204-153000",
		"azurekv://v1.vault.azure.net/keys/helseid-20250101-000000":                  "azurekv://v1.vault.azure.net/keys/helseid-20261204-153000",
		"azurekv://h1.managedhsm.azure.net/keys/k":                                   "azurekv://h1.managedhsm.azure.net/keys/k-20261204-153000",
	} {
		got, err := deriveNewKey(in, now)
		if err != nil || got != want {
			t.Errorf("deriveNewKey(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}
