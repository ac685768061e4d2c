//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/miekg/pkcs11"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
)

// fastKey makes a P-256 key on the test token and returns it with its
// fast signer.
func fastKey(t *testing.T, label string) (*Key, *fastSigner) {
	t.Helper()
	tok := softhsmtest.Token(t)
	spec, err := keystore.SpecFor(jose.ES256, 0)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse(tok.URI(label)), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	key := k.(*Key)
	key.mu.RLock()
	f := key.fast
	key.mu.RUnlock()
	if f == nil {
		t.Fatal("the key has no fast signer")
	}
	return key, f
}

func verifyConcat(t *testing.T, pub crypto.PublicKey, digest, sig []byte) {
	t.Helper()
	n := len(sig) / 2
	r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
	if !ecdsa.Verify(pub.(*ecdsa.PublicKey), digest, r, s) {
		t.Fatal("the signature does not verify")
	}
}

// sessionOpen reports whether sh is still an open session on the token.
func sessionOpen(p *pkcs11.Ctx, sh pkcs11.SessionHandle) bool {
	_, err := p.GetSessionInfo(sh)
	return err == nil
}

// When every session is in use, a waiting signer gets a slot as soon as
// one comes back, even when the session in it was lost and closed: it
// opens a new one instead of waiting forever.
func TestFastSignerWaiterSurvivesLostSessions(t *testing.T) {
	k, f := fastKey(t, "fast-lost-sessions")
	held := make([]pkcs11.SessionHandle, f.max)
	for i := range held {
		sh, err := f.session()
		if err != nil {
			t.Fatal(err)
		}
		held[i] = sh
	}
	digest := sha256.Sum256([]byte("waiting"))
	type result struct {
		sig []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		sig, err := f.Sign(digest[:], crypto.SHA256)
		done <- result{sig, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("Sign did not wait with all %d sessions in use: %v", f.max, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	// Every signature in flight fails with a lost session: the token
	// closed them.
	for _, sh := range held {
		if err := f.p.CloseSession(sh); err != nil {
			t.Fatal(err)
		}
		err := f.p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, f.handle)
		if !sessionLost(err) {
			t.Fatalf("SignInit on a closed session: %v, want a lost session", err)
		}
		f.put(sh, err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Sign after the sessions were lost: %v", r.err)
		}
		verifyConcat(t, k.Public(), digest[:], r.sig)
	case <-time.After(5 * time.Second):
		t.Fatal("Sign still waits 5 s after every session was lost and closed")
	}
	// And signing goes on, within max sessions.
	for range 2 * f.max {
		if _, err := f.Sign(digest[:], crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	}
}

// A session in use when the fast signer is closed (a key reopened after a
// lost session drops its old one) is closed when it comes back, not kept
// in a pool nobody uses again.
func TestFastSignerClosesSessionsReturnedAfterClose(t *testing.T) {
	k, f := fastKey(t, "fast-close-in-use")
	idle, err := f.session()
	if err != nil {
		t.Fatal(err)
	}
	busy, err := f.session()
	if err != nil {
		t.Fatal(err)
	}
	f.put(idle, nil)
	// The key reopens (as after a lost session or log-out) while busy is
	// signing: its fast signer is dropped and replaced.
	k.mu.RLock()
	s := k.s
	k.mu.RUnlock()
	if err := k.reopen(s); err != nil {
		t.Fatal(err)
	}
	k.mu.RLock()
	replaced := k.fast != f
	k.mu.RUnlock()
	if !replaced {
		t.Fatal("reopen kept the old fast signer")
	}
	if sessionOpen(f.p, idle) {
		t.Error("an idle session of the dropped fast signer is still open")
	}
	f.put(busy, nil)
	if sessionOpen(f.p, busy) {
		t.Error("a session returned to the dropped fast signer is still open (leaked)")
	}
	// The old signer opens no new session; the key signs with its new one.
	digest := sha256.Sum256([]byte("after close"))
	if _, err := f.Sign(digest[:], crypto.SHA256); err == nil {
		t.Error("a closed fast signer still signs")
	}
	sig, err := k.SignConcat(digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	verifyConcat(t, k.Public(), digest[:], sig)
}

// Signing goes on without an error while the key is reopened under it
// again and again: a signer that picked the old fast signer moves to the
// new one.
func TestFastSignerSignsThroughReopen(t *testing.T) {
	k, _ := fastKey(t, "fast-reopen-race")
	digest := sha256.Sum256([]byte("race"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := k.SignConcat(digest[:], crypto.SHA256); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 5 {
		time.Sleep(20 * time.Millisecond)
		k.mu.RLock()
		s := k.s
		k.mu.RUnlock()
		if err := k.reopen(s); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("sign during reopen: %v", err)
	}
}
