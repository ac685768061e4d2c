package keyimport_test

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/jwkctl/jwkctl/keyimport"
	"github.com/jwkctl/jwkctl/keystore"
)

// The fuzz seeds (testdata/fuzz) hold the fixed test keys of
// testdata/keys in every format; they protect nothing.

var (
	// A "d" member, also inside a JSON string (privateJwk) where its
	// quotes are escaped (\" or, as .NET writes them, \u0022), or
	// percent-encoded.
	dMember = regexp.MustCompile(`(?:"|\\"|\\u0022|%22)d(?:"|\\"|\\u0022|%22)\s*(?::|%3A)\s*(?:"|\\"|\\u0022|%22)([A-Za-z0-9_-]{12,})`)
	xmlD    = regexp.MustCompile(`<(?:D|P|Q)>([A-Za-z0-9+/=]{12,})</`)
	pemBody = regexp.MustCompile(`(?m)^([A-Za-z0-9+/]{20})[A-Za-z0-9+/=]*\r?$`)
)

// secretsIn returns the key material in data that an error must never
// quote: "d" values, .NET XML's <D>, <P>, <Q>, and PEM body lines. A value
// that also appears elsewhere in data (a mutated kid, say) is left out:
// an error may name that other member.
func secretsIn(data []byte) [][]byte {
	var out [][]byte
	for _, re := range []*regexp.Regexp{dMember, xmlD, pemBody} {
		for _, m := range re.FindAllSubmatch(data, -1) {
			if bytes.Count(data, m[1]) == 1 {
				out = append(out, m[1])
			}
		}
	}
	return out
}

func checkNoSecret(t *testing.T, data []byte, err error) {
	t.Helper()
	for _, s := range secretsIn(data) {
		if bytes.Contains([]byte(err.Error()), s) {
			t.Fatalf("error quotes key material %q: %v", s, err)
		}
	}
}

func checkParsed(t *testing.T, p *keyimport.Parsed) {
	t.Helper()
	if p == nil || p.Private == nil || p.Format == "" {
		t.Fatalf("success without a key or format: %+v", p)
	}
	if err := keystore.CheckPrivateKey(p.Private); err != nil {
		t.Fatalf("returned a key CheckPrivateKey refuses: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","d":"c2VjcmV0LXZhbHVlLWZ1enoK"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := keyimport.Parse(data, keyimport.Options{Passphrase: []byte("fuzz passphrase")})
		if err != nil {
			checkNoSecret(t, data, err)
			return
		}
		checkParsed(t, p)
	})
}

func FuzzParseDownload(f *testing.F) {
	f.Add([]byte(`{"clientId":"c","privateJwk":"{\"kty\":\"RSA\",\"d\":\"c2VjcmV0LXZhbHVlLWZ1enoK\"}"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := keyimport.ParseDownload(data)
		if err != nil {
			checkNoSecret(t, data, err)
			return
		}
		if d.ClientID == "" {
			t.Fatal("a download without clientId accepted")
		}
		checkParsed(t, d.Key)
		if d.Key.Format != keyimport.FormatDownload {
			t.Fatalf("format %q", d.Key.Format)
		}
	})
}

// TestSecretsIn keeps the fuzz targets' check honest: it finds the key
// material in the seeds.
func TestSecretsIn(t *testing.T) {
	for _, tc := range []struct {
		data string
		want int
	}{
		{`{"kty":"EC","d":"Z3ry-mbV2Mvgp-oW38Hn4nFZ"}`, 1},
		{`{"privateJwk":"{\"d\":\"Z3ry-mbV2Mvgp-oW38Hn4nFZ\"}"}`, 1},
		{`{"privateJwk":"%7B%22d%22%3A%22Z3ry-mbV2Mvgp-oW38Hn4nFZ%22%7D"}`, 1},
		{`{"privateJwk":"{\u0022d\u0022:\u0022Z3ry-mbV2Mvgp-oW38Hn4nFZ\u0022}"}`, 1},
		{`<RSAKeyValue><D>AQIDBAUGBwgJCgsMDQ4P</D></RSAKeyValue>`, 1},
		{"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n", 1},
		{`{"kid":"Z3ry-mbV2Mvgp-oW38Hn4nFZ","d":"Z3ry-mbV2Mvgp-oW38Hn4nFZ"}`, 0},
	} {
		if got := len(secretsIn([]byte(tc.data))); got != tc.want {
			t.Errorf("secretsIn(%s) found %d, want %d", tc.data, got, tc.want)
		}
	}
}
