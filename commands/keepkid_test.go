package commands

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/agent"
	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
)

// headerKidAndVerify parses a compact JWS, verifies it with pub alone
// (go-jose, not jwkctl's signer) and returns the header's kid.
func headerKidAndVerify(t *testing.T, jws string, pub crypto.PublicKey) string {
	t.Helper()
	obj, err := jose.ParseSignedCompact(strings.TrimSpace(jws), []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.RS512, jose.ES256})
	if err != nil {
		t.Fatalf("not a JWS: %v", err)
	}
	if _, err := obj.Verify(pub); err != nil {
		t.Fatalf("does not verify with the original public key: %v", err)
	}
	return obj.Signatures[0].Header.KeyID
}

func thumbprintOf(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return b64u(tp)
}

// A key registered in Selvbetjening under a kid that is not its
// thumbprint (HelseID.Library registers random hex kids) stays usable:
// keys import --keep-kid records that kid in the key file, and
// assertions, tokens and the agent carry it. Without --keep-kid the
// thumbprint is used, and a dev STS that knows the key only by the
// registered kid refuses it.
func TestKeepKidImportAssertionTokenAgent(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "none.yaml"))
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 16)
	rand.Read(raw)
	regKid := strings.ToUpper(hex.EncodeToString(raw))
	tp := thumbprintOf(t, &k.PublicKey)
	src := filepath.Join(dir, "registered.jwk")
	os.WriteFile(src, []byte(handRSAJWK(k, regKid, "RS256")), 0o600)

	kept := "file:" + filepath.Join(dir, "kept.json")
	out, errOut, code := runCLI(t, "keys", "import", "--key", kept, "--from", src, "--keep-kid")
	if code != 0 {
		t.Fatalf("keys import --keep-kid: %s", errOut)
	}
	var pub jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &pub); err != nil || pub.KeyID != regKid || !pub.IsPublic() {
		t.Fatalf("import printed %s, want kid %s", out, regKid)
	}
	var m map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "kept.json"))
	if json.Unmarshal(b, &m); m["kid"] != regKid {
		t.Fatalf("the key file records kid %v, want %s", m["kid"], regKid)
	}
	if out, _, _ = runCLI(t, "keys", "public", "--key", kept); !strings.Contains(out, `"kid": "`+regKid+`"`) {
		t.Errorf("keys public:\n%s", out)
	}
	out, errOut, code = runCLI(t, "assertion", "--key", kept, "--client-id", "c", "--audience", "https://sts.example")
	if code != 0 {
		t.Fatal(errOut)
	}
	if kid := headerKidAndVerify(t, out, &k.PublicKey); kid != regKid {
		t.Errorf("assertion kid %q, want the kept %q", kid, regKid)
	}

	plain := "file:" + filepath.Join(dir, "plain.json")
	out, errOut, code = runCLI(t, "keys", "import", "--key", plain, "--from", src)
	if code != 0 || !strings.Contains(out, `"kid": "`+tp+`"`) || !strings.Contains(errOut, "--keep-kid") {
		t.Fatalf("keys import: %d\n%s\n%s", code, out, errOut)
	}
	out, _, _ = runCLI(t, "assertion", "--key", plain, "--client-id", "c", "--audience", "https://sts.example")
	if kid := headerKidAndVerify(t, out, &k.PublicKey); kid != tp {
		t.Errorf("default assertion kid %q, want the thumbprint %q", kid, tp)
	}
	out, _, _ = runCLI(t, "assertion", "--key", plain, "--client-id", "c", "--audience", "https://sts.example", "--kid", regKid)
	if kid := headerKidAndVerify(t, out, &k.PublicKey); kid != regKid {
		t.Errorf("assertion --kid: kid %q", kid)
	}

	// A source without a kid has none to keep.
	noKid := filepath.Join(dir, "nokid.jwk")
	os.WriteFile(noKid, []byte(strings.Replace(handRSAJWK(k, "", ""), `"kid":"",`, "", 1)), 0o600)
	if _, errOut, code = runCLI(t, "keys", "import", "--key", "file:"+filepath.Join(dir, "x.json"), "--from", noKid, "--keep-kid"); code != 1 || !strings.Contains(errOut, "no kid to keep") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("--keep-kid without a kid: %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.json")); err == nil {
		t.Error("a key was written although --keep-kid was refused")
	}

	// The dev STS, like Selvbetjening, knows the key by the registered kid.
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := sts.RegisterClient("kept-client", []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: regKid}}, []string{devsts.DemoScope}); err != nil {
		t.Fatal(err)
	}
	base := []string{"token", "--client-id", "kept-client", "--issuer", sts.Issuer(), "--scope", devsts.DemoScope, "--raw"}
	if _, errOut, code = runCLI(t, append(base, "--key", kept)...); code != 0 {
		t.Errorf("token with the kept kid: %s", errOut)
	}
	if _, errOut, code = runCLI(t, append(base, "--key", plain)...); code == 0 || !strings.Contains(errOut, "invalid_client") {
		t.Errorf("token with the thumbprint kid: exit %d %s", code, errOut)
	}
	if _, errOut, code = runCLI(t, append(base, "--key", plain, "--kid", regKid, "--dpop")...); code != 0 {
		t.Errorf("token --kid --dpop: %s", errOut)
	}

	// The agent honours each profile's kid: one recorded in the key file,
	// one in the profile's kid entry.
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	f.Set("kept", &profile.Profile{Issuer: sts.Issuer(), ClientID: "kept-client", Key: kept, Scopes: []string{devsts.DemoScope}})
	f.Set("entry", &profile.Profile{Issuer: sts.Issuer(), ClientID: "kept-client", Key: plain, Kid: regKid, Scopes: []string{devsts.DemoScope}})
	f.Set("thumb", &profile.Profile{Issuer: sts.Issuer(), ClientID: "kept-client", Key: plain, Scopes: []string{devsts.DemoScope}})
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(cfg)
	if !strings.Contains(string(b), "kid: "+regKid) {
		t.Fatalf("config lacks the kid entry:\n%s", b)
	}
	sock := "unix:" + filepath.Join(dir, "a.sock")
	if log, listening, code := startServe(t, "--config", cfg, "--profile", "kept", "--profile", "entry", "--profile", "thumb", "--listen", sock); !listening {
		t.Fatalf("serve exited %d\n%s", code, log)
	}
	for name, ok := range map[string]bool{"kept": true, "entry": true, "thumb": false} {
		out, errOut, code := runCLI(t, "token", "--agent", sock, "--profile", name, "--raw")
		if (code == 0) != ok || (ok && out == "") {
			t.Errorf("agent token for %s: exit %d, %s", name, code, errOut)
		}
	}
}

