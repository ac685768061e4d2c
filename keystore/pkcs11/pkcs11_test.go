//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	p11 "github.com/miekg/pkcs11"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/file"
	"github.com/jwkctl/jwkctl/keystore/pkcs11"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/signer/signertest"
)

func TestMain(m *testing.M) { os.Exit(softhsmtest.Main(m)) }

var ctx = context.Background()

func generate(t *testing.T, uri string, alg jose.SignatureAlgorithm, bits int) keystore.Key {
	t.Helper()
	return generateB(t, uri, alg, bits)
}

func generateB(t testing.TB, uri string, alg jose.SignatureAlgorithm, bits int) keystore.Key {
	t.Helper()
	spec, err := keystore.SpecFor(alg, bits)
	if err != nil {
		t.Fatal(err)
	}
	u, err := keystore.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: u, Spec: spec})
	if err != nil {
		t.Fatalf("generate %s: %v", alg, err)
	}
	return k
}

var (
	keysOnce sync.Once
	rsaKey   keystore.Key
	ecKey    keystore.Key
)

// sharedKeys makes one RSA-2048 and one P-256 key for the whole run:
// SoftHSM's RSA generation is slow.
func sharedKeys(t *testing.T) (*softhsmtest.T, keystore.Key, keystore.Key) {
	tok := softhsmtest.Token(t)
	keysOnce.Do(func() {
		rsaKey = generate(t, tok.URI("shared-rsa"), jose.PS256, 2048)
		ecKey = generate(t, tok.URI("shared-ec"), jose.ES256, 0)
	})
	if rsaKey == nil || ecKey == nil {
		t.Fatal("shared keys were not made")
	}
	return tok, rsaKey, ecKey
}

func TestConformance(t *testing.T) {
	_, rk, ek := sharedKeys(t)
	t.Run("RSA-2048", func(t *testing.T) { signertest.Run(t, rk) })
	t.Run("P-256", func(t *testing.T) { signertest.Run(t, ek) })
}

func TestOtherCurves(t *testing.T) {
	tok := softhsmtest.Token(t)
	for _, alg := range []jose.SignatureAlgorithm{jose.ES384, jose.ES512} {
		k := generate(t, tok.URI("curve-"+string(alg)), alg, 0)
		if _, ok := k.Public().(*ecdsa.PublicKey); !ok {
			t.Fatalf("%s: %T", alg, k.Public())
		}
		signertest.RunAlgs(t, k, alg)
	}
}

// Without the fast path (crypto11 signs), keys still pass the suite: the
// r‖s form JWS wants and the DER form crypto.Signer returns.
func TestCrypto11SigningPath(t *testing.T) {
	tok := softhsmtest.Token(t)
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.ES384} {
		k := generate(t, tok.URI("c11-"+string(alg)), alg, 0)
		pkcs11.WithoutFastPath(k)
		signertest.RunAlgs(t, k, alg)
	}
	_, rk, _ := sharedKeys(t)
	k, err := keystore.Open(context.Background(), rk.URI().String(), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pkcs11.WithoutFastPath(k)
	signertest.Run(t, k)
}

