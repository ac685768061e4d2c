//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse-keypont/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/jwkctl/jwkctl/keystore"
)

func init() { keystore.Register(New()) }

// Backend keeps one crypto11 context (a session pool, logged in) per
// module and token, and closes them all on Close.
type Backend struct {
	mu    sync.Mutex
	ctxs  map[ctxKey]*session
	fasts map[*fastSigner]bool
	down  map[ctxKey]*outage
}

// outage is a token that could not be logged in to again after its
// session was lost (removed, its module finalised): the last error and
// when to try again. Without it, every signature while the token is gone
// would initialise the module and try to log in.
type outage struct {
	err      error
	failures int
	retryAt  time.Time
}

// Backoff between attempts to log in again to a token that is gone.
var (
	minRelogin = time.Second
	maxRelogin = 30 * time.Second
	now        = time.Now // tests move the clock
)

// reloginTries counts attempts to log in again, for tests.
var reloginTries atomic.Int64

func reloginBackoff(failures int) time.Duration {
	d := minRelogin << min(failures-1, 16)
	if d <= 0 || d > maxRelogin {
		d = maxRelogin
	}
	return d
}

// session is a logged-in crypto11 context and a hash of the PIN it logged
// in with. PKCS#11 logs in a whole application at once, so a later wrong
// PIN would pass unnoticed; comparing hashes catches it. This catches it
// for the same URI spelling without touching the token; configure catches
// it for any spelling and any Backend (see logins).
type session struct {
	ctx     *crypto11.Context
	pinHash [32]byte
}

var (
	_ keystore.Backend         = (*Backend)(nil)
	_ keystore.Lister          = (*Backend)(nil)
	_ keystore.Disabler        = (*Backend)(nil)
	_ keystore.GenerateChecker = (*Backend)(nil)
	_ keystore.Deleter         = (*Backend)(nil)
	_ io.Closer                = (*Backend)(nil)
)

// New returns a Backend with no open contexts.
func New() *Backend {
	return &Backend{ctxs: map[ctxKey]*session{}, fasts: map[*fastSigner]bool{}, down: map[ctxKey]*outage{}}
}

// Scheme is "pkcs11".
func (b *Backend) Scheme() string { return keystore.SchemePKCS11 }

// Close closes every context (logs out, closes sessions and, with the last
// user of a module, finalizes it).
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Our own sessions go first: closing the last context finalises the
	// module.
	for f := range b.fasts {
		f.close()
		delete(b.fasts, f)
	}
	var errs []error
	for k, c := range b.ctxs {
		if err := closeContext(c.ctx); err != nil {
			errs = append(errs, err)
		}
		delete(b.ctxs, k)
	}
	clear(b.down)
	return errors.Join(errs...)
}

// context returns the logged-in context for t's module and token.
func (b *Backend) context(t target) (*crypto11.Context, error) {
	key := t.key()
	pinHash := sha256.Sum256([]byte(t.pin))
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.ctxs[key]; ok {
		if subtle.ConstantTimeCompare(c.pinHash[:], pinHash[:]) != 1 {
			return nil, fmt.Errorf("%w: wrong PIN for %s (not the PIN it is logged in with)", keystore.ErrPIN, t.tokenName())
		}
		return c.ctx, nil
	}
	c, err := configure(t)
	if err != nil {
		return nil, err
	}
	b.ctxs[key] = &session{ctx: c, pinHash: pinHash}
	delete(b.down, key)
	return c, nil
}

