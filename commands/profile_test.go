package commands

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/profile"
)

// runResolve runs a command with the token flags and returns what
// resolveProfile made of args.
func runResolve(t *testing.T, args ...string) (*profile.Profile, error) {
	t.Helper()
	var got *profile.Profile
	app := &cli.App{
		Name:      "jwkctl",
		Writer:    &bytes.Buffer{},
		ErrWriter: &bytes.Buffer{},
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
			Scopes: []string{"a", "b"}, DPoP: true, ParentOrg: "994598759"},
		"prod": {Issuer: "https://helseid-sts.nhn.no", ClientID: "c-prod", Key: "file:prod.json"},
	}}
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JWKCTL_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg")) // no file there
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    *profile.Profile
		wantErr string
	}{
		{name: "named profile", args: []string{"--config", cfg, "--profile", "prod"},
			want: &profile.Profile{Issuer: "https://helseid-sts.nhn.no", ClientID: "c-prod", Key: "file:prod.json"}},
		{name: "default profile", args: []string{"--config", cfg},
			want: &profile.Profile{Issuer: "https://helseid-sts.test.nhn.no", ClientID: "c-test", Key: "file:test.json", Scopes: []string{"a", "b"}, DPoP: true, ParentOrg: "994598759"}},
		{name: "flags override", args: []string{"--config", cfg, "--profile", "helseid-test", "--scope", "x y", "--scope", "z", "--dpop=false", "--child-org", "999977775", "--key", "file:other.json"},
			want: &profile.Profile{Issuer: "https://helseid-sts.test.nhn.no", ClientID: "c-test", Key: "file:other.json", Scopes: []string{"x", "y", "z"}, ParentOrg: "994598759", ChildOrg: "999977775"}},
		{name: "env config and env flag", env: map[string]string{"JWKCTL_CONFIG": cfg, "JWKCTL_CLIENT_ID": "from-env"}, args: []string{"-p", "prod"},
			want: &profile.Profile{Issuer: "https://helseid-sts.nhn.no", ClientID: "from-env", Key: "file:prod.json"}},
		{name: "dpop key implies dpop", args: []string{"--key", "file:k.json", "--client-id", "c", "--token-endpoint", "http://127.0.0.1:1/token", "--dpop-key", "file:d.json"},
			want: &profile.Profile{Key: "file:k.json", ClientID: "c", TokenEndpoint: "http://127.0.0.1:1/token", DPoPKey: "file:d.json", DPoP: true}},
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
