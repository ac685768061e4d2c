// Package softhsmtest gives tests a fresh SoftHSM2 token: one per test
// process, in a temporary directory, with a random user PIN exported in an
// environment variable. Tests skip with a visible reason when SoftHSM2 is
// not installed, and fail instead when JWKCTL_REQUIRE_SOFTHSM=1 (as in CI).
//
//	func TestMain(m *testing.M) { os.Exit(softhsmtest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		tok := softhsmtest.Token(t)
//		uri := tok.URI("my-key") // pkcs11:token=…;object=my-key?module-path=…&pin-source=env:…
//	}
package softhsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Module is where Debian's softhsm2 package puts the PKCS#11 module.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// PINEnv is the environment variable holding the test token's user PIN.
const PINEnv = "JWKCTL_TEST_PKCS11_PIN"

// T is a SoftHSM2 token made for this test process.
type T struct {
	Module string
	Label  string
	PIN    string
	SOPIN  string
	Dir    string
}

// URI names object on the token, with the module path and the PIN source.
func (tok *T) URI(object string) string {
	return fmt.Sprintf("pkcs11:token=%s;object=%s?module-path=%s&pin-source=env:%s", tok.Label, object, tok.Module, PINEnv)
}

// TokenURI names the token alone (for keys list).
func (tok *T) TokenURI() string {
	return fmt.Sprintf("pkcs11:token=%s?module-path=%s&pin-source=env:%s", tok.Label, tok.Module, PINEnv)
}

var (
	once    sync.Once
	shared  *T
	initErr error
)

// Available reports whether SoftHSM2 is installed, and why not.
func Available() (bool, string) {
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		return false, "softhsm2-util not found (apt-get install softhsm2 opensc)"
	}
	if _, err := os.Stat(Module); err != nil {
		return false, Module + " not found (apt-get install softhsm2)"
	}
	return true, ""
}

// Token returns the process's test token, making it on first use. It
// skips the test when SoftHSM2 is missing, unless JWKCTL_REQUIRE_SOFTHSM=1.
func Token(t testing.TB) *T {
	t.Helper()
	if ok, why := Available(); !ok {
		if os.Getenv("JWKCTL_REQUIRE_SOFTHSM") == "1" {
			t.Fatalf("softhsmtest: JWKCTL_REQUIRE_SOFTHSM=1 but %s", why)
		}
		t.Skipf("softhsmtest: skipped: %s", why)
	}
	once.Do(func() { shared, initErr = create() })
	if initErr != nil {
		t.Fatalf("softhsmtest: %v", initErr)
	}
	return shared
}

func create() (*T, error) {
	dir, err := os.MkdirTemp("", "jwkctl-softhsm-")
	if err != nil {
		return nil, err
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		return nil, err
	}
	// Set before the module is first loaded in this process: SoftHSM reads
	// its configuration in C_Initialize.
	os.Setenv("SOFTHSM2_CONF", conf)
	tok := &T{Module: Module, Label: "jwkctl-test-" + randHex(4), PIN: randHex(8), SOPIN: randHex(8), Dir: dir}
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", tok.Label, "--so-pin", tok.SOPIN, "--pin", tok.PIN).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("softhsm2-util --init-token: %v: %s", err, out)
	}
	os.Setenv(PINEnv, tok.PIN)
	return tok, nil
}

// Main runs the tests and removes the token directory afterwards.
func Main(m interface{ Run() int }) int {
	code := m.Run()
	Cleanup()
	return code
}

// Cleanup removes the token directory, if a token was made.
func Cleanup() {
	if shared != nil {
		os.RemoveAll(shared.Dir)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
