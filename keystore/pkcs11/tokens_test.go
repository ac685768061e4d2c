//go:build cgo

package pkcs11_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/file"
	"github.com/jwkctl/jwkctl/keystore/pkcs11"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
)

// pkcs11Tool is the path of OpenSC's pkcs11-tool, an independent PKCS#11
// client.
func pkcs11Tool(t *testing.T) string {
	t.Helper()
	tool, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		if os.Getenv("JWKCTL_REQUIRE_SOFTHSM") == "1" {
			t.Fatal("pkcs11-tool not found (apt-get install opensc)")
		}
		t.Skip("pkcs11-tool not found (apt-get install opensc)")
	}
	return tool
}

// runTool runs pkcs11-tool on the test token, logged in.
func runTool(t *testing.T, tok *softhsmtest.T, args ...string) string {
	t.Helper()
	all := append([]string{"--module", tok.Module, "--token-label", tok.Label, "--login", "--pin", tok.PIN}, args...)
	out, err := exec.Command(pkcs11Tool(t), all...).CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// toolObject is one object as pkcs11-tool --list-objects prints it.
type toolObject struct {
	kind  string // the header line, e.g. "Private Key Object; RSA"
	label string
	usage []string
	lines string
}

func toolObjects(out string) []toolObject {
	var objs []toolObject
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
			if strings.Contains(strings.ToLower(line), "object") { // "Data object 2" too
				objs = append(objs, toolObject{kind: strings.TrimSpace(line)})
			}
			continue
		}
		if len(objs) == 0 {
			continue
		}
		o := &objs[len(objs)-1]
		o.lines += line + "\n"
		name, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch name {
		case "label":
			o.label = strings.Trim(val, "'") // data objects: 'label'

		case "Usage":
			for _, u := range strings.Split(val, ",") {
				if u = strings.TrimSpace(u); u != "" && u != "none" {
					o.usage = append(o.usage, u)
				}
			}
		}
	}
	return objs
}

// listObjects is every object pkcs11-tool sees on the token, logged in.
func listObjects(t *testing.T, tok *softhsmtest.T) []toolObject {
	t.Helper()
	return toolObjects(runTool(t, tok, "--list-objects"))
}

// tokenInfo reads the test token's serial, manufacturer and model with
// pkcs11-tool.
func tokenInfo(t *testing.T, tok *softhsmtest.T) (serial, manufacturer, model string) {
	t.Helper()
	out, err := exec.Command(pkcs11Tool(t), "--module", tok.Module, "--list-token-slots").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool --list-token-slots: %v\n%s", err, out)
	}
	mine := false
	for _, line := range strings.Split(string(out), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		switch {
		case name == "token label":
			mine = val == tok.Label
		case mine && name == "token manufacturer":
			manufacturer = val
		case mine && name == "token model":
			model = val
		case mine && name == "serial num":
			serial = val
		}
	}
	if serial == "" || manufacturer == "" || model == "" {
		t.Fatalf("pkcs11-tool does not show the serial, manufacturer and model of %s:\n%s", tok.Label, out)
	}
	return serial, manufacturer, model
}

// A mistyped token label must not break the module for the rest of the
// process: later opens of good URIs work, and keys already open go on
// signing. It runs in a fresh process, where the failed open is the first
// (and then again not the first) use of the module.
func TestFailedConfigureKeepsModuleUsable(t *testing.T) {
	if os.Getenv("JWKCTL_CONFIGURE_CHILD") == "1" {
		configureChild(t)
		return
	}
	tok, _, ek := sharedKeys(t)
	spki, err := x509.MarshalPKIXPublicKey(ek.Public())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFailedConfigureKeepsModuleUsable$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), // SOFTHSM2_CONF and the PIN variable come along
		"JWKCTL_CONFIGURE_CHILD=1",
		"JWKCTL_CHILD_LABEL="+tok.Label,
		"JWKCTL_CHILD_URI="+tok.URI("shared-ec"),
		"JWKCTL_CHILD_SPKI="+hex.EncodeToString(spki))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestFailedConfigureKeepsModuleUsable") {
		t.Fatalf("the child did not run the test:\n%s", out)
	}
}

