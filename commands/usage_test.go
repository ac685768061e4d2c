package commands

import (
	"path/filepath"
	"strings"
	"testing"
)

// Mistakes on the command line exit 2 with one line "jwkctl: …" and
// nothing on stdout, whichever check finds them.
func TestUsageMistakesExit2(t *testing.T) {
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	key, _ := testKey(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "public", "--key", key, "--format", "xml"}, "--format must be jwk, jwks or pem"},
		{[]string{"keys", "generate", "--key", "file:x.json", "ES256"}, "takes no arguments"},
		{[]string{"call", "--key", key, "--client-id", "c", "--issuer", "http://127.0.0.1:1"}, "exactly one URL, got 0"},
		{[]string{"call", "--key", key, "--client-id", "c", "--issuer", "http://127.0.0.1:1", "http://127.0.0.1:1/x", "--dpop"}, "flags after the URL are not read"},
		{[]string{"dev", "sts", "--listen", "127.0.0.1:0"}, "no clients"},
		{[]string{"assertion", "--key", key, "--client-id", "c", "--audience", "a", "--lifetime", "1500ms"}, "whole seconds"},
		{[]string{"assertion", "--key", key, "--client-id", "c", "--audience", "a", "--lifetime", "2m"}, "add --force-lifetime"},
		{[]string{"keys", "bogus"}, "unknown command"},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code != ExitUsage || out != "" || !strings.HasPrefix(errOut, "jwkctl: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", tc.args, code, out, errOut, tc.want)
			}
		})
	}
	// Over 60 s is fine when forced.
	if _, errOut, code := runCLI(t, "assertion", "--key", key, "--client-id", "c", "--audience", "a", "--lifetime", "2m", "--force-lifetime"); code != 0 {
		t.Fatalf("forced lifetime: %d %s", code, errOut)
	}
}
