//go:build cgo

package pkcs11

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/eclipse-keypont/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/jwkctl/jwkctl/keystore"
)

// How this package shares a PKCS#11 module with crypto11.
//
// C_Initialize and C_Finalize act on the whole process. crypto11 counts
// its contexts per module: the first Configure initialises the module, and
// closing the last context (including the one a failed Configure made)
// finalises it. crypto11 treats CKR_CRYPTOKI_ALREADY_INITIALIZED as fatal,
// so nobody else may leave the module initialised behind its back.
//
// So crypto11 alone initialises and finalises modules. This package's own
// miekg handle (module) never calls C_Initialize while a crypto11 context
// could want to: it borrows crypto11's initialisation, and everything it
// does with it (token selection, the fast signing path, object look-ups,
// import, disable/enable) happens while one of our crypto11 contexts on
// the module is open. The one exception is listing the tokens for an error
// message after crypto11 could not find the token; it initialises the
// module only if nobody has, and then finalises it again.
//
// initMu serialises every Configure, every Close and that listing, so no
// two of them interleave. A context is replaced by configuring the new one
// before closing the old one, so the module stays initialised and the
// sessions of keys already open survive.
var initMu sync.Mutex

var (
	modMu sync.Mutex
	mods  = map[string]*pkcs11.Ctx{}
)

// module returns this package's own handle on a PKCS#11 library: loaded
// once and kept loaded, never initialised or finalised here (see above).
func module(path string) (*pkcs11.Ctx, error) {
	modMu.Lock()
	defer modMu.Unlock()
	if p, ok := mods[path]; ok {
		return p, nil
	}
	p := pkcs11.New(path)
	if p == nil {
		return nil, fmt.Errorf("pkcs11: cannot load module %s", path)
	}
	mods[path] = p
	return p, nil
}

// ctxKey names one logged-in context: a module and the token attributes
// it was selected by.
type ctxKey struct {
	module, label, serial, manufacturer, model string
	slot                                       int64 // -1: no slot-id
}

func (t target) key() ctxKey {
	k := ctxKey{t.module, t.label, t.serial, t.manufacturer, t.model, -1}
	if t.slotID != nil {
		k.slot = int64(*t.slotID)
	}
	return k
}

// configure makes a logged-in crypto11 context on the token that matches
// every token attribute of t. A failed configure leaves the module as it
// found it.
func configure(t target) (*crypto11.Context, error) {
	if _, err := os.Stat(t.module); err != nil {
		return nil, fmt.Errorf("pkcs11: cannot load module %s: %v (check module-path or %s)", t.module, errors.Unwrap(err), ModuleEnv)
	}
	initMu.Lock()
	defer initMu.Unlock()
	// A context without a log-in holds the module initialised (in
	// crypto11's count) while the token is chosen. crypto11 selects by one
	// attribute only; the serial is the more specific.
	probeCfg := &crypto11.Config{Path: t.module, LoginNotSupported: true, MaxSessions: 2}
	if t.serial != "" {
		probeCfg.TokenSerial = t.serial
	} else {
		probeCfg.TokenLabel = t.label
	}
	probe, err := crypto11.Configure(probeCfg)
	if err != nil {
		return nil, configureError(t, err)
	}
	defer probe.Close() // a no-op for the module when the real context is open
	p, err := module(t.module)
	if err != nil {
		return nil, err
	}
	// Check every attribute before logging in, so a PIN is never tried on
	// a token the URI does not name.
	slot, err := findSlot(p, t)
	if err != nil {
		return nil, err
	}
	// Login state belongs to the application and the token, however the
	// URI spells the token, and C_Login on a token already logged in
	// succeeds whatever the PIN (crypto11 takes
	// CKR_USER_ALREADY_LOGGED_IN as success). So a PIN the token will not
	// check is checked here, against the one it was logged in with.
	sk := slotKey{t.module, slot}
	pinHash := sha256.Sum256([]byte(t.pin))
	known, haveKnown := logins[sk]
	already := loggedIn(p, slot)
	if already && haveKnown && subtle.ConstantTimeCompare(known[:], pinHash[:]) != 1 {
		return nil, fmt.Errorf("%w: wrong PIN for %s (not the PIN it is logged in with)", keystore.ErrPIN, t.tokenName())
	}
	n := int(slot)
	c, err := crypto11.Configure(&crypto11.Config{
		Path:       t.module,
		SlotNumber: &n,
		Pin:        t.pin,
		// Enough sessions for concurrent signers, within what small HSMs
		// allow; crypto11 lowers it to the token's own maximum.
		MaxSessions: 64,
	})
	if err != nil {
		return nil, configureError(t, err)
	}
	if !already {
		// The token checked this PIN.
		logins[sk] = pinHash
	}
	return c, nil
}

