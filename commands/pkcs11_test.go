//go:build cgo

package commands

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
)

// The HSM path end to end, as a user runs it: generate inside SoftHSM2,
// export the public JWK, register it (the dev STS stands in for
// Selvbetjening and HelseID), and get a DPoP-bound token signed by the HSM.
func TestPKCS11GenerateThenToken(t *testing.T) {
	tok := softhsmtest.Token(t)
	t.Setenv("JWKCTL_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	uri := tok.URI("cli-e2e")
	out, errOut, code := runCLI(t, "keys", "generate", "--key", uri, "--alg", "PS256", "--bits", "2048")
	if code != 0 {
		t.Fatalf("keys generate: %s", errOut)
	}
	if strings.Contains(errOut, tok.PIN) || strings.Contains(out, tok.PIN) {
		t.Fatal("the PIN was printed")
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &jwk); err != nil || !jwk.IsPublic() {
		t.Fatalf("keys generate printed no public JWK: %v\n%s", err, out)
	}
	_, errOut, code = runCLI(t, "keys", "generate", "--key", uri, "--alg", "ES256")
	if code == 0 || !strings.Contains(errOut, "already has a key labelled") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("second generate with the same label: %d %s", code, errOut)
	}

	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := sts.RegisterClient("hsm-client", []jose.JSONWebKey{jwk}, []string{devsts.DemoScope}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI(t, "token", "--key", uri, "--client-id", "hsm-client", "--issuer", sts.Issuer(), "--scope", devsts.DemoScope, "--dpop")
	if code != 0 {
		t.Fatalf("jwkctl token with the HSM key: %s", errOut)
	}
	var resp map[string]any
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp["token_type"] != "DPoP" {
		t.Fatalf("token response %s (%v)", out, err)
	}
	out, _, code = runCLI(t, "keys", "list", "--key", tok.TokenURI())
	if code != 0 || !strings.Contains(out, "object=cli-e2e") || !strings.Contains(out, "non-extractable") {
		t.Fatalf("keys list:\n%s", out)
	}
	// Disabled, the HSM key cannot get a token (one clear line); enabled
	// again, it can.
	if _, errOut, code = runCLI(t, "keys", "disable", "--key", uri, "--yes"); code != 0 {
		t.Fatalf("disable: %s", errOut)
	}
	tokenArgs := []string{"token", "--key", uri, "--client-id", "hsm-client", "--issuer", sts.Issuer(), "--scope", devsts.DemoScope, "--raw"}
	if _, errOut, code = runCLI(t, tokenArgs...); code == 0 || !strings.Contains(errOut, "key is disabled") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("token with a disabled key: %d %q", code, errOut)
	}
	if _, errOut, code = runCLI(t, "keys", "enable", "--key", uri); code != 0 {
		t.Fatalf("enable: %s", errOut)
	}
	if out, errOut, code = runCLI(t, tokenArgs...); code != 0 || out == "" {
		t.Fatalf("token after enable: %d %s", code, errOut)
	}
}

func TestInitSoftHSM(t *testing.T) {
	softhsmtest.Token(t) // skips when SoftHSM2 is missing
	dir := filepath.Join(t.TempDir(), "softhsm")
	out, errOut, code := runCLI(t, "keys", "init-softhsm", "--dir", dir, "--label", "dev-token")
	if code != 0 {
		t.Fatalf("init-softhsm: %s", errOut)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if !strings.Contains(out, "export SOFTHSM2_CONF="+conf) || !strings.Contains(out, "pin-source=file:"+filepath.Join(dir, "user-pin")) {
		t.Fatalf("stdout:\n%s", out)
	}
	pin, err := os.ReadFile(filepath.Join(dir, "user-pin"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out+errOut, strings.TrimSpace(string(pin))) {
		t.Fatal("the PIN was printed")
	}
	for _, f := range []string{"user-pin", "so-pin", "softhsm2.conf"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, err, fi.Mode())
		}
	}
	// SoftHSM2's own tool sees the token.
	cmd := exec.Command("softhsm2-util", "--show-slots")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	slots, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(slots), "dev-token") {
		t.Fatalf("softhsm2-util --show-slots: %v\n%s", err, slots)
	}
	if _, errOut, code := runCLI(t, "keys", "init-softhsm", "--dir", dir); code == 0 || !strings.Contains(errOut, "already holds") {
		t.Fatalf("second init-softhsm: %d %s", code, errOut)
	}
}