func configureChild(t *testing.T) {
	good := os.Getenv("JWKCTL_CHILD_URI")
	label := os.Getenv("JWKCTL_CHILD_LABEL")
	der, err := hex.DecodeString(os.Getenv("JWKCTL_CHILD_SPKI"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	badLabel := strings.Replace(good, "token="+label, "token=nosuch", 1)
	badSerial := strings.Replace(good, "token="+label, "serial=0000nosuch", 1)
	openBad := func(uri string) {
		t.Helper()
		_, err := keystore.Open(ctx, uri, keystore.Options{})
		if !errors.Is(err, keystore.ErrNotFound) || !strings.Contains(err.Error(), `"`+label+`"`) {
			t.Fatalf("Open(%s) = %v, want ErrNotFound listing %q", uri, err, label)
		}
	}
	// checkSigns signs with k and verifies with the public key the parent
	// read, independently of k.
	checkSigns := func(what string, k crypto.Signer) {
		t.Helper()
		digest := sha256.Sum256([]byte(what))
		sig, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("%s: sign: %v", what, err)
		}
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
			t.Fatalf("%s: the signature does not verify", what)
		}
	}
	openGood := func(what string) keystore.Key {
		t.Helper()
		k, err := keystore.Open(ctx, good, keystore.Options{})
		if err != nil {
			t.Fatalf("%s: Open(good URI): %v", what, err)
		}
		checkSigns(what, k)
		return k
	}

	// Bad, then good: the failed open was the module's first use.
	openBad(badLabel)
	openBad(badSerial)
	k1 := openGood("good after bad")
	k2 := openGood("good, crypto11 signing path")
	pkcs11.WithoutFastPath(k2)
	checkSigns("crypto11 path", k2)

	// Good, then bad, then good: keys already open keep signing.
	openBad(badLabel)
	openBad(badSerial)
	checkSigns("open key after a failed open", k1)
	checkSigns("open key (crypto11 path) after a failed open", k2)
	openGood("good after good and bad")
	if _, err := keystore.List(ctx, strings.Replace(good, ";object=shared-ec", "", 1), keystore.Options{}); err != nil {
		t.Fatalf("list after a failed open: %v", err)
	}

	// A second backend in the same process shares the module: a failed
	// open there breaks neither backend, and closing it leaves the first
	// one's keys signing.
	other := pkcs11.New()
	if _, err := other.Open(ctx, keystore.MustParse(badLabel), keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("second backend, bad URI: %v", err)
	}
	k3, err := other.Open(ctx, keystore.MustParse(good), keystore.Options{})
	if err != nil {
		t.Fatalf("second backend, good URI: %v", err)
	}
	checkSigns("second backend's key", k3)
	checkSigns("first backend's key beside a second backend", k1)
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	checkSigns("first backend's key after the second closed", k1)
	checkSigns("first backend's key (crypto11 path) after the second closed", k2)

	// After everything is closed, the module can be used again from the
	// start, and a failed open in between changes nothing.
	if err := keystore.CloseAll(); err != nil {
		t.Fatal(err)
	}
	openBad(badLabel)
	openGood("good after close and bad")
}

