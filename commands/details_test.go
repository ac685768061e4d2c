package commands

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/agent"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/token"
)

const (
	testJournalID = "8079c363-59b0-4a06-8385-d547a75c4c32"
	sfmDetail     = `{"type":"nhn:sfm:journal-id","value":{"journal_id":"` + testJournalID + `"}}`
	trustDetail   = `{"type":"nhn:tillitsrammeverk:parameters","practitioner":{"legal_entity":{"id":"994598759","system":"urn:oid:2.16.578.1.12.4.1.4.101"}}}`
)

// sameJSON compares two JSON texts as values.
func sameJSON(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("got %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(g, w)
}

func writeDetails(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "details.json")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// jwkctl assertion: one detail is an object, several an array, verified
// with the public JWK.
func TestAssertionCommandDetails(t *testing.T) {
	key, pub := testKey(t)
	file := writeDetails(t, "[\n  "+trustDetail+"\n]\n")
	base := []string{"assertion", "--key", key, "--client-id", "c", "--audience", "https://helseid-sts.test.nhn.no"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sfm-journal-id", testJournalID}, sfmDetail},
		{[]string{"--assertion-details", file}, trustDetail},
		{[]string{"--sfm-journal-id", testJournalID, "--assertion-details", file}, "[" + sfmDetail + "," + trustDetail + "]"},
	} {
		out, errs, code := runCLI(t, append(base, tc.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errs)
		}
		jws, err := jose.ParseSignedCompact(strings.TrimSpace(out), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify(pub)
		if err != nil {
			t.Fatalf("signature: %v", err)
		}
		var claims map[string]json.RawMessage
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		if !sameJSON(t, string(claims["assertion_details"]), tc.want) {
			t.Errorf("%v: assertion_details\n got %s\nwant %s", tc.args, claims["assertion_details"], tc.want)
		}
	}
}

// jwkctl token: the details from flags and from a profile reach the token
// endpoint; a bad file is one clear usage error and nothing is sent.
func TestTokenDetailsFromFlagsAndProfile(t *testing.T) {
	dir := t.TempDir()
	key, pub := testKey(t)
	s := newSTS(t, pub)
	good := writeDetails(t, trustDetail)
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(filepath.Join(dir, "trust.json"), []byte(trustDetail), 0o600); err != nil {
		t.Fatal(err)
	}
	// A relative assertion_details_file is relative to the config file.
	yaml := "profiles:\n  sfm:\n    issuer: " + s.srv.URL + "\n    client_id: cli-client\n    key: " + key +
		"\n    sfm_journal_id: " + testJournalID + "\n    assertion_details_file: trust.json\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "none.yaml"))
	base := []string{"token", "--key", key, "--client-id", "cli-client", "--issuer", s.srv.URL}

	if _, errs, code := runCLI(t, append(base, "--sfm-journal-id", testJournalID, "--assertion-details", good)...); code != 0 {
		t.Fatalf("flags: exit %d: %s", code, errs)
	}
	if _, errs, code := runCLI(t, "token", "--config", cfg, "--profile", "sfm"); code != 0 {
		t.Fatalf("profile: exit %d: %s", code, errs)
	}
	want := "[" + sfmDetail + "," + trustDetail + "]"
	if len(s.details) != 2 || !sameJSON(t, s.details[0], want) || !sameJSON(t, s.details[1], want) {
		t.Fatalf("the token endpoint got assertion_details %v, want twice %s", s.details, want)
	}

	for _, tc := range []struct{ name, text, want string }{
		{"no type", `[{"type":"a"},{"value":1}]`, `detail 2 has no "type" string`},
		{"not JSON", `{"type":`, "not valid JSON"},
	} {
		bad := writeDetails(t, tc.text)
		_, errs, code := runCLI(t, append(base, "--assertion-details", bad)...)
		if code != ExitUsage || !strings.HasPrefix(errs, "jwkctl: --assertion-details: "+bad) || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q", tc.name, code, errs)
		}
	}
	_, errs, code := runCLI(t, append(base, "--assertion-details", filepath.Join(dir, "missing.json"))...)
	if code != ExitUsage || !strings.Contains(errs, "missing.json") || strings.Count(errs, "\n") != 1 {
		t.Errorf("missing file: exit %d, stderr %q", code, errs)
	}
	if len(s.details) != 2 {
		t.Errorf("bad details files still sent %d requests", len(s.details)-2)
	}
}

// The agent builds its clients from the same profile entries.
func TestAgentProfileDetails(t *testing.T) {
	dir := t.TempDir()
	key, pub := testKey(t)
	s := newSTS(t, pub)
	if err := os.WriteFile(filepath.Join(dir, "trust.json"), []byte(trustDetail), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"value":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	f.Set("sfm", &profile.Profile{Issuer: s.srv.URL, ClientID: "cli-client", Key: key, SFMJournalID: testJournalID, AssertionDetailsFile: filepath.Join(dir, "trust.json")})
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ps, err := loadAgentProfiles(context.Background(), cfg, nil, keystore.Options{}, agent.NewMetrics(), log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ps[0].Client.Exchange(t.Context(), token.Request{}); err != nil {
		t.Fatal(err)
	}
	if want := "[" + sfmDetail + "," + trustDetail + "]"; len(s.details) != 1 || !sameJSON(t, s.details[0], want) {
		t.Fatalf("assertion_details %v, want %s", s.details, want)
	}

	f.Profiles["sfm"].AssertionDetailsFile = filepath.Join(dir, "bad.json")
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	_, err = loadAgentProfiles(context.Background(), cfg, nil, keystore.Options{}, agent.NewMetrics(), log)
	if err == nil || !strings.Contains(err.Error(), "profile sfm") || !strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), `no "type" string`) {
		t.Fatalf("bad details file: %v", err)
	}
}