// refresh replaces old, t's context, after a lost session or log-out: it
// configures (and logs in) again. The new context is made before old is
// closed, so the module stays initialised and other keys' sessions on it
// survive. When old is no longer t's context (another key already
// refreshed it), the current one is returned.
//
// When that fails (the token is gone), old is closed all the same, which
// may finalise the module; the next refresh initialises it again, once the
// backoff after the failure has passed (until then it returns the last
// error at once). So a token that comes back is used again without a
// restart.
func (b *Backend) refresh(t target, old *crypto11.Context) (*crypto11.Context, error) {
	key := t.key()
	pinHash := sha256.Sum256([]byte(t.pin))
	b.mu.Lock()
	cur, ok := b.ctxs[key]
	if ok && cur.ctx != old {
		b.mu.Unlock()
		if subtle.ConstantTimeCompare(cur.pinHash[:], pinHash[:]) != 1 {
			return nil, fmt.Errorf("%w: wrong PIN for %s (not the PIN it is logged in with)", keystore.ErrPIN, t.tokenName())
		}
		return cur.ctx, nil
	}
	if d := b.down[key]; d != nil && !ok && now().Before(d.retryAt) {
		b.mu.Unlock()
		return nil, fmt.Errorf("%w (%d failed tries; the next in %v)", d.err, d.failures, d.retryAt.Sub(now()).Round(100*time.Millisecond))
	}
	reloginTries.Add(1)
	c, err := configure(t)
	if err == nil {
		b.ctxs[key] = &session{ctx: c, pinHash: pinHash}
		delete(b.down, key)
	} else {
		delete(b.ctxs, key)
		d := b.down[key]
		if d == nil {
			d = &outage{}
			b.down[key] = d
		}
		d.failures++
		d.err = err
		d.retryAt = now().Add(reloginBackoff(d.failures))
	}
	b.mu.Unlock()
	if ok {
		_ = closeContext(old)
	}
	return c, err
}

// CheckGenerate implements keystore.GenerateChecker: the URI names a new
// object, the token opens with the PIN, and no object on it has the label
// or id yet.
func (b *Backend) CheckGenerate(_ context.Context, req keystore.GenerateRequest) error {
	t, err := resolve(req.URI, req.Options, true)
	if err != nil {
		return err
	}
	_, id, err := b.prepareNew(t, "the new key")
	if err != nil {
		return err
	}
	return checkFree(t, id)
}

// prepareNew checks what making a key (Generate, CheckGenerate, Import)
// needs and returns the logged-in context and the id the new key gets
// (the URI's, else a random one). what names the key in an error.
func (b *Backend) prepareNew(t target, what string) (*crypto11.Context, []byte, error) {
	if t.object == "" {
		return nil, nil, fmt.Errorf("%w: name %s with object=LABEL in the pkcs11 URI", keystore.ErrBadURI, what)
	}
	id := t.id
	if !t.hasID || len(id) == 0 {
		id = make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, nil, err
		}
	}
	c, err := b.context(t)
	if err != nil {
		return nil, nil, err
	}
	return c, id, nil
}