// slotKey names a token by what its login state belongs to: the module
// and the slot.
type slotKey struct {
	module string
	slot   uint
}

// logins holds, per module and slot, a hash of the last PIN the token
// itself accepted from this process (a PIN given while the token was
// already logged in proves nothing and is not kept). It is process-wide,
// like login state: every Backend shares it. initMu guards it. An entry
// outlives the login it came from; it is used only while the token is
// logged in, so after a log-out the token checks the PIN again (and a
// changed PIN works).
var logins = map[slotKey][32]byte{}

// loggedIn reports whether this application is logged in to the token in
// slot. When it cannot tell, it says yes, so a PIN is compared with the
// known one rather than taken on trust.
func loggedIn(p *pkcs11.Ctx, slot uint) bool {
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return true
	}
	defer p.CloseSession(sh)
	info, err := p.GetSessionInfo(sh)
	if err != nil {
		return true
	}
	return info.State != pkcs11.CKS_RO_PUBLIC_SESSION && info.State != pkcs11.CKS_RW_PUBLIC_SESSION
}

// closeContext closes a crypto11 context (finalising the module when it is
// the last one).
func closeContext(c *crypto11.Context) error {
	initMu.Lock()
	defer initMu.Unlock()
	return c.Close()
}

// configureError turns crypto11's errors into sentences that say what to
// do. initMu is held.
func configureError(t target, err error) error {
	var p11 pkcs11.Error
	switch {
	case errors.As(err, &p11) && p11 == pkcs11.CKR_PIN_INCORRECT:
		return fmt.Errorf("%w: wrong PIN for %s", keystore.ErrPIN, t.tokenName())
	case errors.As(err, &p11) && p11 == pkcs11.CKR_PIN_LOCKED:
		return fmt.Errorf("%w: the PIN of %s is locked; the security officer must unlock it", keystore.ErrPIN, t.tokenName())
	case errors.As(err, &p11) && (p11 == pkcs11.CKR_PIN_EXPIRED || p11 == pkcs11.CKR_PIN_LEN_RANGE):
		return fmt.Errorf("%w: the PIN for %s was refused (%v)", keystore.ErrPIN, t.tokenName(), p11)
	case strings.Contains(err.Error(), "could not find PKCS#11 token"):
		return fmt.Errorf("%w: no %s in %s (%s)", keystore.ErrNotFound, t.tokenName(), t.module, tokenList(t))
	case errors.As(err, &p11) && p11 == pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED:
		return fmt.Errorf("pkcs11: cannot load module %s: something else in this process initialised it outside crypto11 (%v)", t.module, p11)
	case strings.Contains(err.Error(), "failed to create module context"):
		return fmt.Errorf("pkcs11: cannot load module %s: %v", t.module, errors.Unwrap(err))
	}
	return fmt.Errorf("pkcs11: %s: %v", t.tokenName(), err)
}

// tokenList describes the tokens t's module offers, for an error message
// after crypto11 found no token. crypto11 has finalised the module if no
// other context uses it; then it is initialised here just for the listing
// and finalised again, so the next Configure starts clean. initMu is held.
func tokenList(t target) string {
	p, err := module(t.module)
	if err != nil {
		return "cannot list its tokens"
	}
	err = p.Initialize()
	if err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		return "cannot list its tokens"
	}
	if err == nil {
		defer p.Finalize()
	}
	return describeTokens(p, t)
}

// describeTokens lists the initialised tokens of an initialised module:
// label and serial, and manufacturer and model when t names them.
func describeTokens(p *pkcs11.Ctx, t target) string {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return "cannot list its tokens"
	}
	var out []string
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil || ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 || strings.TrimSpace(ti.Label) == "" {
			continue
		}
		d := fmt.Sprintf("%q (serial %s", strings.TrimSpace(ti.Label), strings.TrimSpace(ti.SerialNumber))
		if t.manufacturer != "" {
			d += fmt.Sprintf(", manufacturer %q", strings.TrimSpace(ti.ManufacturerID))
		}
		if t.model != "" {
			d += fmt.Sprintf(", model %q", strings.TrimSpace(ti.Model))
		}
		if t.slotID != nil {
			d += fmt.Sprintf(", slot-id %d", s)
		}
		out = append(out, d+")")
	}
	if len(out) == 0 {
		// SoftHSM2 finds its tokens through SOFTHSM2_CONF: a shell without
		// it sees none.
		if strings.Contains(strings.ToLower(filepath.Base(t.module)), "softhsm") && os.Getenv("SOFTHSM2_CONF") == "" {
			return "no initialised tokens; SOFTHSM2_CONF is not set (export the path jwkctl keys init-softhsm printed)"
		}
		return "no initialised tokens"
	}
	sort.Strings(out)
	return "tokens: " + strings.Join(out, ", ")
}

