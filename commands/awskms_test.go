package commands

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore/awskms/fakeawskms"
	"github.com/jwkctl/jwkctl/keystore/awskms/localkms"
)

// AWS KMS from the command line against the in-process fake.
func TestAWSKMSCLI(t *testing.T) {
	_, addr, stop, err := fakeawskms.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	awsKMSEndToEnd(t, addr, "eu-north-1", "helseid")
}

// The same against local-kms, an AWS KMS emulator jwkctl did not write.
func TestAWSKMSCLILocalKMS(t *testing.T) {
	ep, region := localkms.Endpoint(t)
	awsKMSEndToEnd(t, ep, region, localkms.Unique("helseid"))
}

// awsKMSEndToEnd: generate in KMS, export the public JWK, sign an
// assertion that go-jose verifies with that JWK alone, get a DPoP token
// from the dev STS, list, disable / enable, delete.
func awsKMSEndToEnd(t *testing.T, endpoint, region, alias string) {
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	t.Setenv("JWKCTL_KMS_ENDPOINT", endpoint)
	key := "awskms:///alias/" + alias + "?region=" + region
	out, errOut, code := runCLI(t, "keys", "generate", "--key", key, "--alg", "ES256")
	if code != 0 {
		t.Fatalf("keys generate: %s", errOut)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &jwk); err != nil || !jwk.IsPublic() || jwk.Algorithm != "ES256" {
		t.Fatalf("no public JWK: %v\n%s", err, out)
	}
	if !strings.Contains(errOut, key+" created (kid "+jwk.KeyID+")") {
		t.Fatalf("stderr does not name the key: %s", errOut)
	}
	// The alias is never reused: a second generate is refused, one line.
	if _, errOut, code = runCLI(t, "keys", "generate", "--key", key, "--alg", "ES256"); code != 1 || !strings.Contains(errOut, "already names key") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("generate over an alias: %d %q", code, errOut)
	}
	out, _, code = runCLI(t, "keys", "public", "--key", key)
	var pub jose.JSONWebKey
	if code != 0 || json.Unmarshal([]byte(out), &pub) != nil || pub.KeyID != jwk.KeyID {
		t.Fatalf("keys public: %d %s", code, out)
	}

	out, errOut, code = runCLI(t, "assertion", "--key", key, "--client-id", "aws-client", "--audience", "https://sts.example")
	if code != 0 {
		t.Fatalf("assertion: %s", errOut)
	}
	tok, err := jwt.ParseSigned(strings.TrimSpace(out), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.Claims
	if err := tok.Claims(pub, &claims); err != nil {
		t.Fatalf("the assertion does not verify with the exported JWK: %v", err)
	}
	if claims.Subject != "aws-client" || tok.Headers[0].KeyID != jwk.KeyID {
		t.Fatalf("claims %+v kid %s", claims, tok.Headers[0].KeyID)
	}

	sts, stopSTS, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stopSTS()
	if err := sts.RegisterClient("aws-client", []jose.JSONWebKey{jwk}, []string{devsts.DemoScope}); err != nil {
		t.Fatal(err)
	}
	tokenArgs := []string{"token", "--key", key, "--client-id", "aws-client", "--issuer", sts.Issuer(), "--scope", devsts.DemoScope, "--raw"}
	out, errOut, code = runCLI(t, "token", "--key", key, "--client-id", "aws-client", "--issuer", sts.Issuer(), "--scope", devsts.DemoScope, "--dpop")
	var resp map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &resp) != nil || resp["token_type"] != "DPoP" {
		t.Fatalf("token with the AWS KMS key: %d %s %s", code, out, errOut)
	}

	out, _, code = runCLI(t, "keys", "list", "--key", key)
	if code != 0 || !strings.Contains(out, key) || !strings.Contains(out, "Enabled") || !strings.Contains(out, jwk.KeyID) {
		t.Fatalf("keys list:\n%s", out)
	}
	_, errOut, code = runCLI(t, "keys", "disable", "--key", key)
	if code == 0 || !strings.Contains(errOut, "refusing to disable") {
		t.Fatalf("disable without --yes: %d %s", code, errOut)
	}
	if _, errOut, code = runCLI(t, "keys", "disable", "--key", key, "--yes"); code != 0 {
		t.Fatalf("disable: %s", errOut)
	}
	if _, errOut, code = runCLI(t, tokenArgs...); code != 1 || !strings.Contains(errOut, "disabled") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("token with a disabled key: %d %q", code, errOut)
	}
	if _, errOut, code = runCLI(t, "keys", "enable", "--key", key); code != 0 {
		t.Fatalf("enable: %s", errOut)
	}
	if out, errOut, code = runCLI(t, tokenArgs...); code != 0 || out == "" {
		t.Fatalf("token after enable: %d %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "keys", "delete", "--key", key)
	if code == 0 || !strings.Contains(errOut, "refusing to delete") {
		t.Fatalf("delete without --yes: %d %s", code, errOut)
	}
	if _, errOut, code = runCLI(t, "keys", "delete", "--key", key, "--yes"); code != 0 || !strings.Contains(errOut, "for deletion in 30 days") {
		t.Fatalf("delete: %d %s", code, errOut)
	}
	if _, errOut, code = runCLI(t, tokenArgs...); code != 1 || !strings.Contains(errOut, "scheduled for deletion") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("token with a deleted key: %d %q", code, errOut)
	}
	if _, errOut, code = runCLI(t, "keys", "delete", "--key", key, "--yes"); code != 1 || !strings.Contains(errOut, "is scheduled for deletion (aws kms cancel-key-deletion restores it)") {
		t.Fatalf("delete twice: %d %q", code, errOut)
	}
}