// Generate and Import refuse a label or id that any object on the token
// already has (a lone public key, a certificate, a private data object),
// and leave the token as it was.
func TestGenerateRefusesAnyObjectWithLabelOrID(t *testing.T) {
	tok := softhsmtest.Token(t)
	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jwkctl test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	runTool(t, tok, "--write-object", write("pub.der", spki), "--type", "pubkey", "--label", "lone-pub", "--id", "a1a1a1a1")
	runTool(t, tok, "--write-object", write("cert.der", cert), "--type", "cert", "--label", "lone-cert", "--id", "c2c2c2c2")
	runTool(t, tok, "--write-object", write("data.bin", []byte("hello")), "--type", "data", "--label", "lone-data", "--private")

	before := listObjects(t, tok)
	for _, want := range []string{"lone-pub", "lone-cert", "lone-data"} {
		found := false
		for _, o := range before {
			found = found || o.label == want
		}
		if !found {
			t.Fatalf("pkcs11-tool did not write %s", want)
		}
	}
	withID := func(label, id string) *keystore.URI {
		u := keystore.MustParse(tok.URI(label))
		if id != "" {
			b, err := hex.DecodeString(id)
			if err != nil {
				t.Fatal(err)
			}
			u.PKCS11.ID, u.PKCS11.HasID = b, true
		}
		return u
	}
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	data, err := os.ReadFile("../../testdata/keys/p256.jwk")
	if err != nil {
		t.Fatal(err)
	}
	jwkPriv, _, err := file.ParsePrivateJWK(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ what, label, id, says string }{
		{"a public key's label", "lone-pub", "", `key labelled "lone-pub"`},
		{"a public key's id", "fresh-a", "a1a1a1a1", "key with id a1a1a1a1"},
		{"a certificate's label", "lone-cert", "", `certificate labelled "lone-cert"`},
		{"a certificate's id", "fresh-b", "c2c2c2c2", "certificate with id c2c2c2c2"},
		{"a data object's label", "lone-data", "", `data object labelled "lone-data"`},
	} {
		_, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: withID(tt.label, tt.id), Spec: spec})
		if !errors.Is(err, keystore.ErrExists) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("generate with %s: %v, want ErrExists saying %q", tt.what, err, tt.says)
		}
		_, err = keystore.Import(ctx, keystore.ImportRequest{URI: withID(tt.label, tt.id), Private: jwkPriv})
		if !errors.Is(err, keystore.ErrExists) {
			t.Errorf("import with %s: %v, want ErrExists", tt.what, err)
		}
	}
	after := listObjects(t, tok)
	if len(after) != len(before) {
		t.Errorf("objects on the token: %d before, %d after refused generates and imports", len(before), len(after))
	}
	for _, o := range after {
		if strings.HasPrefix(o.label, "fresh-") {
			t.Errorf("a refused generate or import left %s %s", o.kind, o.label)
		}
	}
}

// RFC 7512: every token attribute in the URI must match the token, not
// just the one the token is found by.
func TestTokenAttributesMustAllMatch(t *testing.T) {
	tok, _, ek := sharedKeys(t)
	serial, manufacturer, model := tokenInfo(t, tok)
	esc := func(s string) string { return strings.ReplaceAll(s, " ", "%20") }
	base := tok.URI("shared-ec")
	swap := func(path string) string {
		return strings.Replace(base, "token="+tok.Label, path, 1)
	}
	for _, uri := range []string{
		swap("token=WRONGLABEL;serial=" + serial),
		swap("serial=" + serial + ";token=WRONGLABEL"),
		swap("token=" + tok.Label + ";serial=0000wrong"),
		swap("token=" + tok.Label + ";manufacturer=Wrong%20Corp"),
		swap("serial=" + serial + ";model=WrongModel"),
	} {
		_, err := keystore.Open(ctx, uri, keystore.Options{})
		if !errors.Is(err, keystore.ErrNotFound) {
			t.Errorf("Open(%s) = %v, want ErrNotFound", uri, err)
			continue
		}
		if !strings.Contains(err.Error(), tok.Label) && !strings.Contains(err.Error(), serial) {
			t.Errorf("Open(%s): the error does not say what the token is: %v", uri, err)
		}
		if strings.Contains(err.Error(), tok.PIN) {
			t.Errorf("the error reveals the PIN: %v", err)
		}
	}
	for _, uri := range []string{
		swap("serial=" + serial),
		swap("token=" + tok.Label + ";serial=" + serial),
		swap("token=" + tok.Label + ";manufacturer=" + esc(manufacturer) + ";model=" + esc(model) + ";serial=" + serial),
	} {
		k, err := keystore.Open(ctx, uri, keystore.Options{})
		if err != nil {
			t.Errorf("Open(%s): %v", uri, err)
			continue
		}
		if !k.Public().(*ecdsa.PublicKey).Equal(ek.Public()) {
			t.Errorf("Open(%s) found another key", uri)
		}
	}
	// List, generate and delete select the token the same way.
	wrong := keystore.MustParse(swap("token=WRONGLABEL;serial=" + serial))
	if _, err := keystore.List(ctx, wrong.String(), keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("list with a wrong label: %v", err)
	}
	wrong.PKCS11.Object = "never-made"
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	if _, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: wrong, Spec: spec}); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("generate with a wrong label: %v", err)
	}
	for _, o := range listObjects(t, tok) {
		if o.label == "never-made" {
			t.Errorf("generate with a wrong label made %s", o.kind)
		}
	}
}