// reserve takes the token's lock and then checks that the label and id
// are free. The caller makes its objects, checks them with checkSole and
// then calls unlock.
func reserve(ctx context.Context, t target, id []byte) (unlock func(), err error) {
	unlock, err = lockToken(ctx, t)
	if err != nil {
		return nil, err
	}
	if err := checkFree(t, id); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// Generate creates the keypair inside the token: private half sensitive and
// never extractable, a signing key only (no encrypt, decrypt, wrap, unwrap
// or derive), both halves with the same CKA_ID and CKA_LABEL. It refuses
// when any object on the token already has the label or id, since the
// token would take a second object with the same name; see reserve and
// checkSole for how that holds against concurrent makers.
func (b *Backend) Generate(ctx context.Context, req keystore.GenerateRequest) (keystore.Key, error) {
	t, err := resolve(req.URI, req.Options, true)
	if err != nil {
		return nil, err
	}
	c, id, err := b.prepareNew(t, "the new key")
	if err != nil {
		return nil, err
	}
	unlock, err := reserve(ctx, t, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	pub, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(t.object))
	if err != nil {
		return nil, err
	}
	priv := pub.Copy()
	// A signing key only, whatever the token's defaults (SoftHSM's allow
	// wrap/unwrap on RSA and encrypt/decrypt/wrap/unwrap on EC; crypto11's
	// encrypt/decrypt on RSA).
	for _, a := range []struct {
		set AttributeSet
		typ crypto11.AttributeType
		val any
	}{
		{pub, pkcs11.CKA_TOKEN, true}, {pub, pkcs11.CKA_VERIFY, true},
		{pub, pkcs11.CKA_ENCRYPT, false}, {pub, pkcs11.CKA_WRAP, false}, {pub, pkcs11.CKA_DERIVE, false},
		{priv, pkcs11.CKA_TOKEN, true}, {priv, pkcs11.CKA_SIGN, true}, {priv, pkcs11.CKA_PRIVATE, true},
		{priv, pkcs11.CKA_SENSITIVE, true}, {priv, pkcs11.CKA_EXTRACTABLE, false},
		{priv, pkcs11.CKA_DECRYPT, false}, {priv, pkcs11.CKA_UNWRAP, false}, {priv, pkcs11.CKA_DERIVE, false},
	} {
		if err := a.set.Set(a.typ, a.val); err != nil {
			return nil, err
		}
	}
	var s crypto11.Signer
	switch req.Spec.Type {
	case keystore.RSA:
		if req.Spec.Bits < keystore.MinRSABits {
			return nil, fmt.Errorf("%w: RSA keys need at least %d bits", keystore.ErrWeakKey, keystore.MinRSABits)
		}
		s, err = c.GenerateRSAKeyPairWithAttributes(pub, priv, req.Spec.Bits)
	case keystore.EC:
		s, err = c.GenerateECDSAKeyPairWithAttributes(pub, priv, req.Spec.Curve)
	default:
		return nil, fmt.Errorf("pkcs11: unknown key type %q", req.Spec.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generate %s on %s: %v", req.Spec, t.tokenName(), err)
	}
	if err := checkSole(t, id); err != nil {
		if derr := s.Delete(); derr != nil {
			return nil, fmt.Errorf("%w; removing the key just made failed too: %v", err, derr)
		}
		return nil, err
	}
	return b.newKey(t, c, s, keyURI(req.URI, t.object, id)), nil
}

// newKey wraps a crypto11 signer as a Key, with the fast signing path
// when it can be set up (crypto11 signs otherwise).
func (b *Backend) newKey(t target, c *crypto11.Context, s crypto11.Signer, uri *keystore.URI) *Key {
	k := &Key{b: b, t: t, ctx: c, s: s, uri: uri}
	k.fast = b.fastFor(t, uri, s)
	return k
}

func (b *Backend) fastFor(t target, uri *keystore.URI, s crypto11.Signer) *fastSigner {
	a := uri.PKCS11
	f, err := newFastSigner(t, a.ID, a.Object, s.Public())
	if err != nil {
		return nil
	}
	b.mu.Lock()
	b.fasts[f] = true
	b.mu.Unlock()
	return f
}

func (b *Backend) dropFast(f *fastSigner) {
	if f == nil {
		return
	}
	b.mu.Lock()
	delete(b.fasts, f)
	b.mu.Unlock()
	f.close()
}

// AttributeSet is crypto11's attribute set (named here for the table above).
type AttributeSet = crypto11.AttributeSet

// Open finds the key named by object= and/or id=.
func (b *Backend) Open(ctx context.Context, u *keystore.URI, opts keystore.Options) (keystore.Key, error) {
	t, err := resolve(u, opts, true)
	if err != nil {
		return nil, err
	}
	if t.object == "" && !t.hasID {
		return nil, fmt.Errorf("%w: name the key with object=LABEL or id=… in the pkcs11 URI", keystore.ErrBadURI)
	}
	c, err := b.context(t)
	if err != nil {
		return nil, err
	}
	s, err := find(c, t)
	if err != nil {
		return nil, err
	}
	id, label := t.id, t.object
	if attrs, err := c.GetAttributes(s, []crypto11.AttributeType{pkcs11.CKA_ID, pkcs11.CKA_LABEL}); err == nil {
		id, label = idLabel(attrs)
	}
	return b.newKey(t, c, s, keyURI(u, label, id)), nil
}

// idLabel is an object's CKA_ID and CKA_LABEL from attributes read with
// GetAttributes (nil and "" when missing).
func idLabel(attrs crypto11.AttributeSet) (id []byte, label string) {
	if a := attrs[pkcs11.CKA_ID]; a != nil {
		id = a.Value
	}
	if a := attrs[pkcs11.CKA_LABEL]; a != nil {
		label = string(a.Value)
	}
	return id, label
}

func find(c *crypto11.Context, t target) (crypto11.Signer, error) {
	var id, label []byte
	if t.hasID {
		id = t.id
	}
	if t.object != "" {
		label = []byte(t.object)
	}
	ks, err := c.FindKeyPairs(id, label)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: look up key on %s: %v", t.tokenName(), err)
	}
	switch len(ks) {
	case 0:
		return nil, fmt.Errorf("%w: no key %s on %s (jwkctl keys list shows what is there)", keystore.ErrNotFound, describe(t), t.tokenName())
	case 1:
		return ks[0], nil
	}
	return nil, fmt.Errorf("pkcs11: %d keys match %s on %s; add id= to pick one", len(ks), describe(t), t.tokenName())
}

func describe(t target) string {
	var parts []string
	if t.object != "" {
		parts = append(parts, fmt.Sprintf("object=%q", t.object))
	}
	if t.hasID {
		parts = append(parts, fmt.Sprintf("id=%x", t.id))
	}
	return strings.Join(parts, " ")
}

// List returns the keypairs on the token.
func (b *Backend) List(ctx context.Context, prefix *keystore.URI, opts keystore.Options) ([]keystore.KeyInfo, error) {
	t, err := resolve(prefix, opts, true)
	if err != nil {
		return nil, err
	}
	c, err := b.context(t)
	if err != nil {
		return nil, err
	}
	ks, err := c.FindAllKeyPairs()
	if err != nil {
		return nil, fmt.Errorf("pkcs11: list keys on %s: %v", t.tokenName(), err)
	}
	var out []keystore.KeyInfo
	for _, s := range ks {
		attrs, err := c.GetAttributes(s, []crypto11.AttributeType{pkcs11.CKA_ID, pkcs11.CKA_LABEL, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_SIGN})
		if err != nil {
			continue
		}
		id, label := idLabel(attrs)
		if t.object != "" && label != t.object {
			continue
		}
		state := "non-extractable"
		if a := attrs[pkcs11.CKA_EXTRACTABLE]; a != nil && len(a.Value) > 0 && a.Value[0] != 0 {
			state = "EXTRACTABLE"
		}
		if a := attrs[pkcs11.CKA_SIGN]; a != nil && len(a.Value) > 0 && a.Value[0] == 0 {
			state += ", DISABLED"
		}
		out = append(out, keystore.KeyInfo{URI: keyURI(prefix, label, id), Public: s.Public(), State: state})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URI.String() < out[j].URI.String() })
	return out, nil
}