// Bad input and faults: one jwkctl: line, exit 1, nothing created.
func TestAWSKMSCLIErrors(t *testing.T) {
	kms, addr, stop, err := fakeawskms.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	t.Setenv("JWKCTL_KMS_ENDPOINT", addr)
	key := "awskms:///alias/helseid?region=eu-north-1"
	if _, errOut, code := runCLI(t, "keys", "generate", "--key", key, "--alg", "ES256"); code != 0 {
		t.Fatal(errOut)
	}
	if _, err := kms.AddKey("eu-north-1", "RSA_2048", "ENCRYPT_DECRYPT", "alias/encrypt"); err != nil {
		t.Fatal(err)
	}
	keys := len(kms.Keys())
	for _, tc := range []struct {
		name   string
		faults fakeawskms.Faults
		args   []string
		want   string
	}{
		{"wrong region", fakeawskms.Faults{}, []string{"keys", "public", "--key", "awskms:///alias/helseid?region=eu-west-1"}, "does not exist in AWS KMS in region eu-west-1"},
		{"wrong usage", fakeawskms.Faults{}, []string{"keys", "public", "--key", "awskms:///alias/encrypt?region=eu-north-1"}, "ENCRYPT_DECRYPT key, not SIGN_VERIFY"},
		{"throttled", fakeawskms.Faults{Throttle: 100}, []string{"assertion", "--key", key, "--client-id", "c", "--audience", "https://sts.example"}, "throttled the request, still after 3 attempts"},
		{"denied", fakeawskms.Faults{FailWith: "AccessDeniedException", Ops: []string{"Sign"}}, []string{"assertion", "--key", key, "--client-id", "c", "--audience", "https://sts.example"}, "needs IAM permission kms:Sign"},
		{"no CreateKey", fakeawskms.Faults{FailWith: "AccessDeniedException", Ops: []string{"CreateKey"}}, []string{"keys", "generate", "--key", "awskms:///alias/new?region=eu-north-1", "--alg", "ES256"}, "kms:CreateKey"},
		{"no CreateAlias", fakeawskms.Faults{FailWith: "AccessDeniedException", Ops: []string{"CreateAlias"}}, []string{"keys", "generate", "--key", "awskms:///alias/new?region=eu-north-1", "--alg", "ES256"}, "scheduled for deletion in 7 days"},
		{"by key id", fakeawskms.Faults{}, []string{"keys", "generate", "--key", "awskms:///1234abcd-12ab-34cd-56ef-1234567890ab?region=eu-north-1"}, "name the new key by an alias"},
		{"endpoint in the URI", fakeawskms.Faults{}, []string{"keys", "public", "--key", "awskms://localhost:4566/alias/helseid"}, "--kms-endpoint"},
		{"http off loopback", fakeawskms.Faults{}, []string{"keys", "public", "--key", key, "--kms-endpoint", "http://kms.example:80"}, "plain http only to loopback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kms.SetFaults(tc.faults)
			defer kms.SetFaults(fakeawskms.Faults{})
			_, errOut, code := runCLI(t, tc.args...)
			// generate prints a progress line before the work starts.
			errOut = strings.TrimPrefix(errOut, "generating EC P-256 key for ES256 in awskms:///alias/new?region=eu-north-1…\n")
			if code != 1 || !strings.HasPrefix(errOut, "jwkctl: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want one jwkctl: line mentioning %q", code, errOut, tc.want)
			}
		})
	}
	// The CreateAlias failure made a key, now pending deletion; nothing
	// else was created, and no alias/new exists.
	pending := 0
	for _, arn := range kms.Keys() {
		if kms.KeyState(arn) == "PendingDeletion" {
			pending++
		}
	}
	if len(kms.Keys()) != keys+1 || pending != 1 {
		t.Fatalf("%d keys (%d pending deletion) after the refusals, want %d and 1", len(kms.Keys()), pending, keys+1)
	}
	if _, errOut, code := runCLI(t, "keys", "public", "--key", "awskms:///alias/new?region=eu-north-1"); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("alias/new: %d %s", code, errOut)
	}
}

