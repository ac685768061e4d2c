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
	"github.com/jwkctl/jwkctl/keystore/azurekv/azurekvtest"
	"github.com/jwkctl/jwkctl/keystore/azurekv/fakeazkv"
)

// startFakeVault starts the fake Key Vault and makes the azurekv backend
// trust it; JWKCTL_KMS_ENDPOINT points jwkctl at it.
func startFakeVault(t *testing.T) *fakeazkv.Server {
	t.Helper()
	s, opts := azurekvtest.Start(t)
	t.Setenv("JWKCTL_KMS_ENDPOINT", opts.Endpoint)
	return s
}

// Azure Key Vault end to end from the CLI: generate in the fake vault,
// export the public JWK, sign an assertion an independent verifier checks
// with that JWK, get a token from the dev STS, rotate into a new key born
// in the same vault.
func TestAzureKVEndToEnd(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "none.yaml"))
	kv := startFakeVault(t)
	key := "azurekv://jwkctl-test.vault.azure.net/keys/helseid"
	out, errOut, code := runCLI(t, "keys", "generate", "--key", key, "--alg", "ES256", "--protection-level", "hsm")
	if code != 0 {
		t.Fatalf("keys generate: %s", errOut)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &jwk); err != nil || !jwk.IsPublic() || jwk.Algorithm != "ES256" {
		t.Fatalf("no public ES256 JWK: %v\n%s", err, out)
	}
	i := strings.Index(errOut, key+"/")
	if i < 0 || !strings.Contains(errOut, " created") {
		t.Fatalf("stderr does not name the key version: %s", errOut)
	}
	versioned := strings.Fields(errOut[i:])[0]
	// The name is taken now: a second generate is refused before anything
	// is created.
	creates := kv.Count("create")
	if _, errOut, code = runCLI(t, "keys", "generate", "--key", key, "--alg", "ES256"); code != 1 || !strings.Contains(errOut, "already exists") || kv.Count("create") != creates {
		t.Fatalf("generate on a taken name: %d %s", code, errOut)
	}
	// keys public, by name and by version, gives the same JWK (the alg
	// comes from the key's jwkctl-alg tag).
	for _, k := range []string{key, versioned} {
		out, errOut, code = runCLI(t, "keys", "public", "--key", k)
		var again jose.JSONWebKey
		if code != 0 || json.Unmarshal([]byte(out), &again) != nil || again.KeyID != jwk.KeyID || again.Algorithm != "ES256" {
			t.Fatalf("keys public --key %s: %d %s %s", k, code, out, errOut)
		}
	}

	// A client assertion, verified by go-jose with the exported JWK only;
	// the process reads the key once and makes one Sign request.
	gets, signs := kv.Count("get"), kv.Count("sign")
	out, errOut, code = runCLI(t, "assertion", "--key", versioned, "--client-id", "kv-client", "--audience", "https://sts.example")
	if code != 0 {
		t.Fatalf("assertion: %s", errOut)
	}
	if g, s := kv.Count("get")-gets, kv.Count("sign")-signs; g != 1 || s != 1 {
		t.Fatalf("jwkctl assertion made %d GetKey and %d Sign requests, want 1 and 1", g, s)
	}
	tok, err := jwt.ParseSigned(strings.TrimSpace(out), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.Claims
	if err := tok.Claims(jwk, &claims); err != nil {
		t.Fatalf("assertion does not verify with the exported JWK: %v", err)
	}
	if claims.Issuer != "kv-client" || claims.Subject != "kv-client" || tok.Headers[0].KeyID != jwk.KeyID {
		t.Fatalf("claims %+v kid %s", claims, tok.Headers[0].KeyID)
	}

	// A DPoP-bound token from the dev STS.
	sts, stopSTS, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stopSTS()
	sts.EnableSelvbetjening()
	if err := sts.RegisterClient("kv-client", []jose.JSONWebKey{jwk}, []string{devsts.DemoScope, devsts.SelvbetjeningScope}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI(t, "token", "--key", versioned, "--client-id", "kv-client", "--issuer", sts.Issuer(), "--scope", devsts.DemoScope, "--dpop")
	if code != 0 {
		t.Fatalf("token with the Key Vault key: %s", errOut)
	}
	var resp map[string]any
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp["token_type"] != "DPoP" {
		t.Fatalf("token response %s (%v)", out, err)
	}
	out, _, code = runCLI(t, "keys", "list", "--key", "azurekv://jwkctl-test.vault.azure.net")
	if code != 0 || !strings.Contains(out, versioned) || !strings.Contains(out, "ENABLED") || !strings.Contains(out, jwk.KeyID) {
		t.Fatalf("keys list:\n%s", out)
	}

	// Rotation: the new key is a new key in the same vault, uploaded to
	// the fake Selvbetjening, and the profile switches to it.
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	f.Set("prod", &profile.Profile{Issuer: sts.Issuer(), ClientID: "kv-client", Key: versioned, KMSEndpoint: kv.URL(), DPoP: new(true), Scopes: []string{devsts.DemoScope}})
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JWKCTL_CONFIG", cfg)
	t.Setenv("JWKCTL_JOURNAL_DIR", filepath.Join(dir, "journal"))
	creates = kv.Count("create")
	if out, errOut, code = runCLI(t, "rotate", "run", "--profile", "prod", "--overlap", "0", "--retire", "--retire-by", "disable", "--yes"); code != 0 || !strings.Contains(out, "retired") {
		t.Fatalf("rotate run: %d\n%s%s", code, out, errOut)
	}
	if kv.Count("create") != creates+1 {
		t.Fatalf("rotation made %d keys in the vault, want 1", kv.Count("create")-creates)
	}
	pf, err := profile.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	newKey := pf.Profiles["prod"].Key
	if !strings.HasPrefix(newKey, key+"-"+time.Now().UTC().Format("2006")) {
		t.Fatalf("the profile uses %s, want a new key in the same vault", newKey)
	}
	out, errOut, code = runCLI(t, "token", "--profile", "prod", "--raw")
	if code != 0 || out == "" {
		t.Fatalf("token with the rotated key: %d %s", code, errOut)
	}
	// The old key was retired by disabling it.
	_, errOut, code = runCLI(t, "keys", "public", "--key", versioned)
	if code != 1 || !strings.Contains(errOut, "disabled") {
		t.Fatalf("the old key after retire: %d %s", code, errOut)
	}
}

// Bad input and faults: each one clear line, exit 1.
func TestAzureKVErrorsCLI(t *testing.T) {
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	kv := startFakeVault(t)
	key := "azurekv://jwkctl-test.vault.azure.net/keys/errs"
	out, errOut, code := runCLI(t, "keys", "generate", "--key", key, "--alg", "PS256", "--bits", "2048")
	if code != 0 {
		t.Fatalf("keys generate: %s", errOut)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &jwk); err != nil {
		t.Fatal(err)
	}
	if err := kv.AddKey("wrap-only", "RSA", []string{"wrapKey", "unwrapKey"}); err != nil {
		t.Fatal(err)
	}
	sts, stopSTS, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stopSTS()
	if err := sts.RegisterClient("kv-client", []jose.JSONWebKey{jwk}, []string{devsts.DemoScope}); err != nil {
		t.Fatal(err)
	}
	token := []string{"token", "--key", key, "--client-id", "kv-client", "--issuer", sts.Issuer(), "--scope", devsts.DemoScope, "--raw"}
	if out, errOut, code = runCLI(t, token...); code != 0 || out == "" {
		t.Fatalf("token: %d %s", code, errOut)
	}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		faults fakeazkv.Faults
		before func()
		args   []string
		want   string
	}{
		{name: "wrong vault host", env: map[string]string{"JWKCTL_KMS_ENDPOINT": ""}, args: []string{"keys", "public", "--key", "azurekv://vault.example.com/keys/errs"}, want: "is not a Key Vault host"},
		{name: "remote endpoint", env: map[string]string{"JWKCTL_KMS_ENDPOINT": "https://kv.example.com"}, args: []string{"keys", "public", "--key", key}, want: "only a loopback https address"},
		{name: "missing credentials", env: map[string]string{"JWKCTL_KMS_ENDPOINT": "", "AZURE_TOKEN_CREDENTIALS": "dev", "PATH": t.TempDir(), "HOME": t.TempDir()},
			args: token, want: "no Azure token: DefaultAzureCredential tried AzureCLICredential"},
		{name: "key that may not sign", args: []string{"keys", "public", "--key", "azurekv://jwkctl-test.vault.azure.net/keys/wrap-only"}, want: "may not sign (its key_ops are wrapKey, unwrapKey)"},
		{name: "throttled", faults: fakeazkv.Faults{Throttle: 100, RetryAfter: time.Millisecond}, args: token, want: "Key Vault is throttling requests (429"},
		{name: "no sign permission", faults: fakeazkv.Faults{Forbid: "sign"}, args: token, want: "permission denied: sign with " + key},
		{name: "no create permission", faults: fakeazkv.Faults{Forbid: "create"}, args: []string{"keys", "generate", "--key", key + "2", "--alg", "ES256"}, want: "Microsoft.KeyVault/vaults/keys/create/action"},
		{name: "answer about another key", faults: fakeazkv.Faults{WrongKID: true}, args: token, want: "refusing an answer about another key"},
		{name: "disabled key", before: func() {
			if _, errOut, code := runCLI(t, "keys", "disable", "--key", key, "--yes"); code != 0 {
				t.Fatalf("disable: %s", errOut)
			}
		}, args: token, want: "is disabled (jwkctl keys enable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if tc.before != nil {
				tc.before()
			}
			kv.SetFaults(tc.faults)
			defer kv.SetFaults(fakeazkv.Faults{})
			_, errOut, code := runCLI(t, tc.args...)
			// generate prints its progress line before the error.
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			last := lines[len(lines)-1]
			if code != 1 || !strings.HasPrefix(last, "jwkctl: ") || !strings.Contains(last, tc.want) || strings.Count(errOut, "jwkctl: ") != 1 {
				t.Fatalf("exit %d, stderr %q; want exit 1 and one jwkctl: line with %q", code, errOut, tc.want)
			}
		})
	}
	// Enabled again, the key signs.
	if _, errOut, code = runCLI(t, "keys", "enable", "--key", key); code != 0 {
		t.Fatalf("enable: %s", errOut)
	}
	if out, errOut, code = runCLI(t, token...); code != 0 || out == "" {
		t.Fatalf("token after enable: %d %s", code, errOut)
	}
	// Delete asks first, and says how long the key stays recoverable.
	if _, errOut, code = runCLI(t, "keys", "delete", "--key", key); code == 0 {
		t.Fatalf("delete without --yes: %s", errOut)
	}
	if _, errOut, code = runCLI(t, "keys", "delete", "--key", key, "--yes"); code != 0 || !strings.Contains(errOut, "recoverable until") {
		t.Fatalf("delete: %d %s", code, errOut)
	}
}