// Delete destroys both halves of a keypair. The caller has confirmed.
func (b *Backend) Delete(ctx context.Context, u *keystore.URI, opts keystore.Options) error {
	t, err := resolve(u, opts, true)
	if err != nil {
		return err
	}
	if t.object == "" && !t.hasID {
		return fmt.Errorf("%w: name the key to delete with object= or id=", keystore.ErrBadURI)
	}
	c, err := b.context(t)
	if err != nil {
		return err
	}
	s, err := find(c, t)
	if err != nil {
		return err
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("pkcs11: delete %s: %v", describe(t), err)
	}
	return nil
}

// SetEnabled sets CKA_SIGN on the private key: false makes the token
// refuse to sign with it, true allows it again. The key stays on the
// token. Some HSMs in FIPS mode do not allow the change; their error is
// passed on.
func (b *Backend) SetEnabled(ctx context.Context, u *keystore.URI, enabled bool, opts keystore.Options) error {
	t, err := resolve(u, opts, true)
	if err != nil {
		return err
	}
	if t.object == "" && !t.hasID {
		return fmt.Errorf("%w: name the key with object= or id=", keystore.ErrBadURI)
	}
	c, err := b.context(t) // logs the application in
	if err != nil {
		return err
	}
	s, err := find(c, t)
	if err != nil {
		return err
	}
	attrs, err := c.GetAttributes(s, []crypto11.AttributeType{pkcs11.CKA_ID, pkcs11.CKA_LABEL})
	if err != nil {
		return fmt.Errorf("pkcs11: read %s: %v", describe(t), err)
	}
	id, label := idLabel(attrs)
	return withSession(t, true, func(p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		h, err := findPrivate(p, sh, id, label)
		if err != nil {
			return err
		}
		if err := p.SetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_SIGN, enabled)}); err != nil {
			what := "disable"
			if enabled {
				what = "enable"
			}
			return fmt.Errorf("pkcs11: %s %s on %s (set CKA_SIGN): %v", what, describe(t), t.tokenName(), err)
		}
		return nil
	})
}

// Key is a keypair on a token. Signing runs inside the token.
type Key struct {
	b   *Backend
	t   target
	uri *keystore.URI

	mu   sync.RWMutex
	ctx  *crypto11.Context // the context s was found in
	s    crypto11.Signer
	fast *fastSigner // nil: sign through crypto11
}

// URI names the key (token, object, id, module; never the PIN value).
func (k *Key) URI() *keystore.URI { return k.uri }

// Public is the public half, read once from the token.
func (k *Key) Public() crypto.PublicKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.s.Public()
}