func TestReopenByURI(t *testing.T) {
	tok, rk, _ := sharedKeys(t)
	k, err := keystore.Open(ctx, tok.URI("shared-rsa"), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Public().(*rsa.PublicKey).Equal(rk.Public()) {
		t.Fatal("reopened key differs")
	}
	// The key's URI carries the id and no PIN value.
	a := k.URI().PKCS11
	if !a.HasID || len(a.ID) == 0 || a.PinValue != "" || a.Object != "shared-rsa" {
		t.Fatalf("URI %s", k.URI())
	}
	byID, err := keystore.Open(ctx, k.URI().String(), keystore.Options{})
	if err != nil || !byID.Public().(*rsa.PublicKey).Equal(rk.Public()) {
		t.Fatalf("open by the key's own URI: %v", err)
	}
	_, err = keystore.Open(ctx, tok.URI("no-such-key"), keystore.Options{})
	if !errors.Is(err, keystore.ErrNotFound) || !strings.Contains(err.Error(), "no-such-key") {
		t.Fatalf("missing key: %v", err)
	}
}

// The private key is sensitive and never extractable, as pkcs11-tool (an
// independent tool) reports, and it refuses to hand it out.
func TestNonExtractableByPkcs11Tool(t *testing.T) {
	tok, _, _ := sharedKeys(t)
	tool, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		if os.Getenv("JWKCTL_REQUIRE_SOFTHSM") == "1" {
			t.Fatal("pkcs11-tool not found (apt-get install opensc)")
		}
		t.Skip("pkcs11-tool not found (apt-get install opensc)")
	}
	out, err := exec.Command(tool, "--module", tok.Module, "--token-label", tok.Label, "--login", "--pin", tok.PIN,
		"--list-objects", "--type", "privkey").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool --list-objects: %v: %s", err, out)
	}
	block := objectBlock(string(out), "shared-rsa")
	if block == "" {
		t.Fatalf("pkcs11-tool does not list shared-rsa:\n%s", out)
	}
	for _, want := range []string{"sensitive", "never extractable", "local"} {
		if !strings.Contains(block, want) {
			t.Errorf("private key attributes lack %q:\n%s", want, block)
		}
	}
	if strings.Contains(block, "decrypt") {
		t.Errorf("signing key may also decrypt:\n%s", block)
	}
	checkSigningOnly(t, tok)
	// Asking the token directly for the private exponent must fail with
	// CKR_ATTRIBUTE_SENSITIVE.
	p := p11.New(tok.Module)
	if err := p.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	var sh p11.SessionHandle
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && strings.TrimSpace(ti.Label) == tok.Label {
			if sh, err = p.OpenSession(s, p11.CKF_SERIAL_SESSION); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer p.CloseSession(sh)
	if err := p.Login(sh, p11.CKU_USER, tok.PIN); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
		t.Fatal(err)
	}
	if err := p.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_LABEL, "shared-rsa")}); err != nil {
		t.Fatal(err)
	}
	objs, _, err := p.FindObjects(sh, 2)
	p.FindObjectsFinal(sh)
	if err != nil || len(objs) != 1 {
		t.Fatalf("find shared-rsa: %v (%d objects)", err, len(objs))
	}
	_, err = p.GetAttributeValue(sh, objs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_PRIVATE_EXPONENT, nil)})
	if !errors.Is(err, p11.Error(p11.CKR_ATTRIBUTE_SENSITIVE)) {
		t.Fatalf("reading the private exponent: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
	}
}

