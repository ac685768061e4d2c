package token

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// expires_in that is no number of seconds a token can live is refused,
// not turned into a nonsense lifetime ("NaN" became math.MinInt64).
func TestExpiresInRefused(t *testing.T) {
	for _, v := range []string{`"NaN"`, `"nan"`, `"Inf"`, `"-Inf"`, `"+Infinity"`, `-1`, `"-5"`, `0`, `0.5`, `"0x10"`, `"1_0"`,
		`1e400`, `315360001`, `9223372036854775807`, `true`, `"60s"`, `""`, `[60]`, `{"s":60}`} {
		t.Run(v, func(t *testing.T) {
			f := newFakeSTS(t, false)
			f.respond = func(_ int, _ seen, w http.ResponseWriter) bool {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"access_token":"at-secret-value","token_type":"Bearer","expires_in":` + v + `}`))
				return true
			}
			r, err := newClient(t, f.config(t)).Exchange(t.Context(), Request{})
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("expires_in %s: got %+v, %v; want ErrBadResponse", v, r, err)
			}
			if !strings.Contains(err.Error(), "expires_in") || strings.Contains(err.Error(), "at-secret-value") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestExpiresInAccepted(t *testing.T) {
	for v, want := range map[string]int64{`600`: 600, `"600"`: 600, `1`: 1, `59.9`: 59, `6e2`: 600, `null`: 0, `315360000`: 315360000} {
		got, err := parseExpiresIn(json.RawMessage(v))
		if err != nil || got != want {
			t.Errorf("parseExpiresIn(%s) = %d, %v; want %d", v, got, err, want)
		}
	}
}

// FuzzParseTokenResponse: no token response body panics the parser; one
// it accepts has a token, a token type and a lifetime that is either
// absent (0, no expiry) or between a second and ten years, with Expiry
// that far from the request; one it refuses gets a one-line
// ErrBadResponse that does not quote the access token.
func FuzzParseTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"at","token_type":"Bearer","expires_in":600}`,
		`{"access_token":"at","token_type":"Bearer","expires_in":"NaN"}`,
		`{"access_token":"at","token_type":"Bearer","expires_in":"3600","scope":"a b"}`,
		`{"access_token":"at","token_type":"Bearer","expires_in":-1}`,
		`{"access_token":"at","token_type":"Bearer","expires_in":1e308}`,
		`{"access_token":"at","token_type":"DPoP"}`,
		`{"access_token":"","token_type":"Bearer"}`,
		`{"access_token":"at","token_type":"Bearer","expires_in":null}`,
		`[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	c := newClient(f, newFakeSTS(f, false).config(f))
	hdr := http.Header{"Content-Type": {"application/json"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := c.parseSuccess("https://sts.example/token", testNow, &httpResult{status: 200, header: hdr, body: body})
		if err != nil {
			if !errors.Is(err, ErrBadResponse) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error %q: not a one-line ErrBadResponse", err)
			}
			var w struct {
				AccessToken string `json:"access_token"`
			}
			if json.Unmarshal(body, &w) == nil && len(w.AccessToken) >= 8 && strings.Contains(err.Error(), w.AccessToken) {
				t.Fatalf("error %q quotes the access token", err)
			}
			return
		}
		if r.AccessToken == "" || r.TokenType == "" {
			t.Fatalf("accepted a response without token or type: %+v", r)
		}
		var w struct {
			ExpiresIn json.RawMessage `json:"expires_in"`
		}
		json.Unmarshal(body, &w)
		given := len(w.ExpiresIn) > 0 && string(w.ExpiresIn) != "null"
		switch {
		case !given && (r.ExpiresIn != 0 || !r.Expiry.IsZero()):
			t.Fatalf("no expires_in, but ExpiresIn %d Expiry %v", r.ExpiresIn, r.Expiry)
		case given && (r.ExpiresIn < 1 || r.ExpiresIn > maxExpiresIn):
			t.Fatalf("expires_in %s accepted as %d", w.ExpiresIn, r.ExpiresIn)
		case given && !r.Expiry.Equal(testNow.Add(time.Duration(r.ExpiresIn)*time.Second)):
			t.Fatalf("ExpiresIn %d but Expiry %v", r.ExpiresIn, r.Expiry)
		}
		var f float64
		if given && json.Unmarshal([]byte(strings.Trim(string(w.ExpiresIn), `"`)), &f) == nil && (math.IsNaN(f) || int64(f) != r.ExpiresIn) {
			t.Fatalf("expires_in %s but ExpiresIn %d", w.ExpiresIn, r.ExpiresIn)
		}
	})
}