// Sign signs digest inside the token. RSA-PSS needs an explicit salt
// length (the signer package passes the hash length). After a lost session
// or log-out it logs in again once and retries.
func (k *Key) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, concat, err := k.sign(r, digest, opts)
	if err != nil || !concat {
		return sig, err
	}
	return keystore.ECDSADER(sig)
}

// SignConcat implements keystore.ConcatSigner: an ECDSA signature as r‖s,
// the form the token makes, without a round trip through DER.
func (k *Key) SignConcat(digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, concat, err := k.sign(rand.Reader, digest, opts)
	if err != nil || concat {
		return sig, err
	}
	ec, ok := k.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("pkcs11: %s is not an ECDSA key", k.t.tokenName())
	}
	return keystore.ECDSAConcat(sig, (ec.Curve.Params().BitSize+7)/8)
}

// sign signs on the fast path, or through crypto11 when there is none;
// concat tells that an ECDSA signature is r‖s rather than DER.
func (k *Key) sign(r io.Reader, digest []byte, opts crypto.SignerOpts) (sig []byte, concat bool, err error) {
	sign := func() (crypto11.Signer, []byte, bool, error) {
		for {
			k.mu.RLock()
			s, fast := k.s, k.fast
			k.mu.RUnlock()
			if fast == nil {
				sig, err := s.Sign(r, digest, opts)
				return s, sig, false, err
			}
			sig, err := fast.Sign(digest, opts)
			if errors.Is(err, errFastClosed) {
				// The key was reopened meanwhile and its old sessions
				// closed: sign with what it has now.
				k.mu.RLock()
				moved := k.fast != fast
				k.mu.RUnlock()
				if moved {
					continue
				}
			}
			return s, sig, fast.ecSize > 0, err
		}
	}
	s, sig, concat, err := sign()
	if err == nil || !(sessionLost(err) || k.replaced()) {
		return sig, concat, wrapSignError(k.t, err)
	}
	if rerr := k.reopen(s); rerr != nil {
		return nil, false, fmt.Errorf("pkcs11: the session with %s was lost and logging in again failed: %w", k.t.tokenName(), rerr)
	}
	_, sig, concat, err = sign()
	return sig, concat, wrapSignError(k.t, err)
}

func (k *Key) reopen(old crypto11.Signer) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.s != old {
		return nil // another goroutine already did
	}
	// Replace the context only if it is still the one this key used:
	// after another key's recovery it is already fresh, and replacing it
	// again would log every other key out.
	c, err := k.b.refresh(k.t, k.ctx)
	if err != nil {
		return err
	}
	t := k.t
	t.object, t.id, t.hasID = "", nil, false
	if a := k.uri.PKCS11; a != nil {
		t.object, t.id, t.hasID = a.Object, a.ID, a.HasID
	}
	s, err := find(c, t)
	if err != nil {
		return err
	}
	k.b.dropFast(k.fast)
	k.s, k.ctx, k.fast = s, c, k.b.fastFor(k.t, k.uri, s)
	return nil
}

// replaced reports whether the context k was found in is no longer its
// token's context, because another key refreshed it, or because a
// refresh failed and left the token without one (it is gone): crypto11
// then refuses k's signer ("context is closed").
func (k *Key) replaced() bool {
	k.mu.RLock()
	c := k.ctx
	k.mu.RUnlock()
	k.b.mu.Lock()
	defer k.b.mu.Unlock()
	s, ok := k.b.ctxs[k.t.key()]
	if !ok {
		return k.b.down[k.t.key()] != nil
	}
	return s.ctx != c
}

func sessionLost(err error) bool {
	var p11 pkcs11.Error
	if !errors.As(err, &p11) {
		return false
	}
	switch p11 {
	case pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID,
		// The token went away and its module was finalised (the last
		// context closed after a failed log-in), or the slot is gone:
		// only initialising and logging in again helps.
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_SLOT_ID_INVALID, pkcs11.CKR_DEVICE_ERROR:
		return true
	}
	return false
}

func wrapSignError(t target, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pkcs11.Error(pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED)) {
		return fmt.Errorf("pkcs11: sign on %s: the key is disabled (CKA_SIGN is false); jwkctl keys enable switches it back on: %w", t.tokenName(), err)
	}
	return fmt.Errorf("pkcs11: sign on %s: %w", t.tokenName(), err)
}
