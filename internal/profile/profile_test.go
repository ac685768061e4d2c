package profile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jwkctl/jwkctl/keystore"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.yaml")
	f := &File{Default: "helseid-test"}
	p := &Profile{
		Issuer: "https://helseid-sts.test.nhn.no", ClientID: "c-1", Key: "pkcs11:token=t;object=k?pin-source=/run/pin",
		DPoP: new(true), Scopes: []string{"nhn:cp-api/access-v2-dpop"}, Resources: []string{"nhn:cp-api"}, ParentOrg: "994598759",
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

// writeConfig writes a config file (mode 0600) into dir.
func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Relative paths in a profile are relative to the config file's
// directory, not to the working directory of whoever runs jwkctl.
func TestRelativePathsAgainstConfigDir(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, `profiles:
  a:
    key: file:client.json
    dpop_key: file:./keys/dpop.json
    next_key: file:../elsewhere/next.json
    passphrase_file: secrets/pass
  hsm:
    key: pkcs11:token=t;object=k?module-path=lib/softhsm2.so&pin-source=file:hsm.pin
    dpop_key: pkcs11:token=t;object=d?module-path=libsofthsm2.so&pin-source=env:PIN
  abs:
    key: file:///etc/jwkctl/client.json
    passphrase_file: /etc/jwkctl/pass
  kms:
    key: gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1
`)
	// From somewhere else entirely, with the config named by a relative path.
	wd := t.TempDir()
	t.Chdir(wd)
	rel, err := filepath.Rel(wd, path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Load(rel)
	if err != nil {
		t.Fatal(err)
	}
	a := f.Profiles["a"]
	for _, c := range []struct{ field, got, want string }{
		{"key", a.Key, "file://" + filepath.Join(dir, "client.json")},
		{"dpop_key", a.DPoPKey, "file://" + filepath.Join(dir, "keys", "dpop.json")},
		{"next_key", a.NextKey, "file://" + filepath.Join(filepath.Dir(dir), "elsewhere", "next.json")},
		{"passphrase_file", a.PassphraseFile, filepath.Join(dir, "secrets", "pass")},
		{"pkcs11 key", f.Profiles["hsm"].Key, "pkcs11:token=t;object=k?module-path=" + filepath.Join(dir, "lib", "softhsm2.so") + "&pin-source=file:" + filepath.Join(dir, "hsm.pin")},
		{"pkcs11 without relative paths", f.Profiles["hsm"].DPoPKey, "pkcs11:token=t;object=d?module-path=libsofthsm2.so&pin-source=env:PIN"},
		{"absolute key", f.Profiles["abs"].Key, "file:///etc/jwkctl/client.json"},
		{"absolute passphrase_file", f.Profiles["abs"].PassphraseFile, "/etc/jwkctl/pass"},
		{"kms key", f.Profiles["kms"].Key, "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.field, c.got, c.want)
		}
	}
}

// Save writes an unchanged path as it was written, and a changed one in
// the style of the one it replaces: rotation keeps a relative key
// relative to the config file.
func TestSaveKeepsPathStyle(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, `profiles:
  a:
    key: file:./keys/client.json
    dpop_key: file:dpop.json
    passphrase_file: pass
  b:
    key: file:keys/b.json
  c:
    key: file:keys/c.json
`)
	t.Chdir(t.TempDir())
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Profiles["a"].Key = "file://" + filepath.Join(dir, "keys", "client-20270101-000000.json") // rotated, same directory
	f.Profiles["b"].Key = "file:///srv/keys/b2.json"                                            // moved out of the config's directory
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	text := string(b)
	for _, want := range []string{
		"key: file:./keys/client-20270101-000000.json\n", "dpop_key: file:dpop.json\n", "passphrase_file: pass\n",
		"key: file:///srv/keys/b2.json\n", "key: file:keys/c.json\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("saved file lacks %q:\n%s", want, text)
		}
	}
	again, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := again.Profiles["a"].Key, f.Profiles["a"].Key; got != want {
		t.Errorf("key after a round trip: %s, want %s", got, want)
	}
	// Written into another directory, the paths keep their meaning: absolute.
	other := filepath.Join(t.TempDir(), "copy.yaml")
	if err := again.Save(other); err != nil {
		t.Fatal(err)
	}
	copied, err := Load(other)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(copied.Profiles, again.Profiles) {
		t.Errorf("a copy in another directory names other files:\n%+v\n%+v", copied.Profiles["a"], again.Profiles["a"])
	}
}

