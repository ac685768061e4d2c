package rotation

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
)

type answer struct {
	status int
	body   []byte
}

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: a.status, Status: http.StatusText(a.status), Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(a.body)), Request: r}, nil
}

// FuzzSelvbetjeningResponse: no answer of the client-secret API panics
// List or Upload. A refused one is a one-line error (valid UTF-8 when the
// answer was) that wraps one of the package's sentinels; an accepted
// List has an Expiration exactly where the raw one is a date, in UTC; an
// accepted Upload returns a date in UTC.
func FuzzSelvbetjeningResponse(f *testing.F) {
	for _, s := range []struct {
		status uint16
		body   string
	}{
		{200, `[{"kid":"k1","expiration":"2026-03-01T10:00:00Z","origin":"jwkctl","publicJwk":{"kty":"EC"}}]`},
		{200, `[{"kid":"k1","expiration":"2026-03-01T10:00:00.1234567"},{"kid":"k2","expiration":null}]`},
		{200, `{"expiration":"2026-03-01"}`},
		{200, `{"expiration":"soon"}`},
		{400, `{"type":"about:blank","title":"Bad Request","detail":"jwk is invalid"}`},
		{401, ``}, {403, `{"title":"a` + strings.Repeat("æ", 200) + `"}`}, {503, `<html>down</html>`}, {302, `{}`},
	} {
		f.Add(s.status, []byte(s.body), false)
		f.Add(s.status, []byte(s.body), true)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: "ES256", Use: "sig"}
	f.Fuzz(func(t *testing.T, status uint16, body []byte, upload bool) {
		if status < 100 || status > 999 {
			t.Skip()
		}
		c := &Client{Endpoint: "https://selvbetjening.example/v1/client-secret", HTTP: &http.Client{Transport: answer{int(status), body}}}
		var err error
		if upload {
			var exp interface{ IsZero() bool }
			exp, err = c.Upload(t.Context(), pub)
			if err == nil && exp.IsZero() {
				t.Fatalf("Upload accepted %d %q with a zero expiration", status, body)
			}
		} else {
			var keys []RegisteredKey
			keys, err = c.List(t.Context())
			for _, k := range keys {
				_, isDate := parseTime(k.RawExpiration)
				if (k.Expiration != nil) != isDate || (k.Expiration != nil && k.Expiration.Location().String() != "UTC") {
					t.Fatalf("expiration %s read as %v", k.RawExpiration, k.Expiration)
				}
			}
		}
		if err == nil {
			if status/100 != 2 {
				t.Fatalf("status %d accepted", status)
			}
			return
		}
		msg := err.Error()
		if strings.ContainsAny(msg, "\r\n") {
			t.Fatalf("error is not one line: %q", msg)
		}
		if utf8.Valid(body) && !utf8.ValidString(msg) {
			t.Fatalf("error is not valid UTF-8: %q", msg)
		}
		known := false
		for _, s := range []error{ErrUnauthorized, ErrForbidden, ErrBadRequest, ErrServer, ErrBadResponse} {
			known = known || errors.Is(err, s)
		}
		if !known {
			t.Fatalf("error %q wraps none of the sentinels", msg)
		}
	})
}
