package profile

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
)

// pinShown matches a pin-value in a message that is not masked.
var pinShown = regexp.MustCompile(`(?i)pin-value(=|%3d)(?:[^R]|R[^E])`)

// FuzzLoad: no config file panics Load. One it accepts has no profile
// with a pin-value, a default that is defined, and survives Save and Load
// unchanged; one it refuses gets an error that shows no pin-value.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"default: a\nprofiles:\n  a:\n    issuer: https://helseid-sts.test.nhn.no\n    client_id: c\n    key: file:keys/a.json\n    scopes: a b\n",
		"profiles:\n  a:\n    key: 'pkcs11:token=t;object=k?pin-source=file:pin&module-path=lib/x.so'\n    passphrase_file: p\n    resources: [x, y]\n",
		"default: 'pkcs11:token=a?pin-value=SECR#ET'\nprofiles: {}\n",
		"profiles:\n  a:\n    key: pkcs11:token=t?pin-value=1234\n",
		"profiles:\n  a:\n    dpop: 'pin-value=123456'\n",
		"# comment only\n", "profiles:\n  a:\n", "profiles: [1]\n", "{", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			if pinShown.MatchString(err.Error()) {
				t.Fatalf("Load error shows a pin-value: %v", err)
			}
			return
		}
		for name, p := range cfg.Profiles {
			if p == nil {
				t.Fatalf("profile %q is nil", name)
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("accepted profile %q that Validate refuses: %v", name, err)
			}
		}
		if cfg.Default != "" && cfg.Profiles[cfg.Default] == nil {
			t.Fatalf("default %q is not defined", cfg.Default)
		}
		if err := cfg.Save(path); err != nil {
			t.Fatalf("Save of what Load accepted: %v", err)
		}
		again, err := Load(path)
		if err != nil {
			t.Fatalf("Load after Save: %v", err)
		}
		if again.Default != cfg.Default || !reflect.DeepEqual(again.Profiles, cfg.Profiles) {
			t.Fatalf("Save and Load changed the config:\n%+v\n%+v", cfg.Profiles, again.Profiles)
		}
	})
}