// Disabling clears CKA_SIGN (pkcs11-tool no longer lists "sign" among the
// key's usages) and the token refuses to sign with a clear error; enabling
// restores both. The key stays on the token throughout.
func TestDisableEnable(t *testing.T) {
	tok := softhsmtest.Token(t)
	ctx := context.Background()
	k := generate(t, tok.URI("toggle"), jose.ES256, 0)
	uri := tok.URI("toggle")
	usage := func() string {
		tool, err := exec.LookPath("pkcs11-tool")
		if err != nil {
			return ""
		}
		out, err := exec.Command(tool, "--module", tok.Module, "--token-label", tok.Label, "--login", "--pin", tok.PIN,
			"--list-objects", "--type", "privkey").CombinedOutput()
		if err != nil {
			t.Fatalf("pkcs11-tool: %v: %s", err, out)
		}
		for _, line := range strings.Split(objectBlock(string(out), "toggle"), "\n") {
			if strings.Contains(line, "Usage:") {
				return line
			}
		}
		t.Fatalf("pkcs11-tool shows no usage for toggle:\n%s", out)
		return ""
	}
	if u := usage(); u != "" && !strings.Contains(u, "sign") {
		t.Fatalf("new key cannot sign: %s", u)
	}
	if err := keystore.SetEnabled(ctx, uri, false, keystore.Options{}); err != nil {
		t.Fatal(err)
	}
	if u := usage(); strings.Contains(u, "sign") {
		t.Errorf("disabled key still has sign usage: %s", u)
	}
	s, err := signer.New(k, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignPayload([]byte("x"), jose.ES256); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("signing with a disabled key: %v", err)
	}
	infos, err := keystore.List(ctx, tok.URI(""), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, in := range infos {
		if in.URI.PKCS11.Object == "toggle" {
			found = true
			if !strings.Contains(in.State, "DISABLED") {
				t.Errorf("list state %q", in.State)
			}
		}
	}
	if !found {
		t.Fatal("disabled key not listed")
	}
	if err := keystore.SetEnabled(ctx, uri, true, keystore.Options{}); err != nil {
		t.Fatal(err)
	}
	if u := usage(); u != "" && !strings.Contains(u, "sign") {
		t.Errorf("enabled key lacks sign usage: %s", u)
	}
	signertest.RunAlgs(t, k, jose.ES256)
	if err := keystore.SetEnabled(ctx, tok.URI("no-such-key"), false, keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("disable a missing key: %v", err)
	}
}

// checkSigningOnly checks with pkcs11-tool that generated and imported
// keys, RSA and EC, may only sign (private half) and verify (public half):
// no encrypt, decrypt, wrap, unwrap or derive, whatever the token's
// defaults.
func checkSigningOnly(t *testing.T, tok *softhsmtest.T) {
	t.Helper()
	for _, name := range []string{"p256.jwk", "rsa2048.jwk"} {
		data, err := os.ReadFile("../../testdata/keys/" + name)
		if err != nil {
			t.Fatal(err)
		}
		priv, _, err := file.ParsePrivateJWK(data)
		if err != nil {
			t.Fatal(err)
		}
		label := "usage-imported-" + strings.TrimSuffix(name, ".jwk")
		if _, err := keystore.Import(ctx, keystore.ImportRequest{URI: keystore.MustParse(tok.URI(label)), Private: priv}); err != nil {
			t.Fatal(err)
		}
	}
	objs := listObjects(t, tok)
	for _, label := range []string{"shared-rsa", "shared-ec", "usage-imported-p256", "usage-imported-rsa2048"} {
		var privSeen, pubSeen bool
		for _, o := range objs {
			if o.label != label {
				continue
			}
			want := ""
			switch {
			case strings.HasPrefix(o.kind, "Private Key Object"):
				want, privSeen = "sign", true
				if !strings.Contains(o.lines, "sensitive") {
					t.Errorf("%s: private key is not sensitive:\n%s", label, o.lines)
				}
			case strings.HasPrefix(o.kind, "Public Key Object"):
				want, pubSeen = "verify", true
			default:
				t.Errorf("%s: unexpected %s", label, o.kind)
				continue
			}
			if strings.Join(o.usage, ",") != want {
				t.Errorf("%s: %s has usages %v, want only %s", label, o.kind, o.usage, want)
			}
		}
		if !privSeen || !pubSeen {
			t.Errorf("%s: pkcs11-tool shows private key %v, public key %v", label, privSeen, pubSeen)
		}
	}
}

// objectBlock returns pkcs11-tool's lines about the object with label.
func objectBlock(out, label string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
			in = false
		}
		if strings.Contains(line, "label:") && strings.HasSuffix(strings.TrimSpace(line), label) {
			in = true
		}
		if in || (strings.HasPrefix(line, "Private Key Object") && strings.Contains(out, label)) {
			b.WriteString(line + "\n")
		}
	}
	if !strings.Contains(b.String(), label) {
		return ""
	}
	return b.String()
}

func TestGenerateRefusesDuplicates(t *testing.T) {
	tok, _, ek := sharedKeys(t)
	before, err := keystore.List(ctx, tok.TokenURI(), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	// CheckGenerate says so without creating anything, and agrees with
	// Generate.
	if err := keystore.CheckGenerate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(tok.URI("shared-ec")), Spec: spec}); !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("CheckGenerate, same label: %v, want ErrExists", err)
	}
	if err := keystore.CheckGenerate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(tok.URI("fresh-label")), Spec: spec}); err != nil {
		t.Fatalf("CheckGenerate, free label: %v", err)
	}
	_, err = keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(tok.URI("shared-ec")), Spec: spec})
	if !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("same label: %v, want ErrExists", err)
	}
	dupID := keystore.MustParse(tok.URI("fresh-label"))
	dupID.PKCS11.ID, dupID.PKCS11.HasID = ek.URI().PKCS11.ID, true
	_, err = keystore.Generate(ctx, keystore.GenerateRequest{URI: dupID, Spec: spec})
	if !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("same id: %v, want ErrExists", err)
	}
	after, err := keystore.List(ctx, tok.TokenURI(), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("keys on the token: %d before, %d after failed generates", len(before), len(after))
	}
	// The original still signs.
	signertest.RunAlgs(t, ek, jose.ES256)
}

