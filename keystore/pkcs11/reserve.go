//go:build cgo

package pkcs11

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/jwkctl/jwkctl/keystore"
)

// Making a key with a label no other object has.
//
// checkFree and making the objects are two steps, and a token does not
// refuse a second object with the same label: two processes that both
// checked first would both make one, and the URI would no longer open.
// So jwkctl processes on one host take a lock per token (lockToken)
// around check and make; and since other hosts on a network HSM and other
// tools take no such lock, each maker checks again afterwards (checkSole)
// and removes its own key if a rival appeared. That gives at most one
// winner without the lock (a maker that found no rival made its key
// before the rival's, which then finds it), on a token that shows every
// session the objects others made at once; and exactly one with the lock.

// lockTimeout bounds the wait for another process making a key on the
// same token.
const lockTimeout = 2 * time.Minute

// lockToken takes the lock of t's token: a flock on a file in the
// temporary directory named after the module and the token's serial and
// label as the token reports them, so every spelling of the URI meets the
// same lock. The file is made readable by all, so users sharing a token
// share its lock. Where flock is not available the lock is a no-op and
// checkSole alone keeps the label unique.
func lockToken(ctx context.Context, t target) (unlock func(), err error) {
	if !tokenLocks {
		return func() {}, nil
	}
	p, err := module(t.module)
	if err != nil {
		return nil, err
	}
	slot, err := findSlot(p, t)
	if err != nil {
		return nil, err
	}
	ti, err := p.GetTokenInfo(slot)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: read the token info of %s: %v", t.tokenName(), err)
	}
	mod := t.module
	if abs, err := filepath.EvalSymlinks(mod); err == nil {
		mod = abs
	}
	h := sha256.Sum256([]byte(mod + "\x00" + strings.TrimSpace(ti.SerialNumber) + "\x00" + strings.TrimSpace(ti.Label)))
	path := filepath.Join(os.TempDir(), "jwkctl-pkcs11-"+hex.EncodeToString(h[:12])+".lock")
	ctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	return lockFile(ctx, path, t.tokenName())
}

// tokenLocks turns lockToken off, for the test that shows checkSole alone
// never lets two makers win.
var tokenLocks = true

// checkSole checks, after a key was made with this id and t's label,
// that the label and the id each name just its two halves. Fewer is not
// a rival (a token may not report a label on every object).
func checkSole(t target, id []byte) error {
	return withSession(t, false, func(p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		for _, q := range []struct {
			attr *pkcs11.Attribute
			what string
		}{
			{pkcs11.NewAttribute(pkcs11.CKA_LABEL, t.object), fmt.Sprintf("labelled %q", t.object)},
			{pkcs11.NewAttribute(pkcs11.CKA_ID, id), fmt.Sprintf("with id %x", id)},
		} {
			if err := p.FindObjectsInit(sh, []*pkcs11.Attribute{q.attr}); err != nil {
				return fmt.Errorf("pkcs11: look up objects %s on %s: %v", q.what, t.tokenName(), err)
			}
			objs, _, err := p.FindObjects(sh, 3)
			_ = p.FindObjectsFinal(sh)
			if err != nil {
				return fmt.Errorf("pkcs11: look up objects %s on %s: %v", q.what, t.tokenName(), err)
			}
			if len(objs) > 2 {
				return fmt.Errorf("%w: %s: another object %s appeared while this key was being made (another process made it); this key is removed again", keystore.ErrExists, t.tokenName(), q.what)
			}
		}
		return nil
	})
}