// A token does not record a key's alg: importing a JWK registered for
// RS256 says how to keep signing RS256.
func TestPKCS11ImportNotesTheAlg(t *testing.T) {
	tok := softhsmtest.Token(t)
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "keys", "rsa2048.jwk"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	m["alg"] = "RS256"
	b, _ := json.Marshal(m)
	from := filepath.Join(t.TempDir(), "download.json")
	os.WriteFile(from, b, 0o600)
	out, errOut, code := runCLI(t, "keys", "import", "--key", tok.URI("imported-rs256"), "--from", from)
	if code != 0 || !strings.Contains(out, `"alg": "RS256"`) {
		t.Fatalf("import: %d %s", code, errOut)
	}
	if !strings.Contains(errOut, "pkcs11 keys do not record their alg: this key signs PS256 unless told RS256") {
		t.Fatalf("no note about the alg: %s", errOut)
	}
}

// jwkctl init into SoftHSM2 with the registered kid kept: the key lands in
// the token as sensitive and non-extractable (pkcs11-tool, an independent
// tool, says so), no private key is left in any file (the download is
// deleted), the profile carries the kid the token cannot record, and the
// profile gets a token from a dev STS that knows the key by that kid.
func TestInitIntoSoftHSMKeepsKid(t *testing.T) {
	tok := softhsmtest.Token(t)
	tool, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		if os.Getenv("JWKCTL_REQUIRE_SOFTHSM") == "1" {
			t.Fatal("pkcs11-tool not found (apt-get install opensc)")
		}
		t.Skip("pkcs11-tool not found (apt-get install opensc)")
	}
	sts := startCPAPI(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	t.Setenv("JWKCTL_CONFIG", cfg)
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	clientID, dlKid := uuidLike(t), sha1Kid(t)
	from := filepath.Join(dir, "HelseID Configuration.json")
	os.WriteFile(from, []byte(handDownload(sts.Issuer(), clientID, jsonString(handRSAJWK(k, dlKid, "RS512")))), 0o600)
	if err := sts.RegisterClient(clientID, []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: dlKid}}, []string{cpScope}); err != nil {
		t.Fatal(err)
	}
	object := "init-" + clientID[:8]
	args := []string{"init", "--from", from, "--profile", "hsm", "--key", tok.URI(object), "--keep-kid", "--check"}
	out, errOut, code := runCLI(t, append(args, "--delete-download")...)
	if code != 0 {
		t.Fatalf("init into SoftHSM2: %s", errOut)
	}
	if strings.Contains(out+errOut, tok.PIN) || strings.Contains(out+errOut, jwkMember(t, handRSAJWK(k, dlKid, ""), "d")) {
		t.Fatal("init printed the PIN or the private key")
	}
	if !strings.Contains(errOut, "issued a Bearer token") {
		t.Errorf("init --check:\n%s", errOut)
	}
	f, err := profile.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Profiles["hsm"]; p == nil || p.Kid != dlKid || p.Alg != "RS512" || !strings.HasPrefix(p.Key, "pkcs11:") {
		t.Fatalf("profile %+v", p)
	}
	// No private key anywhere under the directory.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), `"d"`) || strings.Contains(string(b), "PRIVATE KEY") || strings.Contains(string(b), "RSAKeyValue") {
			t.Errorf("%s holds a private key", p)
		}
		return nil
	})
	lo, err := exec.Command(tool, "--module", tok.Module, "--token-label", tok.Label, "--login", "--pin", tok.PIN,
		"--list-objects", "--type", "privkey").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool --list-objects: %v: %s", err, lo)
	}
	var block string
	for _, b := range strings.Split(string(lo), "Private Key Object") {
		if strings.Contains(b, "label:      "+object+"\n") || strings.Contains(b, "label: "+object) {
			block = b
		}
	}
	if block == "" {
		t.Fatalf("pkcs11-tool does not list %s:\n%s", object, lo)
	}
	access := ""
	for _, l := range strings.Split(block, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "Access:") {
			access = l
		}
	}
	if !strings.Contains(access, "sensitive") || strings.Contains(strings.ReplaceAll(access, "never extractable", ""), "extractable") {
		t.Errorf("the imported key is not sensitive and non-extractable:\n%s", block)
	}

	out, errOut, code = runCLI(t, "call", "--profile", "hsm", sts.Issuer()+"/cp/communicationparty/8142987")
	if code != 0 || !strings.Contains(out, clientID) {
		t.Fatalf("call with the HSM key: %d %s %s", code, out, errOut)
	}
	// Again (the download once more): nothing changes.
	os.WriteFile(from, []byte(handDownload(sts.Issuer(), clientID, jsonString(handRSAJWK(k, dlKid, "RS512")))), 0o600)
	before := dirState(t, dir)
	if _, errOut, code = runCLI(t, append(args, "--delete-download")...); code != 0 || !strings.Contains(errOut, "already set up") {
		t.Fatalf("second init: %d %s", code, errOut)
	}
	delete(before, from)
	sameState(t, before, dirState(t, dir))
}