// A wrong PIN fails fast, in a fresh process (where it is the first login)
// and in one already logged in with the right PIN.
func TestWrongPINFailsFast(t *testing.T) {
	tok := softhsmtest.Token(t)
	wrongURI := strings.Replace(tok.URI("shared-ec"), "env:"+softhsmtest.PINEnv, "env:WRONG_PIN", 1)
	if os.Getenv("JWKCTL_WRONG_PIN_CHILD") == "1" {
		_, err := keystore.Open(ctx, wrongURI, keystore.Options{})
		if !errors.Is(err, keystore.ErrPIN) || !strings.Contains(err.Error(), "wrong PIN") || strings.Contains(err.Error(), "000000") {
			t.Fatalf("wrong PIN in a fresh process: %v", err)
		}
		return
	}
	t.Setenv("WRONG_PIN", "000000")
	start := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWrongPINFailsFast$", "-test.count=1")
	cmd.Env = append(os.Environ(), "JWKCTL_WRONG_PIN_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fresh process: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("wrong PIN took %v", d)
	}
	sharedKeys(t) // logged in with the right PIN
	_, err := keystore.Open(ctx, wrongURI, keystore.Options{})
	if !errors.Is(err, keystore.ErrPIN) || strings.Contains(err.Error(), "000000") {
		t.Fatalf("wrong PIN after a right one: %v", err)
	}
	if _, err := keystore.Open(ctx, tok.URI("shared-ec"), keystore.Options{}); err != nil {
		t.Fatalf("right PIN after a wrong one: %v", err)
	}
}

func TestHelpfulErrors(t *testing.T) {
	tok := softhsmtest.Token(t)
	tests := []struct {
		uri  string
		want string
	}{
		{strings.Replace(tok.URI("k"), tok.Label, "no-such-token", 1), `tokens: "` + tok.Label + `"`},
		{strings.Replace(tok.URI("k"), tok.Module, "/nonexistent/lib.so", 1), "cannot load module /nonexistent/lib.so"},
		{strings.Replace(tok.URI("k"), "env:"+softhsmtest.PINEnv, "env:UNSET_PIN_VAR", 1), "UNSET_PIN_VAR is not set"},
		{"pkcs11:token=" + tok.Label + ";object=k?pin-source=env:" + softhsmtest.PINEnv, "no PKCS#11 module"},
		{"pkcs11:slot-id=0;object=k?module-path=" + tok.Module, "not slot-id"},
		{"pkcs11:token=" + tok.Label + ";object=k?module-path=" + tok.Module + "&pin-source=file:/nonexistent/pin", "pin-source file /nonexistent/pin does not exist"},
	}
	t.Setenv("JWKCTL_PKCS11_MODULE", "")
	for _, tt := range tests {
		_, err := keystore.Open(ctx, tt.uri, keystore.Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%s) = %v, want it to mention %q", tt.uri, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), tok.PIN) {
			t.Errorf("error reveals the PIN: %v", err)
		}
	}
}

func TestListAndDelete(t *testing.T) {
	tok := softhsmtest.Token(t)
	generate(t, tok.URI("to-delete"), jose.ES256, 0)
	infos, err := keystore.List(ctx, tok.TokenURI(), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, in := range infos {
		if in.URI.PKCS11.Object == "to-delete" {
			found = true
			if in.State != "non-extractable" || in.Public == nil {
				t.Errorf("listed %+v", in)
			}
		}
	}
	if !found {
		t.Fatalf("to-delete not listed: %v", infos)
	}
	if err := keystore.Delete(ctx, tok.URI("to-delete"), keystore.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.Open(ctx, tok.URI("to-delete"), keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

// openDirect opens an independent session on the test token with
// miekg/pkcs11, logged in.
func openDirect(t *testing.T, tok *softhsmtest.T) (*p11.Ctx, p11.SessionHandle) {
	t.Helper()
	return openDirectTB(t, tok)
}

func openDirectTB(t testing.TB, tok *softhsmtest.T) (*p11.Ctx, p11.SessionHandle) {
	t.Helper()
	p := p11.New(tok.Module)
	if err := p.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && strings.TrimSpace(ti.Label) == tok.Label {
			sh, err := p.OpenSession(s, p11.CKF_SERIAL_SESSION)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.CloseSession(sh) })
			if err := p.Login(sh, p11.CKU_USER, tok.PIN); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
				t.Fatal(err)
			}
			return p, sh
		}
	}
	t.Fatalf("token %s not found", tok.Label)
	return nil, 0
}