// A wrong PIN is refused however the token is named: by another spelling
// of its URI, or through another backend in the same process. PKCS#11
// logs in a whole application, so the token would take any PIN once one
// context is logged in.
func TestWrongPINAnySpelling(t *testing.T) {
	tok, _, ek := sharedKeys(t) // logged in with the right PIN
	serial, manufacturer, model := tokenInfo(t, tok)
	esc := func(s string) string { return strings.ReplaceAll(s, " ", "%20") }
	t.Setenv("WRONG_PIN", "000000")
	right := tok.URI("shared-ec")
	wrong := strings.Replace(right, "env:"+softhsmtest.PINEnv, "env:WRONG_PIN", 1)
	// Spellings no other test opens the token by.
	spellings := []string{
		"token=" + tok.Label + ";manufacturer=" + esc(manufacturer),
		"serial=" + serial + ";model=" + esc(model),
		"token=" + tok.Label + ";model=" + esc(model) + ";serial=" + serial,
	}
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, keystore.ErrPIN) {
			t.Errorf("%s with a wrong PIN: %v, want ErrPIN", what, err)
		} else if strings.Contains(err.Error(), "000000") || strings.Contains(err.Error(), tok.PIN) {
			t.Errorf("%s: the error reveals a PIN: %v", what, err)
		}
	}
	for _, sp := range spellings {
		uri := strings.Replace(wrong, "token="+tok.Label, sp, 1)
		k, err := keystore.Open(ctx, uri, keystore.Options{})
		refused("Open("+sp+")", err)
		if k != nil {
			digest := sha256.Sum256([]byte("wrong PIN"))
			if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
				t.Errorf("a key opened with a wrong PIN by %s signs", sp)
			}
		}
		_, err = keystore.List(ctx, strings.Replace(uri, ";object=shared-ec", "", 1), keystore.Options{})
		refused("List("+sp+")", err)
	}
	// Another backend in the same process shares the login.
	other := pkcs11.New()
	_, err := other.Open(ctx, keystore.MustParse(wrong), keystore.Options{})
	refused("a second backend's Open", err)
	k, err := other.Open(ctx, keystore.MustParse(right), keystore.Options{})
	if err != nil {
		t.Fatalf("a second backend, right PIN: %v", err)
	}
	if !k.Public().(*ecdsa.PublicKey).Equal(ek.Public()) {
		t.Error("the second backend found another key")
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	// The right PIN still opens the key by every spelling, after the
	// wrong ones.
	for _, sp := range spellings {
		uri := strings.Replace(right, "token="+tok.Label, sp, 1)
		k, err := keystore.Open(ctx, uri, keystore.Options{})
		if err != nil {
			t.Errorf("Open(%s) with the right PIN: %v", sp, err)
			continue
		}
		digest := sha256.Sum256([]byte("right PIN"))
		sig, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil || !ecdsa.VerifyASN1(ek.Public().(*ecdsa.PublicKey), digest[:], sig) {
			t.Errorf("Open(%s) with the right PIN: sign: %v", sp, err)
		}
	}
}
