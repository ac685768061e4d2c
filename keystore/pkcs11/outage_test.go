//go:build cgo

package pkcs11_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore/pkcs11"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
)

// The only token on the module goes away under an open key and comes
// back: the key signs again by itself, without being opened anew, and
// while the token is gone it tries to log in again at most once per
// backoff step rather than on every signature. It runs in a fresh process
// with a token of its own, since the module is finalised and initialised
// again on the way.
func TestRecoversWhenTokenReturns(t *testing.T) {
	path := os.Getenv("JWKCTL_OUTAGE_CHILD")
	if path == "" {
		softhsmtest.Token(t) // skips (or fails) without SoftHSM2
		for _, path := range []string{"fast", "crypto11"} {
			cmd := exec.Command(os.Args[0], "-test.run=^TestRecoversWhenTokenReturns$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "JWKCTL_OUTAGE_CHILD="+path)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestRecoversWhenTokenReturns") {
				t.Fatalf("child signing on the %s path: %v\n%s", path, err, out)
			}
		}
		return
	}
	tok := softhsmtest.Token(t) // this process's own token, the only one
	k := generate(t, tok.URI("outage"), jose.ES256, 0)
	if path == "crypto11" {
		pkcs11.WithoutFastPath(k)
	}
	pub := k.Public().(*ecdsa.PublicKey)
	var mu sync.Mutex
	clock := time.Unix(1_800_000_000, 0)
	pkcs11.SetClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	})
	advance := func(d time.Duration) {
		mu.Lock()
		clock = clock.Add(d)
		mu.Unlock()
	}
	sign := func(what string) error {
		t.Helper()
		digest := sha256.Sum256([]byte(what))
		sig, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err == nil && !ecdsa.VerifyASN1(pub, digest[:], sig) {
			t.Fatalf("%s: the signature does not verify", what)
		}
		return err
	}
	tries := func() int64 { return pkcs11.ReloginTries() }
	if err := sign("before"); err != nil {
		t.Fatal(err)
	}

	ents, err := os.ReadDir(filepath.Join(tok.Dir, "tokens"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("token directory: %v %v", ents, err)
	}
	tokenDir := filepath.Join(tok.Dir, "tokens", ents[0].Name())
	away := filepath.Join(tok.Dir, "away")
	if err := os.Rename(tokenDir, away); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := os.Rename(away, tokenDir); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore)

	base := tries()
	for i := range 20 {
		if err := sign("token gone"); err == nil {
			t.Fatalf("signature %d signed with the token gone", i)
		}
	}
	if n := tries() - base; n != 1 {
		t.Fatalf("20 signatures with the token gone tried to log in %d times, want 1 (then back off)", n)
	}
	advance(1500 * time.Millisecond) // past the first backoff step (1 s)
	err = sign("still gone")
	if err == nil || !strings.Contains(err.Error(), tok.Label) {
		t.Fatalf("still gone: %v", err)
	}
	if n := tries() - base; n != 2 {
		t.Fatalf("after the first backoff: %d tries, want 2", n)
	}

	restore()
	if err := sign("back, within the backoff"); err == nil {
		t.Fatal("signed before the backoff (2 s) had passed: it tries on every signature")
	}
	advance(2500 * time.Millisecond)
	if err := sign("back"); err != nil {
		t.Fatalf("the token is back but the key does not sign: %v", err)
	}
	if n := tries() - base; n != 3 {
		t.Fatalf("%d tries in all, want 3", n)
	}
	for range 5 {
		if err := sign("steady"); err != nil {
			t.Fatal(err)
		}
	}
	if n := tries() - base; n != 3 {
		t.Fatalf("signing again after recovery logged in again: %d tries", n)
	}
}
