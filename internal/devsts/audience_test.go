package devsts_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
)

// The issuer is the assertion's sole audience (draft-ietf-oauth-rfc7523bis):
// an array holding anything else is refused; the token endpoint is still
// taken as a single string.
func TestAssertionAudience(t *testing.T) {
	f := newFixture(t, devsts.Config{NoNonce: true})
	iss := f.sts.Issuer()
	te := iss + devsts.TokenPath
	now := f.now.Unix()
	for i, tt := range []struct {
		aud any
		ok  bool
	}{
		{iss, true},
		{[]string{iss}, true},
		{te, true},
		{[]string{iss, "https://other.example"}, false},
		{[]string{"https://other.example", iss}, false},
		{[]string{iss, te}, false},
		{[]string{te}, false},
		{[]string{}, false},
		{"https://other.example", false},
		{42, false},
		{nil, false},
	} {
		t.Run(fmt.Sprint(tt.aud), func(t *testing.T) {
			claims := map[string]any{"iss": "client-a", "sub": "client-a", "iat": now, "nbf": now, "exp": now + 10, "jti": fmt.Sprint("aud-", i)}
			if tt.aud != nil {
				claims["aud"] = tt.aud
			}
			st, body, _ := f.post(t, form(hand(t, jose.ES256, k1, "client-authentication+jwt", claims)), "")
			if tt.ok {
				if st != http.StatusOK {
					t.Fatalf("aud %v refused: %d %v", tt.aud, st, body)
				}
				return
			}
			desc, _ := body["error_description"].(string)
			if st != http.StatusBadRequest || body["error"] != "invalid_client" || !strings.Contains(desc, "aud must be the issuer") {
				t.Fatalf("aud %v: got %d %v, want 400 invalid_client about aud", tt.aud, st, body)
			}
		})
	}
}