// A config file others can change is refused, like a key file others can
// read: whoever writes it chooses the issuer and the key.
func TestLoadRefusesWritableConfig(t *testing.T) {
	for _, mode := range []os.FileMode{0o666, 0o664, 0o620, 0o602} {
		path := writeConfig(t, t.TempDir(), "profiles:\n  a:\n    issuer: https://x\n")
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "chmod go-w "+path) || strings.Contains(err.Error(), "\n") {
			t.Errorf("mode %04o: %v; want one line with ErrInsecure and the chmod fix", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o644, 0o400} {
		path := writeConfig(t, t.TempDir(), "profiles:\n  a:\n    issuer: https://x\n")
		os.Chmod(path, mode)
		if _, err := Load(path); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	if os.Getuid() == 0 {
		// Only root can hand a file to someone else.
		path := writeConfig(t, t.TempDir(), "profiles:\n  a:\n    issuer: https://x\n")
		if err := os.Chown(path, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "owned by uid 4242") {
			t.Errorf("config owned by another user: %v", err)
		}
	}
}

// The pin-value refusal says what to write instead, in the URI syntax
// jwkctl reads, and names the profile once.
func TestPinValueMessage(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "profiles:\n  demo:\n    key: pkcs11:token=t;object=k?pin-value=1234\n")
	_, err := Load(path)
	if !errors.Is(err, ErrSecret) {
		t.Fatalf("err = %v, want ErrSecret", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "JWKCTL_PIN") || !strings.Contains(msg, "pin-source=file:") || !strings.Contains(msg, "pin-source=env:") ||
		strings.Count(msg, "profile") != 1 || !strings.Contains(msg, `profile "demo"`) || strings.Contains(msg, "1234") {
		t.Errorf("message %q", msg)
	}
}

// A key URI with a pin-value named where a profile name goes (default:, or
// the profile asked for) comes back masked, whatever ends the PIN.
func TestProfileNameErrorsHidePIN(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "default: 'pkcs11:token=a?pin-value=SECR#TAIL'\nprofiles:\n  a:\n    key: file:k.json\n")
	_, err := Load(path)
	if err == nil || strings.Contains(err.Error(), "SECR") || strings.Contains(err.Error(), "TAIL") {
		t.Errorf("Load: %v", err)
	}
	f := &File{Default: "token=a?PIN-VALUE=SECR;TAIL", Profiles: map[string]*Profile{"a": {}}}
	if err := f.Save(filepath.Join(t.TempDir(), "c.yaml")); err == nil || strings.Contains(err.Error(), "SECR") || strings.Contains(err.Error(), "TAIL") {
		t.Errorf("Save: %v", err)
	}
	if _, err := f.Get("pkcs11:token=a?pin%2Dvalue=SECR&TAIL"); !errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), "SECR") || strings.Contains(err.Error(), "TAIL") {
		t.Errorf("Get: %v", err)
	}
}

// scopes (and resources) may be a space-separated string, as in OAuth's
// scope parameter, as well as a list.
func TestScopesAsString(t *testing.T) {
	path := writeConfig(t, t.TempDir(), `profiles:
  s:
    scopes: a b
    resources: https://api.example/
  l:
    scopes: [a, b]
    resources:
      - https://api.example/
  e:
    scopes: ""
`)
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"s", "l"} {
		p := f.Profiles[name]
		if !reflect.DeepEqual([]string(p.Scopes), []string{"a", "b"}) || !reflect.DeepEqual([]string(p.Resources), []string{"https://api.example/"}) {
			t.Errorf("profile %s: scopes %q, resources %q", name, p.Scopes, p.Resources)
		}
	}
	if s := f.Profiles["e"].Scopes; s != nil {
		t.Errorf("empty scopes: %q", s)
	}
	bad := writeConfig(t, t.TempDir(), "profiles:\n  m:\n    scopes:\n      a: b\n")
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "scopes") || !strings.Contains(err.Error(), "space-separated") || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("scopes as a mapping: %v", err)
	}
}

// A profile's passphrase_file is held to the same rule as key files: only
// its owner may read it.
func TestPassphraseFileReadableByOthersRefused(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "pass")
	if err := os.WriteFile(pf, []byte("secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(pf, 0o644)
	p := &Profile{Key: "file:" + filepath.Join(dir, "k.json"), PassphraseFile: pf}
	_, err := OpenSigner(t.Context(), p, p.Key, "", ClientOptions{})
	if !errors.Is(err, keystore.ErrInsecure) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("passphrase file at 0644: %v", err)
	}
}
