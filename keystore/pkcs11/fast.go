//go:build cgo

package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/miekg/pkcs11"
)

// fastSigner signs with bare C_SignInit/C_Sign calls on a few sessions of
// its own. crypto11's general session pool and its DER round trip cost
// about a tenth of an ECDSA signature on a fast token; here the key handle
// is found once and each signature is exactly two PKCS#11 calls. The
// application is logged in through crypto11's context (PKCS#11 logs in a
// whole application), so these sessions may use the private key; that
// context also keeps the module initialised (see token.go).
type fastSigner struct {
	p      *pkcs11.Ctx
	handle pkcs11.ObjectHandle
	slot   uint
	pub    crypto.PublicKey
	ecSize int

	// slots holds one token per session in use: at most max sessions
	// are in use (so at most max are open), and a caller waits for a
	// slot, not for a session. A slot comes back even when its session
	// was lost and closed, so a waiter then opens a new session.
	slots chan struct{}
	done  chan struct{} // closed by close: waiters give up
	max   int

	mu     sync.Mutex
	idle   []pkcs11.SessionHandle // open sessions not in use
	closed bool
}

// errFastClosed is returned by a fast signer after close (its key was
// reopened with a new one, or the backend was closed).
var errFastClosed = errors.New("pkcs11: the key's signing sessions were closed")

func newFastSigner(t target, id []byte, label string, pub crypto.PublicKey) (*fastSigner, error) {
	p, err := module(t.module)
	if err != nil {
		return nil, err
	}
	slot, err := findSlot(p, t)
	if err != nil {
		return nil, err
	}
	f := &fastSigner{p: p, slot: slot, pub: pub, max: max(2, 2*runtime.GOMAXPROCS(0))}
	f.slots = make(chan struct{}, f.max)
	f.done = make(chan struct{})
	sh, err := f.session()
	if err != nil {
		return nil, err
	}
	f.handle, err = findPrivate(p, sh, id, label)
	f.put(sh, err)
	if err != nil {
		f.close()
		return nil, err
	}
	if ec, ok := pub.(*ecdsa.PublicKey); ok {
		f.ecSize = (ec.Curve.Params().BitSize + 7) / 8
	}
	return f, nil
}

// findPrivate is the handle of the one private key with this id and
// label (either may be empty).
func findPrivate(p *pkcs11.Ctx, sh pkcs11.SessionHandle, id []byte, label string) (pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}
	if len(id) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	}
	if label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	}
	if err := p.FindObjectsInit(sh, tmpl); err != nil {
		return 0, err
	}
	objs, _, err := p.FindObjects(sh, 2)
	_ = p.FindObjectsFinal(sh)
	if err != nil {
		return 0, err
	}
	if len(objs) != 1 {
		return 0, fmt.Errorf("pkcs11: %d private keys match id %x label %q", len(objs), id, label)
	}
	return objs[0], nil
}

// session takes a slot, waiting while all max are in use, and then an
// idle session or a new one. Every session it returns goes back with put.
func (f *fastSigner) session() (pkcs11.SessionHandle, error) {
	select {
	case f.slots <- struct{}{}:
	case <-f.done:
		return 0, errFastClosed
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		<-f.slots
		return 0, errFastClosed
	}
	if n := len(f.idle); n > 0 {
		sh := f.idle[n-1]
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		return sh, nil
	}
	f.mu.Unlock()
	// No idle session, so every open one is in use under another slot:
	// opening one more keeps at most max open.
	sh, err := f.p.OpenSession(f.slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		<-f.slots
		return 0, err
	}
	return sh, nil
}

// put gives back a session and its slot. The session is kept for reuse,
// or closed after an error that may have left it unusable or when the
// signer was closed meanwhile.
func (f *fastSigner) put(sh pkcs11.SessionHandle, err error) {
	f.mu.Lock()
	keep := !f.closed && (err == nil || !sessionLost(err))
	if keep {
		f.idle = append(f.idle, sh)
	}
	f.mu.Unlock()
	if !keep {
		_ = f.p.CloseSession(sh)
	}
	<-f.slots
}

// close closes the idle sessions now and the ones in use when they come
// back; waiting and later signers get errFastClosed. It does not wait for
// signatures in flight.
func (f *fastSigner) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	idle := f.idle
	f.idle = nil
	close(f.done)
	f.mu.Unlock()
	for _, sh := range idle {
		_ = f.p.CloseSession(sh)
	}
}

var digestInfo = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

var pssHash = map[crypto.Hash][2]uint{
	crypto.SHA256: {pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256},
	crypto.SHA384: {pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384},
	crypto.SHA512: {pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512},
}

// Sign returns what the token gives: r‖s for ECDSA (PKCS#11 §2.3.1), the
// raw signature for RSA. PSS needs an explicit salt length or "equals
// hash".
func (f *fastSigner) Sign(digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	h := opts.HashFunc()
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("pkcs11: digest is %d bytes, %v needs %d", len(digest), h, h.Size())
	}
	var mech *pkcs11.Mechanism
	data := digest
	switch f.pub.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			hm, ok := pssHash[h]
			if !ok {
				return nil, fmt.Errorf("pkcs11: unsupported PSS hash %v", h)
			}
			salt := pss.SaltLength
			if salt == rsa.PSSSaltLengthEqualsHash {
				salt = h.Size()
			}
			if salt < 0 {
				return nil, errors.New("pkcs11: PSS needs an explicit salt length (HSMs do not accept \"auto\")")
			}
			mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(hm[0], hm[1], uint(salt)))
		} else {
			prefix, ok := digestInfo[h]
			if !ok {
				return nil, fmt.Errorf("pkcs11: unsupported hash %v", h)
			}
			data = append(append([]byte{}, prefix...), digest...)
			mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)
		}
	case *ecdsa.PublicKey:
		mech = pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)
	default:
		return nil, fmt.Errorf("pkcs11: unsupported key type %T", f.pub)
	}
	sh, err := f.session()
	if err != nil {
		return nil, err
	}
	err = f.p.SignInit(sh, []*pkcs11.Mechanism{mech}, f.handle)
	var sig []byte
	if err == nil {
		sig, err = f.p.Sign(sh, data)
	}
	f.put(sh, err)
	if err != nil {
		return nil, err
	}
	if f.ecSize > 0 && len(sig) != 2*f.ecSize {
		return nil, fmt.Errorf("pkcs11: ECDSA signature of %d bytes, want %d", len(sig), 2*f.ecSize)
	}
	return sig, nil
}
