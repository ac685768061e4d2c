package fakeazkv_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jwkctl/jwkctl/keystore/azurekv/fakeazkv"
)

// The fake speaks Key Vault's protocol before any key is involved: the
// api-version is required, a request without a token gets the
// authentication challenge, a wrong token is refused.
func TestProtocol(t *testing.T) {
	s, err := fakeazkv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := s.Client()
	do := func(path, token string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "https://myvault.vault.azure.net"+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body map[string]any
		json.Unmarshal(b, &body)
		return resp, body
	}
	if resp, _ := do("/keys", fakeazkv.Token); resp.StatusCode != 400 {
		t.Errorf("no api-version: %d, want 400", resp.StatusCode)
	}
	resp, _ := do("/keys?api-version=7.4", "")
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(ch, `authorization="https://login.microsoftonline.com/`+fakeazkv.Tenant+`"`) || !strings.Contains(ch, `resource="https://vault.azure.net"`) {
		t.Errorf("no token: %d %q", resp.StatusCode, ch)
	}
	if resp, _ := do("/keys?api-version=7.4", "someone-elses"); resp.StatusCode != 401 {
		t.Errorf("wrong token: %d, want 401", resp.StatusCode)
	}
	resp, body := do("/keys/missing?api-version=2025-07-01", fakeazkv.Token)
	if e, _ := body["error"].(map[string]any); resp.StatusCode != 404 || e["code"] != "KeyNotFound" {
		t.Errorf("missing key: %d %v", resp.StatusCode, body)
	}
	if s.Challenges() != 1 || s.Count("get") != 1 {
		t.Errorf("challenges %d, gets %d", s.Challenges(), s.Count("get"))
	}
}
