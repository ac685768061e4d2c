package commands

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
)

// runResolve runs a command with the token flags and returns what
// resolveProfile made of args.
func runResolve(t *testing.T, args ...string) (*profile.Profile, error) {
	t.Helper()
	var got *profile.Profile
	app := &cli.App{
		Name:           "jwkctl",
		Writer:         &bytes.Buffer{},
		ErrWriter:      &bytes.Buffer{},
		ExitErrHandler: func(*cli.Context, error) {}, // errors come back, as in App()
		Commands: []*cli.Command{{
			Name:  "t",
			Flags: tokenFlags(),
			Action: func(c *cli.Context) error {
				var err error
				got, err = resolveProfile(c)
				return err
			},
		}},
	}
	err := app.Run(append([]string{"jwkctl", "t"}, args...))
	return got, err
}

func TestResolveProfile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{Default: "helseid-test", Profiles: map[string]*profile.Profile{
		"helseid-test": {Issuer: "https://helseid-sts.test.nhn.no", ClientID: "c-test", Key: "file:test.json",
			Scopes: []string{"a", "b"}, DPoP: new(true), ParentOrg: "994598759"},
		"prod": {Issuer: "https://helseid-sts.nhn.no", ClientID: "c-prod", Key: "file:prod.json"},
	}}
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JWKCTL_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg")) // no file there
	// Relative key paths in the config are relative to its directory.
	prodKey, tKey := "file://"+filepath.Join(dir, "prod.json"), "file://"+filepath.Join(dir, "test.json")
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    *profile.Profile
		wantErr string
	}{
		{name: "named profile", args: []string{"--config", cfg, "--profile", "prod"},
			want: &profile.Profile{Issuer: "https://helseid-sts.nhn.no", ClientID: "c-prod", Key: prodKey}},
		{name: "default profile", args: []string{"--config", cfg},
			want: &profile.Profile{Issuer: "https://helseid-sts.test.nhn.no", ClientID: "c-test", Key: tKey, Scopes: []string{"a", "b"}, DPoP: new(true), ParentOrg: "994598759"}},
		{name: "flags override", args: []string{"--config", cfg, "--profile", "helseid-test", "--scope", "x y", "--scope", "z", "--dpop=false", "--child-org", "999977775", "--key", "file:other.json"},
			want: &profile.Profile{Issuer: "https://helseid-sts.test.nhn.no", ClientID: "c-test", Key: "file:other.json", Scopes: []string{"x", "y", "z"}, DPoP: new(false), ParentOrg: "994598759", ChildOrg: "999977775"}},
		{name: "env config and env flag", env: map[string]string{"JWKCTL_CONFIG": cfg, "JWKCTL_CLIENT_ID": "from-env"}, args: []string{"-p", "prod"},
			want: &profile.Profile{Issuer: "https://helseid-sts.nhn.no", ClientID: "from-env", Key: prodKey}},
		{name: "dpop key implies dpop", args: []string{"--key", "file:k.json", "--client-id", "c", "--token-endpoint", "http://127.0.0.1:1/token", "--dpop-key", "file:d.json"},
			want: &profile.Profile{Key: "file:k.json", ClientID: "c", TokenEndpoint: "http://127.0.0.1:1/token", DPoPKey: "file:d.json", DPoP: new(true)}},
		{name: "flags only, no config file", args: []string{"--key", "file:k.json", "--client-id", "c", "--issuer", "https://i"},
			want: &profile.Profile{Key: "file:k.json", ClientID: "c", Issuer: "https://i"}},
		{name: "unknown profile", args: []string{"--config", cfg, "--profile", "nope"}, wantErr: "have: helseid-test, prod"},
		{name: "profile without config file", args: []string{"--profile", "x"}, wantErr: "config.yaml"},
		{name: "no client id", args: []string{"--key", "file:k.json", "--issuer", "https://i"}, wantErr: "--client-id"},
		{name: "no server", args: []string{"--key", "file:k.json", "--client-id", "c"}, wantErr: "--issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := runResolve(t, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// genKeyFile makes an ES256 key file at path and returns its public JWK.
func genKeyFile(t *testing.T, path string) jose.JSONWebKey {
	t.Helper()
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	k, err := keystore.Generate(t.Context(), keystore.GenerateRequest{URI: keystore.MustParse("file:" + path), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: k.Public()}
}

// A profile's relative key path is relative to the config file, so the
// profile signs with the same key from any directory, even one that has
// another key at that relative path; scopes may be a space-separated
// string.
func TestProfilePathsRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	s := newSTS(t, genKeyFile(t, filepath.Join(dir, "client.json")))
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("profiles:\n  p:\n    issuer: "+s.srv.URL+"\n    client_id: cli-client\n    key: file:client.json\n    scopes: a b\n"), 0o600)
	other := t.TempDir()
	genKeyFile(t, filepath.Join(other, "client.json")) // another key, same relative path
	t.Chdir(other)
	t.Setenv("JWKCTL_CONFIG", cfg)
	out, errOut, code := runCLI(t, "token", "--profile", "p")
	var resp map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &resp) != nil || resp["scope"] != "a b" {
		t.Fatalf("token with a relative key from another directory: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// A config file that others may change is refused with the chmod fix.
func TestWritableConfigRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c5.yaml")
	os.WriteFile(cfg, []byte("profiles:\n  p:\n    issuer: https://helseid-sts.test.nhn.no\n    client_id: c\n    key: file:k.json\n"), 0o600)
	os.Chmod(cfg, 0o666)
	_, errOut, code := runCLI(t, "token", "--config", cfg, "--profile", "p")
	if code == 0 || !strings.HasPrefix(errOut, "jwkctl: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "chmod go-w "+cfg) {
		t.Fatalf("world-writable config: exit %d, stderr %q", code, errOut)
	}
}