// Rotation with the new key born in AWS KMS: the current key is an AWS
// KMS key, and rotate run makes the next one under a dated alias beside
// it, uploads its JWK to the dev STS's Selvbetjening, switches the
// profile and gets a token with it; retiring disables the old key.
func TestAWSKMSRotation(t *testing.T) {
	_, addr, stop, err := fakeawskms.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	awsKMSRotation(t, addr, "eu-north-1", "helseid")
}

func TestAWSKMSRotationLocalKMS(t *testing.T) {
	ep, region := localkms.Endpoint(t)
	awsKMSRotation(t, ep, region, localkms.Unique("rotating"))
}

func awsKMSRotation(t *testing.T, endpoint, region, alias string) {
	dir := t.TempDir()
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "none.yaml"))
	t.Setenv("JWKCTL_KMS_ENDPOINT", endpoint)
	key := "awskms:///alias/" + alias + "?region=" + region
	out, errOut, code := runCLI(t, "keys", "generate", "--key", key, "--alg", "ES256")
	if code != 0 {
		t.Fatalf("keys generate: %s", errOut)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &jwk); err != nil {
		t.Fatal(err)
	}
	sts, stopSTS, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stopSTS()
	sts.EnableSelvbetjening()
	if err := sts.RegisterClient("rot-client", []jose.JSONWebKey{jwk}, []string{devsts.DemoScope, devsts.SelvbetjeningScope}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	f.Set("prod", &profile.Profile{Issuer: sts.Issuer(), ClientID: "rot-client", Key: key, KMSEndpoint: endpoint, DPoP: new(true), Scopes: []string{devsts.DemoScope}})
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JWKCTL_CONFIG", cfg)
	t.Setenv("JWKCTL_JOURNAL_DIR", filepath.Join(dir, "journal"))
	if _, errOut, code = runCLI(t, "rotate", "run", "--profile", "prod", "--overlap", "1ns"); code != 0 {
		t.Fatalf("rotate run: %s", errOut)
	}
	pf, err := profile.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	newKey := pf.Profiles["prod"].Key
	if !strings.HasPrefix(newKey, "awskms:///alias/"+alias+"-20") || !strings.HasSuffix(newKey, "?region="+region) {
		t.Fatalf("the profile's new key is %s, want a dated alias beside %s", newKey, key)
	}
	out, errOut, code = runCLI(t, "keys", "public", "--key", newKey)
	var newJWK jose.JSONWebKey
	if code != 0 || json.Unmarshal([]byte(out), &newJWK) != nil || newJWK.KeyID == jwk.KeyID {
		t.Fatalf("new key: %d %s %s", code, out, errOut)
	}
	if out, errOut, code = runCLI(t, "token", "--profile", "prod", "--raw"); code != 0 || out == "" {
		t.Fatalf("token with the rotated key: %s", errOut)
	}
	time.Sleep(time.Millisecond) // past the 1ns overlap
	if _, errOut, code = runCLI(t, "rotate", "resume", "--profile", "prod", "--retire", "--retire-by", "disable", "--yes"); code != 0 {
		t.Fatalf("retire: %s", errOut)
	}
	out, _, _ = runCLI(t, "keys", "list", "--key", key)
	if !strings.Contains(out, "Disabled") {
		t.Fatalf("the old key is not disabled:\n%s", out)
	}
}

// The AWS SDK's configuration is loaded only when an awskms: key is used:
// with a broken AWS setup, other keys work, and an AWS key fails saying why.
func TestAWSConfigLoadedOnlyForAWSKeys(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "none.yaml"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "aws-config"))
	t.Setenv("AWS_PROFILE", "no-such-profile")
	key := "file:" + filepath.Join(dir, "k.json")
	if _, errOut, code := runCLI(t, "keys", "generate", "--key", key, "--alg", "ES256"); code != 0 {
		t.Fatalf("a file key with a broken AWS setup: %s", errOut)
	}
	if _, errOut, code := runCLI(t, "keys", "public", "--key", key); code != 0 {
		t.Fatalf("a file key with a broken AWS setup: %s", errOut)
	}
	_, errOut, code := runCLI(t, "keys", "public", "--key", "awskms:///alias/x?region=eu-north-1")
	if code != 1 || !strings.Contains(errOut, "load the AWS configuration") || !strings.Contains(errOut, "no-such-profile") {
		t.Fatalf("an AWS key with a broken AWS setup: %d %s", code, errOut)
	}
}

// No credentials anywhere in the SDK's chain (instance metadata switched
// off, so nothing leaves this machine): one line naming what was tried.
func TestAWSKMSCLIMissingCredentials(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "none.yaml"))
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_EC2_METADATA_DISABLED": "true",
		"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
	} {
		t.Setenv(k, v)
	}
	_, errOut, code := runCLI(t, "assertion", "--key", "awskms:///alias/helseid?region=eu-north-1", "--client-id", "c", "--audience", "https://sts.example")
	if code != 1 || !strings.HasPrefix(errOut, "jwkctl: ") || strings.Count(errOut, "\n") != 1 ||
		!strings.Contains(errOut, "no AWS credentials found") || !strings.Contains(errOut, "web identity (IRSA") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