// tokenMatches reports whether the token in slot has every attribute t
// gives. Token info fields are blank-padded.
func tokenMatches(ti pkcs11.TokenInfo, slot uint, t target) bool {
	eq := func(want, have string) bool { return want == "" || want == strings.TrimSpace(have) }
	return eq(t.label, ti.Label) && eq(t.serial, ti.SerialNumber) &&
		eq(t.manufacturer, ti.ManufacturerID) && eq(t.model, ti.Model) &&
		(t.slotID == nil || *t.slotID == slot)
}

// findSlot is the slot holding the token that matches every token
// attribute of t. The module must be initialised.
func findSlot(p *pkcs11.Ctx, t target) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("pkcs11: list the slots of %s: %v", t.module, err)
	}
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && tokenMatches(ti, s, t) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%w: no %s in %s: every token attribute in the URI must match (%s)", keystore.ErrNotFound, t.tokenName(), t.module, describeTokens(p, t))
}

// withSession runs f in a session of its own on t's token. The caller
// holds a logged-in context on the token (so the module is initialised and
// the session is authorised).
func withSession(t target, rw bool, f func(p *pkcs11.Ctx, sh pkcs11.SessionHandle) error) error {
	p, err := module(t.module)
	if err != nil {
		return err
	}
	slot, err := findSlot(p, t)
	if err != nil {
		return err
	}
	flags := uint(pkcs11.CKF_SERIAL_SESSION)
	if rw {
		flags |= pkcs11.CKF_RW_SESSION
	}
	sh, err := p.OpenSession(slot, flags)
	if err != nil {
		return fmt.Errorf("pkcs11: open a session on %s: %v", t.tokenName(), err)
	}
	defer p.CloseSession(sh)
	return f(p, sh)
}

// classNames name what checkFree found ("already has a key labelled …").
var classNames = map[uint]string{
	pkcs11.CKO_DATA:              "a data object",
	pkcs11.CKO_CERTIFICATE:       "a certificate",
	pkcs11.CKO_PUBLIC_KEY:        "a key",
	pkcs11.CKO_PRIVATE_KEY:       "a key",
	pkcs11.CKO_SECRET_KEY:        "a key",
	pkcs11.CKO_OTP_KEY:           "a key",
	pkcs11.CKO_HW_FEATURE:        "a hardware feature object",
	pkcs11.CKO_DOMAIN_PARAMETERS: "a domain parameters object",
	pkcs11.CKO_MECHANISM:         "a mechanism object",
}

// checkFree refuses a label or id that any object on the token already
// has, of whatever class (a key, a lone public key, a certificate, a data
// object): a new key with the same name would make the URI ambiguous.
func checkFree(t target, id []byte) error {
	return withSession(t, false, func(p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		for _, q := range []struct {
			attr       *pkcs11.Attribute
			what, hint string
		}{
			{pkcs11.NewAttribute(pkcs11.CKA_LABEL, t.object), fmt.Sprintf("labelled %q", t.object), "pick another object= name"},
			{pkcs11.NewAttribute(pkcs11.CKA_ID, id), fmt.Sprintf("with id %x", id), "pick another id= or leave it out"},
		} {
			if err := p.FindObjectsInit(sh, []*pkcs11.Attribute{q.attr}); err != nil {
				return fmt.Errorf("pkcs11: look up objects %s on %s: %v", q.what, t.tokenName(), err)
			}
			objs, _, err := p.FindObjects(sh, 1)
			_ = p.FindObjectsFinal(sh)
			if err != nil {
				return fmt.Errorf("pkcs11: look up objects %s on %s: %v", q.what, t.tokenName(), err)
			}
			if len(objs) == 0 {
				continue
			}
			what := "an object"
			if a, err := p.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, nil)}); err == nil && len(a) == 1 {
				if name, ok := classNames[uint(ulong(a[0].Value))]; ok {
					what = name
				}
			}
			return fmt.Errorf("%w: %s already has %s %s; %s", keystore.ErrExists, t.tokenName(), what, q.what, q.hint)
		}
		return nil
	})
}

// ulong decodes a CK_ULONG attribute value, in the module's (native) byte
// order.
func ulong(b []byte) uint64 {
	switch len(b) {
	case 8:
		return binary.NativeEndian.Uint64(b)
	case 4:
		return uint64(binary.NativeEndian.Uint32(b))
	}
	return ^uint64(0)
}