// keys expiry lists each registered key's kid and thumbprint, and finds
// the current key by either.
func TestKeysExpiryShowsKidAndThumbprint(t *testing.T) {
	dir := t.TempDir()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	regKid := "registered-" + b64u([]byte("kid-1"))
	src := filepath.Join(dir, "src.jwk")
	os.WriteFile(src, []byte(handRSAJWK(k, regKid, "")), 0o600)
	key := "file:" + filepath.Join(dir, "client.json")
	if _, errOut, code := runCLI(t, "keys", "import", "--key", key, "--from", src, "--keep-kid"); code != 0 {
		t.Fatal(errOut)
	}
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sts.EnableSelvbetjening()
	if err := sts.RegisterClient("exp-client", []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: regKid}}, []string{devsts.SelvbetjeningScope}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	f.Set("p", &profile.Profile{Issuer: sts.Issuer(), ClientID: "exp-client", Key: key})
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "keys", "expiry", "--config", cfg, "--profile", "p")
	if code != 0 || !strings.HasPrefix(out, "OK:") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	tp := thumbprintOf(t, &k.PublicKey)
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, tp) {
			row = l
		}
	}
	if !strings.Contains(out, "KID  ") || !strings.Contains(out, "THUMBPRINT") || !strings.HasPrefix(row, regKid+" ") || !strings.HasSuffix(strings.TrimSpace(row), "*") {
		t.Errorf("keys expiry:\n%s", out)
	}
}

