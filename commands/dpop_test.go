package commands

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/token"
)

// clientFrom builds the token client the token command would build from
// args (no request is made).
func clientFrom(t *testing.T, args ...string) *token.Client {
	t.Helper()
	var got *token.Client
	app := &cli.App{
		Name: "jwkctl", Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{},
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{{Name: "t", Flags: tokenFlags(), Action: func(c *cli.Context) error {
			var err error
			got, _, err = tokenClientFromFlags(c)
			return err
		}}},
	}
	if err := app.Run(append([]string{"jwkctl", "t"}, args...)); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return got
}

// DPoP is on by default for HelseID's issuers, as HelseID.Library always
// sends a proof; --dpop=false and a profile's dpop: false turn it off;
// elsewhere the default stays off.
func TestDPoPDefaultForHelseID(t *testing.T) {
	dir := t.TempDir()
	key, _ := testKey(t)
	cfg := filepath.Join(dir, "config.yaml")
	yaml := "profiles:\n" +
		"  quiet:\n    issuer: " + helseIDTest + "\n    client_id: c\n    key: " + key + "\n" +
		"  off:\n    issuer: " + helseIDProd + "\n    client_id: c\n    key: " + key + "\n    dpop: false\n" +
		"  other:\n    issuer: https://idp.example.com\n    client_id: c\n    key: " + key + "\n" +
		"  other-on:\n    issuer: https://idp.example.com\n    client_id: c\n    key: " + key + "\n    dpop: true\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JWKCTL_CONFIG", cfg)
	flags := []string{"--key", key, "--client-id", "c"}
	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{
		{"HelseID test issuer", append([]string{"--issuer", helseIDTest}, flags...), true},
		{"HelseID production issuer", append([]string{"--issuer", helseIDProd + "/"}, flags...), true},
		{"--dpop=false", append([]string{"--issuer", helseIDTest, "--dpop=false"}, flags...), false},
		{"JWKCTL_DPOP=false", nil, false},
		{"other issuer", append([]string{"--issuer", "https://idp.example.com"}, flags...), false},
		{"other issuer with --dpop", append([]string{"--issuer", "https://idp.example.com", "--dpop"}, flags...), true},
		{"profile without dpop, HelseID", []string{"--profile", "quiet"}, true},
		{"profile dpop: false, HelseID", []string{"--profile", "off"}, false},
		{"profile dpop: false, --dpop", []string{"--profile", "off", "--dpop"}, true},
		{"profile without dpop, other", []string{"--profile", "other"}, false},
		{"profile dpop: true, other", []string{"--profile", "other-on"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args == nil {
				t.Setenv("JWKCTL_DPOP", "false")
				args = append([]string{"--issuer", helseIDTest}, flags...)
			}
			c := clientFrom(t, args...)
			if got := c.DPoP() != nil; got != tc.want {
				t.Errorf("DPoP on = %v, want %v", got, tc.want)
			}
		})
	}
}
