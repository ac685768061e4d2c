package assertion_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/signer"
)

// trustFramework is a trust-framework detail as NHN's samples write one.
const trustFramework = `{
  "type": "nhn:tillitsrammeverk:parameters",
  "practitioner": {"authorization": {"code": "LE", "system": "urn:oid:2.16.578.1.12.4.1.1.9060"},
                   "legal_entity": {"id": "994598759", "system": "urn:oid:2.16.578.1.12.4.1.4.101"}},
  "care_relationship": {"purpose_of_use": {"code": "TREAT", "system": "urn:oid:2.16.840.1.113883.1.11.20448"}}
}`

func TestParseDetails(t *testing.T) {
	good := []struct {
		name, in string
		n        int
	}{
		{"one object", trustFramework, 1},
		{"array of two", `[{"type":"a"},` + trustFramework + `]`, 2},
		{"surrounding space", "\n [ {\"type\":\"x\",\"v\":[1,2]} ]\n", 1},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			d, err := assertion.ParseDetails([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(d) != tc.n {
				t.Fatalf("got %d details, want %d", len(d), tc.n)
			}
		})
	}
	bad := []struct{ name, in, want string }{
		{"empty", "  \n", "empty"},
		{"not JSON", `{"type": "x",`, "not valid JSON"},
		{"a string", `"nhn:sfm:journal-id"`, "the detail is not a JSON object"},
		{"null", `null`, "the detail is not a JSON object"},
		{"empty array", `[]`, "the array is empty"},
		{"array of strings", `["a"]`, "detail 1 is not a JSON object"},
		{"broken array", `[{"type":"a"}`, "not a JSON array"},
		{"no type", `{"value":{"journal_id":"x"}}`, `the detail has no "type" string`},
		{"type not a string", `[{"type":"a"},{"type":7}]`, `detail 2 has no "type" string`},
		{"empty type", `{"type":""}`, `the detail has no "type" string`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := assertion.ParseDetails([]byte(tc.in))
			if !errors.Is(err, assertion.ErrDetails) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrDetails saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// TestAssertionDetailsClaim decodes signed assertions (verified with the
// public JWK only) and compares assertion_details with what HelseID.Library
// writes: one detail as an object, several as an array.
func TestAssertionDetailsClaim(t *testing.T) {
	ec, _ := keys(t)
	s, err := signer.New(ec, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	// The public half straight from the key, not from our signer.
	pub := jose.JSONWebKey{Key: ec.Public()}
	org, err := assertion.OrgDetails("994598759", "")
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := assertion.ParseDetails([]byte(trustFramework))
	if err != nil {
		t.Fatal(err)
	}
	sfm := `{"type":"nhn:sfm:journal-id","value":{"journal_id":"8079c363-59b0-4a06-8385-d547a75c4c32"}}`
	orgJSON := `{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:"}}}}`
	for _, tc := range []struct {
		name    string
		details []any
		want    string
	}{
		{"SFM alone is an object", assertion.SFMJournal("8079c363-59b0-4a06-8385-d547a75c4c32"), sfm},
		{"file detail alone is an object", fromFile, trustFramework},
		{"org, SFM and file are an array", append(append(append([]any{}, org...), assertion.SFMJournal("8079c363-59b0-4a06-8385-d547a75c4c32")...), fromFile...),
			"[" + orgJSON + "," + sfm + "," + trustFramework + "]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ac, err := assertion.NewClient(s, assertion.Config{ClientID: "c", Audience: "https://helseid-sts.test.nhn.no", Details: tc.details, Now: func() time.Time { return fixedNow }})
			if err != nil {
				t.Fatal(err)
			}
			jws, err := ac.Sign()
			if err != nil {
				t.Fatal(err)
			}
			_, claims := verify(t, jws, &pub, jose.ES256)
			var want any
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if got := claims["assertion_details"]; !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				t.Errorf("assertion_details\n got %s\nwant %s", g, tc.want)
			}
			if claims["iss"] != "c" || claims["sub"] != "c" || claims["aud"] != "https://helseid-sts.test.nhn.no" {
				t.Errorf("iss/sub/aud = %v/%v/%v", claims["iss"], claims["sub"], claims["aud"])
			}
		})
	}
	if assertion.SFMJournal("") != nil {
		t.Error("an empty journal id gave a detail")
	}
}