// The agent reports (in /healthz and its metric) the key's RFC 7638
// thumbprint, which is what a rotation records as the old key, even when
// the profile signs with a kept kid: a host on the old key is then still
// found before the old key is retired.
func TestAgentReportsThumbprintForKeptKid(t *testing.T) {
	dir := t.TempDir()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src.jwk")
	os.WriteFile(src, []byte(handRSAJWK(k, "registered-kid", "")), 0o600)
	key := "file:" + filepath.Join(dir, "client.json")
	if _, errOut, code := runCLI(t, "keys", "import", "--key", key, "--from", src, "--keep-kid"); code != 0 {
		t.Fatal(errOut)
	}
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	f.Set("kept", &profile.Profile{Issuer: "https://sts.example", ClientID: "c", Key: key})
	f.Set("entry", &profile.Profile{Issuer: "https://sts.example", ClientID: "c", Key: key, Kid: "other-registered-kid"})
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	profiles, err := loadAgentProfiles(t.Context(), cfg, nil, keystore.Options{}, agent.NewMetrics(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tp := thumbprintOf(t, &k.PublicKey)
	for _, p := range profiles {
		if p.KeyID != tp {
			t.Errorf("profile %s: agent reports %q, want the thumbprint %s", p.Name, p.KeyID, tp)
		}
	}
	if len(profiles) != 2 {
		t.Fatalf("%d profiles", len(profiles))
	}
}

// keys list and the delete confirmation name a kept-kid key by the kid it
// signs with, not by its thumbprint (which nothing registered carries).
func TestKeysListShowsKeptKid(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "none.yaml"))
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	regKid := "8F2C" + strings.Repeat("A1", 14)
	src := filepath.Join(dir, "registered.jwk")
	os.WriteFile(src, []byte(handRSAJWK(k, regKid, "RS256")), 0o600)
	keys := filepath.Join(dir, "keys")
	os.Mkdir(keys, 0o700)
	if _, errOut, code := runCLI(t, "keys", "import", "--key", "file:"+filepath.Join(keys, "kept.json"), "--from", src, "--keep-kid"); code != 0 {
		t.Fatalf("keys import --keep-kid: %s", errOut)
	}
	if _, errOut, code := runCLI(t, "keys", "import", "--key", "file:"+filepath.Join(keys, "thumb.json"), "--from", src); code != 0 {
		t.Fatalf("keys import: %s", errOut)
	}
	tp := thumbprintOf(t, &k.PublicKey)

	out, errOut, code := runCLI(t, "keys", "list", "--key", "file:"+keys, "--output", "json")
	if code != 0 {
		t.Fatalf("keys list: %s", errOut)
	}
	var listed []struct {
		URI string          `json:"uri"`
		Kid string          `json:"kid"`
		JWK jose.JSONWebKey `json:"jwk"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 2 {
		t.Fatalf("keys list --output json = %s (%v), want two keys", out, err)
	}
	want := map[string]string{"kept.json": regKid, "thumb.json": tp}
	for _, l := range listed {
		base := filepath.Base(l.URI)
		if l.Kid != want[base] || l.JWK.KeyID != want[base] {
			t.Errorf("%s: kid %q, jwk kid %q; want %q", base, l.Kid, l.JWK.KeyID, want[base])
		}
	}
	table, _, _ := runCLI(t, "keys", "list", "--key", "file:"+keys)
	for _, line := range strings.Split(table, "\n") {
		if strings.Contains(line, "kept.json") && !strings.Contains(line, regKid) {
			t.Errorf("keys list table row %q lacks the kept kid %s", line, regKid)
		}
	}
}
