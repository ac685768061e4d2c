package keystore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jwkctl/jwkctl/keystore"
)

func TestParseAWSKMS(t *testing.T) {
	const id = "1234abcd-12ab-34cd-56ef-1234567890ab"
	arn := "arn:aws:kms:eu-north-1:111122223333:key/" + id
	for _, tc := range []struct {
		in, key, region, profile, str string
		alias                         string
	}{
		{"awskms:///alias/helseid?region=eu-north-1", "alias/helseid", "eu-north-1", "", "awskms:///alias/helseid?region=eu-north-1", "alias/helseid"},
		{"awskms:///alias/helseid", "alias/helseid", "", "", "awskms:///alias/helseid", "alias/helseid"},
		{"awskms:///" + id + "?region=eu-west-1&profile=prod", id, "eu-west-1", "prod", "awskms:///" + id + "?profile=prod&region=eu-west-1", ""},
		{"awskms:///" + arn, arn, "eu-north-1", "", "awskms:///" + arn, ""},
		{"AWSKMS:///" + arn + "?region=eu-north-1", arn, "eu-north-1", "", "awskms:///" + arn, ""},
		{"awskms:///arn:aws:kms:us-east-2:111122223333:alias/team/helseid", "arn:aws:kms:us-east-2:111122223333:alias/team/helseid", "us-east-2", "", "awskms:///arn:aws:kms:us-east-2:111122223333:alias/team/helseid", "alias/team/helseid"},
		{"awskms:///mrk-1234abcd12ab34cd56ef1234567890ab", "mrk-1234abcd12ab34cd56ef1234567890ab", "", "", "awskms:///mrk-1234abcd12ab34cd56ef1234567890ab", ""},
		{"awskms:///alias/", "alias/", "", "", "awskms:///alias/", "alias/"},
	} {
		u, err := keystore.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		n := u.AWSKMS
		if u.Scheme != "awskms" || n.Key != tc.key || n.Region != tc.region || n.Profile != tc.profile || n.AliasName() != tc.alias {
			t.Errorf("Parse(%q) = %+v", tc.in, n)
		}
		if u.String() != tc.str {
			t.Errorf("Parse(%q).String() = %s, want %s", tc.in, u, tc.str)
		}
		if back, err := keystore.Parse(u.String()); err != nil || back.String() != u.String() {
			t.Errorf("round trip of %s: %v %v", u, back, err)
		}
	}
}

func TestParseAWSKMSRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"awskms:alias/x", "look like"},
		{"awskms://localhost:4566/alias/x", "--kms-endpoint"},
		{"awskms:///", "names no key"},
		{"awskms:///helseid", "not an AWS KMS key ID"},
		{"awskms:///alias/bad name", "not an AWS KMS alias"},
		{"awskms:///arn:aws:kms:eu-north-1:111122223333:key/nope", "not an AWS KMS key or alias ARN"},
		{"awskms:///arn:aws:kms:eu-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab?region=eu-west-1", "region eu-north-1 but"},
		{"awskms:///alias/x?region=Europe", "not an AWS region"},
		{"awskms:///alias/x?region=eu-north-1&region=eu-west-1", "more than once"},
		{"awskms:///alias/x#frag", "fragment"},
	} {
		_, err := keystore.Parse(tc.in)
		if !errors.Is(err, keystore.ErrBadURI) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want ErrBadURI mentioning %q", tc.in, err, tc.want)
		}
	}
}

// A value put in an unknown parameter (someone trying secret_access_key=…)
// is never echoed.
func TestParseAWSKMSNeverEchoesParameterValues(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	_, err := keystore.Parse("awskms:///alias/x?secret_access_key=" + secret)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "secret_access_key") {
		t.Fatalf("error %v", err)
	}
	_, err = keystore.Parse("awskms:///alias/x?profile=" + secret + "%20x")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("error %v", err)
	}
}
