package assertion_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/jwkctl/jwkctl/assertion"
)

// A URL with an authority but no host made the htu "http:///", which
// HTU itself then refused on the next round.
func TestHTUNeedsHost(t *testing.T) {
	for _, in := range []string{"http://:", "http://:80/token", "https://:443", "https://user@:8443/x", "http:///token", "https://?x=1"} {
		got, err := assertion.HTU(in)
		if err == nil {
			t.Errorf("HTU(%q) = %q, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), "host") {
			t.Errorf("HTU(%q): %v does not say the host is missing", in, err)
		}
		if _, err := assertion.NormalizeHTU(in); err == nil {
			t.Errorf("NormalizeHTU(%q) accepted", in)
		}
	}
}

// FuzzHTU: HTU never panics, and an htu it makes is an absolute URL with a
// host and no query, fragment or user info, that HTU leaves as it is and
// NormalizeHTU accepts.
func FuzzHTU(f *testing.F) {
	for _, s := range []string{
		"https://a.example/token", "https://A.EXAMPLE:443/x?y=1#z", "http://127.0.0.1:8080/connect", "http://:",
		"https://[::1]:8443/p", "https://[fe80::1%25en0]/x", "http://u:p@h/x", "https://h/%7e/./../a%2Fb", "http://h:/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := assertion.HTU(in)
		if err != nil {
			return
		}
		u, err := url.Parse(h)
		if err != nil {
			t.Fatalf("HTU(%q) = %q, which does not parse: %v", in, h, err)
		}
		if u.Hostname() == "" || u.Scheme == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
			t.Fatalf("HTU(%q) = %q: want scheme, host, no query, fragment or user info", in, h)
		}
		if again, err := assertion.HTU(h); err != nil || again != h {
			t.Fatalf("HTU(%q) = %q, but HTU(%q) = %q, %v", in, h, h, again, err)
		}
		if _, err := assertion.NormalizeHTU(in); err != nil {
			t.Fatalf("HTU(%q) ok but NormalizeHTU: %v", in, err)
		}
	})
}
