package profile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.yaml")
	f := &File{Default: "helseid-test"}
	p := &Profile{
		Issuer: "https://helseid-sts.test.nhn.no", ClientID: "c-1", Key: "pkcs11:token=t;object=k?pin-source=/run/pin",
		DPoP: true, Scopes: []string{"nhn:cp-api/access-v2-dpop"}, Resources: []string{"nhn:cp-api"}, ParentOrg: "994598759",
	}
	if err := f.Set("helseid-test", p); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	if d, _ := os.Stat(filepath.Dir(path)); d.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", d.Mode().Perm())
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	gp, err := got.Get("")
	if err != nil || !reflect.DeepEqual(gp, p) {
		t.Fatalf("default profile after round trip: %+v, %v", gp, err)
	}
	// Switching the key (what rotation does) rewrites the file in place.
	gp.Key = "pkcs11:token=t;object=k2"
	if err := got.Save(path); err != nil {
		t.Fatal(err)
	}
	again, _ := Load(path)
	if again.Profiles["helseid-test"].Key != gp.Key {
		t.Error("key switch not saved")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".config-*")); len(left) != 0 {
		t.Errorf("temp files left behind: %v", left)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantErr    string
		profiles   []string
	}{
		{name: "empty", yaml: ""},
		{name: "two", yaml: "profiles:\n  a:\n    issuer: https://x\n  b:\n    client_id: c\n", profiles: []string{"a", "b"}},
		{name: "unknown field", yaml: "profiles:\n  a:\n    isuer: https://x\n", wantErr: "isuer"},
		{name: "pin-value refused", yaml: "profiles:\n  a:\n    key: pkcs11:token=t;object=k?pin-value=1234\n", wantErr: "pin-value"},
		{name: "bad default", yaml: "default: nope\nprofiles:\n  a: {}\n", wantErr: `default profile "nope"`},
		{name: "not yaml", yaml: "profiles: [\n", wantErr: "config.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			os.WriteFile(path, []byte(tt.yaml), 0o600)
			f, err := Load(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "1234") {
					t.Errorf("error leaks the PIN: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Names(); !reflect.DeepEqual(got, tt.profiles) && len(got)+len(tt.profiles) > 0 {
				t.Errorf("profiles %v, want %v", got, tt.profiles)
			}
		})
	}
}

func TestLoadMissingAndGet(t *testing.T) {
	f, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || f == nil {
		t.Fatalf("missing file: %v, %v", f, err)
	}
	if p, err := f.Get(""); p != nil || err != nil {
		t.Errorf("no default: %v, %v", p, err)
	}
	if _, err := f.Get("helseid-test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing profile: %v", err)
	}
	f.Set("a", &Profile{})
	if _, err := f.Get("b"); err == nil || !strings.Contains(err.Error(), "have: a") {
		t.Errorf("error should list the profiles: %v", err)
	}
}

func TestSaveRefusesSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	f := &File{Profiles: map[string]*Profile{"x": {Key: "pkcs11:object=k?pin-value=0000"}}}
	if err := f.Save(path); !errors.Is(err, ErrSecret) {
		t.Fatalf("err = %v, want ErrSecret", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a file was written")
	}
	if err := f.Set("y", &Profile{DPoPKey: "pkcs11:object=d;pin-value=1"}); !errors.Is(err, ErrSecret) {
		t.Errorf("Set: %v", err)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("JWKCTL_CONFIG", "/etc/jwkctl.yaml")
	if p, _ := DefaultPath(); p != "/etc/jwkctl.yaml" {
		t.Errorf("JWKCTL_CONFIG: %s", p)
	}
	t.Setenv("JWKCTL_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	if p, _ := DefaultPath(); p != "/xdg/jwkctl/config.yaml" {
		t.Errorf("XDG: %s", p)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/u")
	if p, _ := DefaultPath(); p != "/home/u/.config/jwkctl/config.yaml" {
		t.Errorf("HOME: %s", p)
	}
}