// After the token is logged out under it, a key logs in again once and
// goes on signing.
func TestRecoversFromLogout(t *testing.T) {
	tok := softhsmtest.Token(t)
	k := generate(t, tok.URI("relogin"), jose.ES256, 0)
	signertest.RunAlgs(t, k, jose.ES256)
	p, sh := openDirect(t, tok)
	if err := p.Logout(sh); err != nil {
		t.Fatalf("logout: %v", err)
	}
	// Login state belongs to the whole application: every session, the
	// key's included, is public now.
	if info, err := p.GetSessionInfo(sh); err != nil || info.State != p11.CKS_RO_PUBLIC_SESSION {
		t.Fatalf("after logout the session state is %v (%v), want public", info.State, err)
	}
	signertest.RunAlgs(t, k, jose.ES256)
}

// A private JWK downloaded from Selvbetjening moves into the HSM, where it
// is sensitive and cannot be read back.
func TestImportPrivateJWK(t *testing.T) {
	tok := softhsmtest.Token(t)
	for _, name := range []string{"p256.jwk", "rsa2048.jwk"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile("../../testdata/keys/" + name)
			if err != nil {
				t.Fatal(err)
			}
			priv, _, err := file.ParsePrivateJWK(data)
			if err != nil {
				t.Fatal(err)
			}
			label := "imported-" + strings.TrimSuffix(name, ".jwk")
			k, err := keystore.Import(ctx, keystore.ImportRequest{URI: keystore.MustParse(tok.URI(label)), Private: priv})
			if err != nil {
				t.Fatal(err)
			}
			if kid1, kid2 := mustKid(t, k.Public()), mustKid(t, priv.Public()); kid1 != kid2 {
				t.Fatalf("imported key has kid %s, the JWK %s", kid1, kid2)
			}
			signertest.Run(t, k)
			p, sh := openDirect(t, tok)
			if err := p.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
				t.Fatal(err)
			}
			objs, _, _ := p.FindObjects(sh, 2)
			p.FindObjectsFinal(sh)
			if len(objs) != 1 {
				t.Fatalf("%d private objects labelled %s", len(objs), label)
			}
			secret := uint(p11.CKA_VALUE)
			if name == "rsa2048.jwk" {
				secret = p11.CKA_PRIVATE_EXPONENT
			}
			if _, err := p.GetAttributeValue(sh, objs[0], []*p11.Attribute{p11.NewAttribute(secret, nil)}); !errors.Is(err, p11.Error(p11.CKR_ATTRIBUTE_SENSITIVE)) {
				t.Fatalf("the imported private key is readable: %v", err)
			}
			if _, err := keystore.Import(ctx, keystore.ImportRequest{URI: keystore.MustParse(tok.URI(label)), Private: priv}); !errors.Is(err, keystore.ErrExists) {
				t.Fatalf("second import: %v", err)
			}
		})
	}
}

func mustKid(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	kid, err := signer.Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// Two keys on one token both recover from one log-out, without logging
// each other out again.
func TestTwoKeysRecoverFromLogout(t *testing.T) {
	tok := softhsmtest.Token(t)
	k1 := generate(t, tok.URI("relogin-a"), jose.ES256, 0)
	k2 := generate(t, tok.URI("relogin-b"), jose.ES256, 0)
	p, sh := openDirect(t, tok)
	if err := p.Logout(sh); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		signertest.RunAlgs(t, k1, jose.ES256)
		signertest.RunAlgs(t, k2, jose.ES256)
	}
}
