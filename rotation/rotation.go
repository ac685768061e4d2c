package rotation

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/file"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/token"
)

// DefaultOverlap is how long the old key stays in its backend after the
// switch, so running processes and caches move over before it goes.
const DefaultOverlap = 72 * time.Hour

// Runner carries out a rotation for one profile of a config file.
type Runner struct {
	Store      Store
	ConfigPath string
	Profile    string
	// Backend is the base for opening keys (KMS endpoint, logger).
	Backend keystore.Options
	// HTTPClient is the base client for the STS and Selvbetjening.
	HTTPClient *http.Client
	Now        func() time.Time
	Log        *slog.Logger
	// Hook, if set, runs right before (after=false) and right after
	// (after=true) each step's side effect; an error stops the run there.
	// Tests use it to inject crashes.
	Hook func(step Step, after bool) error
	// DisableOld retires the old key by switching it off in its backend
	// (Cloud KMS: DISABLED; PKCS#11: CKA_SIGN false) instead of deleting
	// it, so the retirement can be undone with jwkctl keys enable.
	DisableOld bool
	// Agents are running jwkctl agents (jwkctl serve) that a retire asks
	// first: while any of them signs with the old key, or cannot be asked,
	// the old key stays (see CheckAgents).
	Agents []Agent
}

// Agent names a running jwkctl agent for CheckAgents.
type Agent struct {
	// Addr is "unix:/path/to.sock" or a loopback "127.0.0.1:PORT", as
	// token.AgentSource.Addr.
	Addr string
	// SecretFile is a TCP agent's bearer secret file, which the agent
	// wants before it names its profiles and keys.
	SecretFile string
}

// PlanRequest is what `rotate plan` asks for; empty fields get defaults.
type PlanRequest struct {
	// NewKey is the new key's URI. A PKCS#11 URI names its PIN with
	// pin-source (file: or env:); one with a pin-value is refused, since
	// the journal and the config file record the URI and hold no secrets.
	NewKey string
	Alg    string
	Bits   int
	// Overlap is how long the old key stays after activation. Zero means
	// DefaultOverlap, unless OverlapSet says zero was asked for: then the
	// old key may be retired (still only when asked) right after
	// activation. A negative overlap is refused.
	Overlap     time.Duration
	OverlapSet  bool
	Endpoint    string
	JWKAsString bool
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) hook(s Step, after bool) error {
	if r.Hook == nil {
		return nil
	}
	return r.Hook(s, after)
}

func (r *Runner) loadProfile() (*profile.File, *profile.Profile, error) {
	f, err := profile.Load(r.ConfigPath)
	if err != nil {
		return nil, nil, err
	}
	p, err := f.Get(r.Profile)
	if err != nil {
		return nil, nil, err
	}
	if p == nil {
		return nil, nil, fmt.Errorf("%w %q", profile.ErrNotFound, r.Profile)
	}
	return f, p, nil
}

// Plan records a new rotation: the current key, the new key's URI (it
// must not exist yet) and its algorithm.
func (r *Runner) Plan(ctx context.Context, req PlanRequest) (*Journal, error) {
	unlock, err := r.Store.Lock(r.Profile)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return r.plan(ctx, req)
}

func (r *Runner) plan(ctx context.Context, req PlanRequest) (*Journal, error) {
	if req.Overlap < 0 {
		return nil, fmt.Errorf("rotation: the overlap %v is negative; give how long the old key stays after the switch (default %v)", req.Overlap, DefaultOverlap)
	}
	if hasPinValue(req.NewKey) {
		return nil, &secretError{what: "the new key (--new-key)"}
	}
	if j, err := r.Store.Load(r.Profile); err == nil && j.Step != Retired {
		return nil, fmt.Errorf("rotation: a rotation of %s is in progress (step %s): run `jwkctl rotate resume` or `jwkctl rotate abort`", r.Profile, j.Step)
	} else if err != nil && !errors.Is(err, ErrNoJournal) {
		// A damaged journal, or one of another profile, is not written over.
		return nil, err
	}
	_, p, err := r.loadProfile()
	if err != nil {
		return nil, err
	}
	if p.Issuer == "" {
		return nil, fmt.Errorf("rotation: profile %s has no issuer", r.Profile)
	}
	// Activation rewrites the config file: if it cannot, nothing is
	// created (no key, no upload) that would only be left behind.
	if err := r.checkConfigWritable(); err != nil {
		return nil, err
	}
	unlockClient, err := r.Store.LockClient(p.Issuer, p.ClientID)
	if err != nil {
		return nil, err
	}
	defer unlockClient()
	if err := r.checkNoOtherRotation(p); err != nil {
		return nil, err
	}
	cur, err := profile.OpenSigner(ctx, r.keyProfile(p), p.Key, p.Alg, profile.ClientOptions{Backend: r.Backend})
	if err != nil {
		return nil, fmt.Errorf("rotation: the current key does not open: %w", err)
	}
	alg := req.Alg
	if alg == "" {
		alg = string(cur.Alg())
	}
	a, err := signer.ParseAlg(alg)
	if err != nil {
		return nil, err
	}
	bits := req.Bits
	if bits == 0 && a[0] != 'E' {
		if rk, ok := cur.Key().Public().(*rsa.PublicKey); ok {
			bits = rk.N.BitLen()
		} else {
			bits = keystore.DefaultRSABits
		}
	}
	if a[0] == 'E' {
		bits = 0
	}
	spec, err := keystore.SpecFor(a, bits)
	if err != nil {
		return nil, err
	}
	// The journal names file keys by absolute path: the profile's are
	// already (relative to the config file), and a relative --new-key is
	// relative to the working directory, like every key flag.
	curKey, err := absKey(p.Key)
	if err != nil {
		return nil, err
	}
	curKid, err := signer.Thumbprint(cur.Key().Public())
	if err != nil {
		return nil, err
	}
	newKey := req.NewKey
	if newKey == "" {
		newKey, err = deriveNewKey(curKey, r.now())
	} else {
		newKey, err = absKey(newKey)
	}
	if err != nil {
		return nil, err
	}
	u, err := keystore.Parse(newKey)
	if err != nil {
		return nil, err
	}
	j := &Journal{Version: 1, Profile: r.Profile, ClientID: p.ClientID, Issuer: p.Issuer, Step: Planned,
		CurrentKey: curKey, CurrentKid: curKid, NewKey: newKey, Alg: string(a), Bits: bits, Overlap: Duration{req.Overlap}}
	if j.Overlap.Duration == 0 && !req.OverlapSet {
		j.Overlap.Duration = DefaultOverlap
	}
	j.Endpoint, j.JWKAsString = req.Endpoint, req.JWKAsString
	if j.Endpoint == "" {
		j.Endpoint = p.SelvbetjeningURL
	}
	if j.Endpoint == "" {
		j.Endpoint = DefaultEndpoint(p.Issuer)
	}
	if err := token.CheckURL(j.Endpoint); err != nil {
		return nil, err
	}
	opts, err := r.keyOptions(p)
	if err != nil {
		return nil, err
	}
	if u.Scheme == keystore.SchemeGCPKMS && u.GCPKMS.Version != "" {
		return nil, fmt.Errorf("rotation: give the new Cloud KMS key without a version (%s); KMS numbers versions itself", u.GCPKMS.KeyName())
	}
	// Whatever generate would refuse (the name is taken, the backend has
	// no such algorithm, an existing KMS key has another one) is refused
	// now, before a journal exists that only abort could clear.
	if err := keystore.CheckGenerate(ctx, keystore.GenerateRequest{URI: u, Spec: spec, Options: opts}); err != nil {
		if errors.Is(err, keystore.ErrExists) {
			return nil, fmt.Errorf("%w: the new key %s already exists; name another with --new-key", keystore.ErrExists, u)
		}
		return nil, fmt.Errorf("rotation: the new key %s cannot be generated as %s: %w", u, spec, err)
	}
	if u.Scheme == keystore.SchemeGCPKMS {
		if infos, err := keystore.List(ctx, newKey, opts); err == nil {
			for _, in := range infos {
				j.KMSVersionsBefore = append(j.KMSVersionsBefore, in.URI.String())
			}
		} else if !errors.Is(err, keystore.ErrNotFound) {
			return nil, err
		}
	} else if _, err := keystore.Open(ctx, newKey, opts); err == nil {
		return nil, fmt.Errorf("%w: the new key %s already exists; name another with --new-key", keystore.ErrExists, u)
	} else if !errors.Is(err, keystore.ErrNotFound) {
		return nil, fmt.Errorf("rotation: check the new key: %w", err)
	}
	j.History = append(j.History, Event{At: r.now(), Step: Planned, Note: fmt.Sprintf("rotate %s from %s (kid %s) to %s (%s)", p.ClientID, redact(curKey), curKid, redact(newKey), a)})
	if err := r.Store.Save(j); err != nil {
		return nil, err
	}
	r.log().Info("rotation planned", "profile", r.Profile, "current", redact(curKey), "current_kid", curKid, "new", redact(newKey), "alg", string(a))
	return j, nil
}

// checkConfigWritable makes sure activation will be able to rewrite the
// config file, before a step creates something.
func (r *Runner) checkConfigWritable() error {
	if err := profile.CheckWritable(r.ConfigPath); err != nil {
		return fmt.Errorf("rotation: activation would not be able to switch profile %s, so nothing was created: %w", r.Profile, err)
	}
	return nil
}

// hasPinValue reports whether uri holds a literal PIN.
func hasPinValue(uri string) bool {
	if u, err := keystore.Parse(uri); err == nil && u.PKCS11 != nil && u.PKCS11.PinValue != "" {
		return true
	}
	l := strings.ToLower(uri)
	return strings.Contains(l, "pin-value=") || strings.Contains(l, "pin-value%3d")
}

// secretError refuses a key URI with a pin-value: a rotation records key
// URIs in its journal and the config file, which hold no secrets. It
// wraps profile.ErrSecret and never holds the PIN.
type secretError struct{ what string }

func (e *secretError) Error() string {
	return "rotation: " + e.what + " has a pin-value, and jwkctl keeps no PIN in its rotation journal or config file: " +
		"in the key URI use pin-source=file:/path/to/pin-file or pin-source=env:VARIABLE instead"
}

func (e *secretError) Unwrap() error { return profile.ErrSecret }

// absKey returns uri with a relative file path made absolute against the
// working directory; other URIs unchanged.
func absKey(uri string) (string, error) {
	u, err := keystore.Parse(uri)
	if err != nil {
		return "", err
	}
	if u.Scheme != keystore.SchemeFile || filepath.IsAbs(u.Path) {
		return uri, nil
	}
	abs, err := filepath.Abs(u.Path)
	if err != nil {
		return "", fmt.Errorf("rotation: %w", err)
	}
	return (&keystore.URI{Scheme: keystore.SchemeFile, Path: abs}).String(), nil
}

func redact(uri string) string {
	if u, err := keystore.Parse(uri); err == nil {
		return u.String()
	}
	return "(unparsable URI)"
}

// deriveNewKey names the next key after the current one and a date.
func deriveNewKey(current string, now time.Time) (string, error) {
	u, err := keystore.Parse(current)
	if err != nil {
		return "", err
	}
	stamp := now.UTC().Format("20060102-150405")
	switch u.Scheme {
	case keystore.SchemeFile:
		dir, base := filepath.Split(u.Path)
		ext := filepath.Ext(base)
		base = strings.TrimSuffix(base, ext)
		if i := strings.LastIndex(base, "-20"); i > 0 {
			base = base[:i] // client-20250101-… → client-<new stamp>
		}
		if ext == "" {
			ext = ".json"
		}
		return (&keystore.URI{Scheme: keystore.SchemeFile, Path: dir + base + "-" + stamp + ext}).String(), nil
	case keystore.SchemePKCS11:
		a := *u.PKCS11
		obj := a.Object
		if i := strings.LastIndex(obj, "-20"); i > 0 {
			obj = obj[:i]
		}
		if obj == "" {
			obj = "jwkctl"
		}
		a.Object, a.ID, a.HasID = obj+"-"+stamp, nil, false
		// The printed URI redacts a pin-value; profiles never hold one.
		return (&keystore.URI{Scheme: keystore.SchemePKCS11, PKCS11: &a}).String(), nil
	case keystore.SchemeGCPKMS:
		return "gcpkms://" + u.GCPKMS.KeyName(), nil
	case keystore.SchemeAWSKMS:
		// AWS KMS rotates no asymmetric key itself: the new key is a new
		// key under a new alias next to the current one.
		alias := u.AWSKMS.AliasName()
		if alias == "" || strings.HasSuffix(alias, "/") {
			return "", fmt.Errorf("rotation: %s names an AWS KMS key by ID or ARN, so there is no alias to name the new key after; give --new-key awskms:///alias/NAME", u)
		}
		if i := strings.LastIndex(alias, "-20"); i > len("alias/") {
			alias = alias[:i]
		}
		nu, err := u.AWSKMS.WithKey(alias + "-" + stamp)
		if err != nil {
			return "", err
		}
		return nu.String(), nil
	case keystore.SchemeAzureKV:
		// A new key, not a new version: jwkctl never adds a version to a
		// Key Vault key, so the old key stays what its URI names.
		n := *u.AzureKV
		if i := strings.LastIndex(n.Key, "-20"); i > 0 {
			n.Key = n.Key[:i]
		}
		if n.Key == "" {
			n.Key = "jwkctl"
		}
		n.Key, n.Version = n.Key+"-"+stamp, ""
		return n.String(), nil
	}
	return "", fmt.Errorf("rotation: cannot name a new key after %s; give --new-key", u)
}

// keyOptions are the backend options for the profile's keys, old and new:
// the Runner's Backend with the profile's KMS endpoint and, unless the
// Runner has a passphrase (--passphrase-file, JWKCTL_PASSPHRASE), the one
// in the profile's passphrase_file. A new file key is encrypted with the
// same passphrase as the current one.
func (r *Runner) keyOptions(p *profile.Profile) (keystore.Options, error) {
	o := r.Backend
	if p.KMSEndpoint != "" {
		o.Endpoint = p.KMSEndpoint
	}
	if o.Passphrase == nil && p.PassphraseFile != "" {
		b, err := file.ReadPassphraseFile(p.PassphraseFile)
		if err != nil {
			return o, fmt.Errorf("rotation: profile %s: %w", r.Profile, err)
		}
		o.Passphrase = b
	}
	return o, nil
}

// keyProfile is p as profile.OpenSigner and profile.NewClient should see
// it: a passphrase given to the Runner wins over the profile's
// passphrase_file, as in the other commands.
func (r *Runner) keyProfile(p *profile.Profile) *profile.Profile {
	if r.Backend.Passphrase == nil || p.PassphraseFile == "" {
		return p
	}
	q := p.Clone()
	q.PassphraseFile = ""
	return q
}

// ErrClientBusy: another profile of the same client (issuer and
// client_id) has a rotation that is not finished.
var ErrClientBusy = errors.New("rotation: another profile is rotating the same client")

// checkNoOtherRotation refuses a plan while another profile's journal for
// the same issuer and client_id is unfinished: each would upload its own
// key and switch only its own profile.
func (r *Runner) checkNoOtherRotation(p *profile.Profile) error {
	js, err := r.Store.List()
	if err != nil {
		return err
	}
	for _, j := range js {
		if j.Profile == r.Profile || j.Step == Retired || clientKey(j.Issuer, j.ClientID) != clientKey(p.Issuer, p.ClientID) {
			continue
		}
		return fmt.Errorf("%w: profile %s rotates client %s at %s (step %s); finish it (jwkctl rotate resume --profile %s) or abort it (jwkctl rotate abort --profile %s) first",
			ErrClientBusy, j.Profile, j.ClientID, j.Issuer, j.Step, j.Profile, j.Profile)
	}
	return nil
}

// lockedJournal takes the profile's rotation lock and loads its journal.
// The caller must call unlock when it is done with the journal.
func (r *Runner) lockedJournal() (j *Journal, unlock func(), err error) {
	unlock, err = r.Store.Lock(r.Profile)
	if err != nil {
		return nil, nil, err
	}
	if j, err = r.Store.Load(r.Profile); err != nil {
		unlock()
		return nil, nil, err
	}
	return j, unlock, nil
}

// Run carries the profile's rotation forward to step through (Activated,
// or Retired to also remove the old key), resuming where the journal says
// it stopped. retire must be true to go past Activated, and the overlap
// must have passed unless force is set.
func (r *Runner) Run(ctx context.Context, through Step, force bool) (*Journal, error) {
	j, unlock, err := r.lockedJournal()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return r.run(ctx, j, through, force)
}

// ErrAlreadyActivated: a rotation asked to stop before activation has
// already switched the profile.
var ErrAlreadyActivated = errors.New("rotation: the rotation is already activated")

// Hold carries the rotation to Confirmed — the new key generated,
// self-tested, registered, and a canary token obtained with it — and
// records that it waits there for the hosts to be switched to the new key
// (configuration management, a new ConfigMap): the profile is not
// changed. Activate or Run carries it on. A rotation past Confirmed is
// ErrAlreadyActivated.
func (r *Runner) Hold(ctx context.Context) (*Journal, error) {
	j, unlock, err := r.lockedJournal()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if j.Step.Done(Activated) {
		return j, fmt.Errorf("%w: profile %s uses the new key %s (kid %s) since step %s; nothing to hold", ErrAlreadyActivated, r.Profile, redact(j.NewKey), j.NewKid, j.Step)
	}
	if j, err = r.run(ctx, j, Confirmed, false); err != nil {
		return j, err
	}
	if !j.HeldForRollout {
		j.HeldForRollout = true
		j.History = append(j.History, Event{At: r.now(), Step: Confirmed, Note: "held before activation: switch every host to the new key, then jwkctl rotate activate --profile " + profile.ShellQuote(r.Profile)})
		if err := r.Store.Save(j); err != nil {
			return j, err
		}
	}
	return j, nil
}

// ErrNotConfirmed: activation asked for before the new key passed the
// canary.
var ErrNotConfirmed = errors.New("rotation: the new key is not confirmed yet")

// Activate switches the profile to the new key of a rotation that has
// passed the canary (step Confirmed, e.g. held by Hold while the hosts were
// switched). It never generates, uploads or tests: a rotation before
// Confirmed is ErrNotConfirmed.
func (r *Runner) Activate(ctx context.Context) (*Journal, error) {
	j, unlock, err := r.lockedJournal()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !j.Step.Done(Confirmed) {
		return j, fmt.Errorf("%w: the rotation of %s is at step %s, before the canary token with the new key; carry it to confirmed first with jwkctl rotate run --no-activate --profile %s (or all the way with jwkctl rotate resume)",
			ErrNotConfirmed, r.Profile, j.Step, profile.ShellQuote(r.Profile))
	}
	return r.run(ctx, j, Activated, false)
}

// run carries j forward to step through. The profile's lock is held.
func (r *Runner) run(ctx context.Context, j *Journal, through Step, force bool) (*Journal, error) {
	if err := j.checkNoSecret(); err != nil {
		// Before any step: a key made with the PIN could not be recorded.
		return j, err
	}
	if !j.Step.Done(through) {
		unlockClient, err := r.Store.LockClient(j.Issuer, j.ClientID)
		if err != nil {
			return j, err
		}
		defer unlockClient()
	}
	for !j.Step.Done(through) {
		if err := ctx.Err(); err != nil {
			return j, err
		}
		next := order[j.Step.index()+1]
		r.log().Info("rotation step", "profile", r.Profile, "step", string(next))
		if err := r.do(ctx, j, next, force); err != nil {
			if errors.Is(err, ErrOverlap) {
				// Not a failed step: the old key is kept on purpose, and
				// the error says until when.
				return j, err
			}
			return j, fmt.Errorf("rotation: step %s: %w", next, err)
		}
		j.Step = next
		if err := r.Store.Save(j); err != nil {
			return j, err
		}
	}
	return j, nil
}

func (r *Runner) do(ctx context.Context, j *Journal, step Step, force bool) error {
	f, p, err := r.loadProfile()
	if err != nil {
		return err
	}
	note := ""
	switch step {
	case Generated:
		note, err = r.generate(ctx, j, p)
	case SelfTested:
		note, err = r.selfTest(ctx, j, p)
	case Uploaded:
		note, err = r.upload(ctx, j, p)
	case Confirmed:
		note, err = r.confirm(ctx, j, p)
	case Activated:
		note, err = r.activate(ctx, j)
	case Retired:
		note, err = r.retire(ctx, j, f, p, force)
	}
	if err != nil {
		return err
	}
	j.History = append(j.History, Event{At: r.now(), Step: step, Note: note})
	return nil
}

func (r *Runner) generate(ctx context.Context, j *Journal, p *profile.Profile) (string, error) {
	opts, err := r.keyOptions(p)
	if err != nil {
		return "", err
	}
	a, _ := signer.ParseAlg(j.Alg)
	spec, err := keystore.SpecFor(a, j.Bits)
	if err != nil {
		return "", err
	}
	if err := r.checkConfigWritable(); err != nil {
		return "", err
	}
	if err := r.hook(Generated, false); err != nil {
		return "", err
	}
	key, adopted, err := r.findNewKey(ctx, j, opts)
	if err != nil {
		return "", err
	}
	if key == nil {
		u, err := keystore.Parse(j.NewKey)
		if err != nil {
			return "", err
		}
		if key, err = keystore.Generate(ctx, keystore.GenerateRequest{URI: u, Spec: spec, Options: opts}); err != nil {
			return "", err
		}
	}
	if err := r.hook(Generated, true); err != nil {
		return "", err
	}
	jwk, err := signer.PublicJWK(key.Public(), a)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(jwk)
	j.NewKey, j.NewKid, j.NewPublicJWK = key.URI().String(), jwk.KeyID, b
	if adopted {
		return "found the new key from an interrupted run: " + jwk.KeyID, nil
	}
	return "generated " + spec.String() + " key " + jwk.KeyID, nil
}

// findNewKey finds a key an interrupted run generated but did not record.
// Plan checked that the name was free, and the lock keeps other rotations
// out, so a key there now is ours.
func (r *Runner) findNewKey(ctx context.Context, j *Journal, opts keystore.Options) (keystore.Key, bool, error) {
	u, err := keystore.Parse(j.NewKey)
	if err != nil {
		return nil, false, err
	}
	if u.Scheme != keystore.SchemeGCPKMS || u.GCPKMS.Version != "" {
		k, err := keystore.Open(ctx, j.NewKey, opts)
		switch {
		case err == nil:
			return k, true, nil
		case errors.Is(err, keystore.ErrNotFound):
			return nil, false, nil
		}
		return nil, false, err
	}
	fresh, err := freshVersions(ctx, j, opts)
	if err != nil {
		return nil, false, err
	}
	switch len(fresh) {
	case 0:
		return nil, false, nil
	case 1:
		k, err := keystore.Open(ctx, fresh[0], opts)
		return k, err == nil, err
	}
	return nil, false, fmt.Errorf("rotation: %d new versions of %s appeared since the plan (%s); disable the extra ones and resume", len(fresh), j.NewKey, strings.Join(fresh, ", "))
}

// freshVersions lists the versions of the planned KMS key that were not
// there at plan time.
func freshVersions(ctx context.Context, j *Journal, opts keystore.Options) ([]string, error) {
	infos, err := keystore.List(ctx, j.NewKey, opts)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var fresh []string
	for _, in := range infos {
		if !slices.Contains(j.KMSVersionsBefore, in.URI.String()) {
			fresh = append(fresh, in.URI.String())
		}
	}
	return fresh, nil
}

func (j *Journal) publicJWK() (jose.JSONWebKey, error) {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(j.NewPublicJWK, &jwk); err != nil || !jwk.IsPublic() {
		return jwk, errors.New("rotation: the journal's public JWK is damaged")
	}
	return jwk, nil
}

// selfTest signs an assertion with the new key and verifies it against
// the exact public JWK that will be uploaded.
func (r *Runner) selfTest(ctx context.Context, j *Journal, p *profile.Profile) (string, error) {
	s, err := profile.OpenSigner(ctx, r.keyProfile(p), j.NewKey, j.Alg, profile.ClientOptions{Backend: r.Backend})
	if err != nil {
		return "", err
	}
	ac, err := assertion.NewClient(s, assertion.Config{ClientID: j.ClientID, Audience: j.Issuer})
	if err != nil {
		return "", err
	}
	jws, err := ac.Sign()
	if err != nil {
		return "", err
	}
	jwk, err := j.publicJWK()
	if err != nil {
		return "", err
	}
	obj, err := jose.ParseSignedCompact(jws, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(j.Alg)})
	if err != nil {
		return "", err
	}
	if _, err := obj.Verify(&jwk); err != nil {
		return "", fmt.Errorf("the new key's assertion does not verify with the JWK to be uploaded: %v", err)
	}
	if obj.Signatures[0].Header.KeyID != jwk.KeyID {
		return "", fmt.Errorf("the assertion's kid %s is not the JWK's %s", obj.Signatures[0].Header.KeyID, jwk.KeyID)
	}
	return "assertion signed by the new key verified with the public JWK", nil
}

// selvbetjening returns a client for the API, authenticated with key.
func (r *Runner) selvbetjening(ctx context.Context, j *Journal, p *profile.Profile, key string) (*Client, error) {
	q := r.keyProfile(p).Clone()
	q.Key, q.DPoP, q.Scopes, q.Resources = key, new(true), []string{Scope}, nil
	if !sameKey(key, p.Key) {
		// The profile's alg and kept kid are the old key's.
		q.Alg, q.Kid = j.Alg, ""
	}
	tc, err := profile.NewClient(ctx, q, profile.ClientOptions{Backend: r.Backend})
	if err != nil {
		return nil, err
	}
	src := token.NewSource(tc)
	return &Client{Endpoint: j.Endpoint, HTTP: token.NewHTTPClient(src, r.HTTPClient), JWKAsString: j.JWKAsString}, nil
}

func registered(keys []RegisteredKey, kid string) *RegisteredKey {
	for i := range keys {
		if keys[i].JWKThumbprint == kid || keys[i].Kid == kid {
			return &keys[i]
		}
	}
	return nil
}

// lookUp lists the client's registered keys (authenticated with the
// current key) and finds the new one, if it is there.
func (r *Runner) lookUp(ctx context.Context, j *Journal, p *profile.Profile) (*Client, *RegisteredKey, error) {
	sb, err := r.selvbetjening(ctx, j, p, j.CurrentKey)
	if err != nil {
		return nil, nil, err
	}
	keys, err := sb.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	return sb, registered(keys, j.NewKid), nil
}

func (r *Runner) upload(ctx context.Context, j *Journal, p *profile.Profile) (string, error) {
	sb, k, err := r.lookUp(ctx, j, p)
	if err != nil {
		return "", err
	}
	if k != nil {
		j.Expiration = k.Expiration
		return "already registered by an interrupted run", nil
	}
	jwk, err := j.publicJWK()
	if err != nil {
		return "", err
	}
	if err := r.hook(Uploaded, false); err != nil {
		return "", err
	}
	exp, err := sb.Upload(ctx, jwk)
	if err != nil {
		return "", err
	}
	if err := r.hook(Uploaded, true); err != nil {
		return "", err
	}
	j.Expiration = &exp
	return "registered " + j.NewKid + ", expires " + exp.Format(time.DateOnly), nil
}

// confirm checks the registration and gets a real token with the new key.
func (r *Runner) confirm(ctx context.Context, j *Journal, p *profile.Profile) (string, error) {
	_, k, err := r.lookUp(ctx, j, p)
	if err != nil {
		return "", err
	}
	if k == nil {
		return "", fmt.Errorf("the new key %s is not in Selvbetjening's list yet", j.NewKid)
	}
	q := r.keyProfile(p).Clone()
	q.Key, q.Alg, q.Kid = j.NewKey, j.Alg, ""
	tc, err := profile.NewClient(ctx, q, profile.ClientOptions{Backend: r.Backend})
	if err != nil {
		return "", err
	}
	resp, err := tc.Exchange(ctx, token.Request{})
	if err != nil {
		return "", fmt.Errorf("canary token with the new key: %w", err)
	}
	return fmt.Sprintf("canary: a %s token with the new key (scope %q)", resp.TokenType, resp.Scope), nil
}

// activate points the profile at the new key, atomically. The config
// file is edited in place (profile.File.Save): only the profile's key
// changes, its next_key goes, and its alg is set only when it had one or
// the new key would otherwise sign with another algorithm than the one
// tested; the user's comments and everything else stay as they were.
//
// Other profiles of the same file may be switched by other rotations at
// the same time (the profile and client locks do not cover them): the
// file is read, changed and written under the config file's own lock, so
// no rotation writes back a copy that misses another's change. Opening
// the new key, which may be slow (an HSM, Cloud KMS), is done before.
func (r *Runner) activate(ctx context.Context, j *Journal) (string, error) {
	_, p, err := r.loadProfile()
	if err != nil {
		return "", err
	}
	if err := r.hook(Activated, false); err != nil {
		return "", err
	}
	keyAlg, haveAlg := "", false
	if p.Key != j.NewKey && p.Alg == "" {
		keyAlg, haveAlg = r.defaultAlg(ctx, j, p), true
	}
	unlock, err := profile.Lock(ctx, r.ConfigPath)
	if err != nil {
		return "", err
	}
	defer unlock()
	f, p, err := r.loadProfile()
	if err != nil {
		return "", err
	}
	if p.Key != j.NewKey {
		q := p.Clone()
		// A kept kid named the old key's registration, not the new key's.
		q.Key, q.NextKey, q.Kid = j.NewKey, "", ""
		if q.Alg == "" && !haveAlg {
			keyAlg = r.defaultAlg(ctx, j, p)
		}
		if q.Alg != "" || keyAlg != j.Alg {
			q.Alg = j.Alg
		}
		if err := f.Set(r.Profile, q); err != nil {
			return "", err
		}
		if err := f.Save(r.ConfigPath); err != nil {
			return "", err
		}
	}
	unlock()
	if err := r.hook(Activated, true); err != nil {
		return "", err
	}
	now := r.now()
	j.ActivatedAt = &now
	return "profile " + r.Profile + " now uses " + redact(j.NewKey) + "; reload running agents (systemctl reload jwkctl-agent / kill -HUP)", nil
}

// defaultAlg is the algorithm the new key signs with when the profile
// names none, or "" when that cannot be told (the key does not open).
func (r *Runner) defaultAlg(ctx context.Context, j *Journal, p *profile.Profile) string {
	s, err := profile.OpenSigner(ctx, r.keyProfile(p), j.NewKey, "", profile.ClientOptions{Backend: r.Backend})
	if err != nil {
		return ""
	}
	if c, ok := s.Key().(io.Closer); ok {
		c.Close()
	}
	return string(s.Alg())
}

// ErrOverlap: the old key may not be retired yet.
var ErrOverlap = errors.New("rotation: the overlap period has not passed")

// OverlapError is the error for a retire asked for before the overlap has
// passed: it says when the old key may go and how to retire it then or
// now. Nothing was retired; it is ErrOverlap.
type OverlapError struct {
	Profile string
	// Until is when the overlap ends: activation plus Overlap.
	Until   time.Time
	Overlap time.Duration
	// Disable: the retire asked for was --retire-by disable.
	Disable bool
}

func (e *OverlapError) Error() string {
	cmd := "jwkctl rotate resume --profile " + profile.ShellQuote(e.Profile)
	if e.Disable {
		cmd += " --retire-by disable"
	}
	return fmt.Sprintf("the old key stays until %s (overlap %v); run %s --retire after that, or %s --force-retire to retire it now",
		e.Until.Format(time.RFC3339), e.Overlap, cmd, cmd)
}

// Is makes an OverlapError match ErrOverlap.
func (e *OverlapError) Is(target error) bool { return target == ErrOverlap }

// ErrInUse: the old key cannot be retired while a profile uses it.
var ErrInUse = errors.New("rotation: the old key is still in use")

// ErrNotOldKey: the key at the old key's URI is not the key this rotation
// replaced (another kid), or the journal cannot tell; retire touches
// nothing.
var ErrNotOldKey = errors.New("rotation: not the old key of this rotation")

// ErrOldKeyMissing: the old key is not in its backend although no retire
// of it was started; retire touches nothing.
var ErrOldKeyMissing = errors.New("rotation: the old key is missing")

func (r *Runner) retire(ctx context.Context, j *Journal, f *profile.File, p *profile.Profile, force bool) (string, error) {
	if j.ActivatedAt != nil && !force {
		if until := j.ActivatedAt.Add(j.Overlap.Duration); r.now().Before(until) {
			return "", &OverlapError{Profile: j.Profile, Until: until, Overlap: j.Overlap.Duration, Disable: r.DisableOld}
		}
	}
	// A profile rolled back to the old key, or another profile of the
	// config that shares it, would stop working.
	if users := keyUsers(f, j.CurrentKey); len(users) > 0 {
		return "", fmt.Errorf("%w: %s is used by %s; point them at another key first (nothing was deleted or disabled)", ErrInUse, redact(j.CurrentKey), strings.Join(users, ", "))
	}
	opts, err := r.keyOptions(p)
	if err != nil {
		return "", err
	}
	gone, err := r.checkOldKey(ctx, j, opts)
	if err != nil {
		return "", err
	}
	old := redact(j.CurrentKey) + " (kid " + j.CurrentKid + ")"
	if gone {
		now := r.now()
		j.RetiredAt = &now
		return "old key " + old + " was already removed by an interrupted retire; its registration expires in Selvbetjening on its own", nil
	}
	// Asked last, right before the key goes: an agent reloaded a moment
	// ago counts.
	agentNotes, err := r.CheckAgents(ctx, j, force)
	if err != nil {
		return "", err
	}
	if j.RetireStartedAt == nil {
		// Recorded before the side effect: a resumed retire that finds
		// the key gone knows it was this rotation that removed it.
		now := r.now()
		j.RetireStartedAt = &now
		if err := r.Store.Save(j); err != nil {
			return "", err
		}
	}
	if err := r.hook(Retired, false); err != nil {
		return "", err
	}
	how := "removed from its backend"
	if r.DisableOld {
		// Disabling twice is harmless, so a resumed run simply does it again.
		if err := keystore.SetEnabled(ctx, j.CurrentKey, false, opts); err != nil {
			return "", err
		}
		how = "disabled in its backend (jwkctl keys enable undoes it)"
	} else {
		// Not found: the key was there a moment ago with the right kid,
		// so it is gone now (for Cloud KMS: the version is already
		// scheduled for destruction by an interrupted run).
		err := keystore.Delete(ctx, j.CurrentKey, opts)
		if err != nil && !errors.Is(err, keystore.ErrNotFound) {
			return "", err
		}
	}
	if err := r.hook(Retired, true); err != nil {
		return "", err
	}
	now := r.now()
	j.RetiredAt = &now
	note := "old key " + old + " " + how + "; its registration expires in Selvbetjening on its own"
	if len(agentNotes) > 0 {
		note += " (" + strings.Join(agentNotes, "; ") + ")"
	}
	return note, nil
}

// ErrAgentUnknown: an agent named for the retire could not tell which
// keys it signs with (unreachable, refused the secret, or too old to say).
var ErrAgentUnknown = errors.New("rotation: cannot tell which key an agent signs with")

// CheckAgents asks each of the Runner's Agents which kid each of its
// profiles signs with. An agent that signs with the old key (j's
// CurrentKid, for any profile) is an error wrapping ErrInUse, naming the
// agent, the profile and the kid. An agent that cannot tell is an error
// wrapping ErrAgentUnknown, unless force is set: then it is one of the
// notes, which say what each agent answered.
func (r *Runner) CheckAgents(ctx context.Context, j *Journal, force bool) (notes []string, err error) {
	if len(r.Agents) == 0 {
		return nil, nil
	}
	if j.CurrentKid == "" {
		return nil, fmt.Errorf("%w: the journal does not record the old key's kid (planned by an older jwkctl), so the agents cannot be asked about it", ErrNotOldKey)
	}
	for _, ag := range r.Agents {
		keys, err := askAgent(ctx, ag)
		if err != nil {
			if !force {
				return nil, fmt.Errorf("%w: %w; nothing was deleted or disabled (check the address and the agent, or retire without its answer with --force-retire)", ErrAgentUnknown, err)
			}
			notes = append(notes, fmt.Sprintf("agent %s not asked: %v", ag.Addr, err))
			continue
		}
		var onNew []string
		for _, name := range sortedKeys(keys) {
			switch keys[name] {
			case j.CurrentKid:
				return nil, fmt.Errorf("%w: the agent at %s signs with the old key (kid %s) for profile %s; switch that host to the new key (kid %s), reload its agent (kill -HUP, or systemctl reload), then retire again; nothing was deleted or disabled",
					ErrInUse, ag.Addr, j.CurrentKid, name, j.NewKid)
			case j.NewKid:
				onNew = append(onNew, name)
			}
		}
		if len(onNew) == 0 {
			notes = append(notes, fmt.Sprintf("agent %s serves neither key", ag.Addr))
		} else {
			notes = append(notes, fmt.Sprintf("agent %s signs with the new key for %s", ag.Addr, strings.Join(onNew, ", ")))
		}
	}
	return notes, nil
}

// askAgent returns the kid of each profile an agent serves.
func askAgent(ctx context.Context, ag Agent) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	src := &token.AgentSource{Addr: ag.Addr, SecretFile: ag.SecretFile}
	h, err := src.Health(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case len(h.Profiles) == 0 && ag.SecretFile == "":
		return nil, fmt.Errorf("the agent at %s names no profiles to a caller without its bearer secret: give --agent-secret-file FILE (its --secret-file)", ag.Addr)
	case len(h.Profiles) == 0:
		return nil, fmt.Errorf("the agent at %s names no profiles, though asked with its secret", ag.Addr)
	case len(h.SigningKeys) < len(h.Profiles):
		return nil, fmt.Errorf("the agent at %s does not say which key each of its profiles (%s) signs with; a jwkctl agent that does is needed", ag.Addr, strings.Join(h.Profiles, ", "))
	}
	return h.SigningKeys, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkOldKey makes sure the key at the journal's old URI is the key this
// rotation replaced: it opens it and compares its kid with the one
// recorded at plan time. gone is true when the key is not there and an
// earlier retire of this rotation was started (so removed it). Every
// error means nothing may be deleted or disabled.
func (r *Runner) checkOldKey(ctx context.Context, j *Journal, opts keystore.Options) (gone bool, err error) {
	u, err := keystore.Parse(j.CurrentKey)
	if err != nil {
		return false, err
	}
	if j.CurrentKid == "" || (u.Scheme == keystore.SchemeFile && !filepath.IsAbs(u.Path)) {
		// Planned by an older jwkctl: no kid, and a relative path that was
		// resolved against whatever the working directory was.
		return false, fmt.Errorf("%w: the journal does not record the old key's kid (the rotation was planned by an older jwkctl), so it cannot tell whether %s is still that key; nothing was deleted or disabled. "+
			"Check the key (jwkctl keys public --key '%s'), delete it by hand if it is the old one (jwkctl keys delete --key '%s'), then jwkctl rotate abort --profile %s",
			ErrNotOldKey, u, u, u, j.Profile)
	}
	key, err := keystore.Open(ctx, j.CurrentKey, opts)
	switch {
	case err == nil:
		kid, terr := signer.Thumbprint(key.Public())
		if c, ok := key.(io.Closer); ok {
			c.Close()
		}
		if terr != nil {
			return false, terr
		}
		if kid != j.CurrentKid {
			return false, fmt.Errorf("%w: %s holds the key with kid %s, but this rotation replaced kid %s; nothing was deleted or disabled (find the old key with jwkctl keys list, or if it is gone for good drop the journal with jwkctl rotate abort --profile %s)",
				ErrNotOldKey, u, kid, j.CurrentKid, j.Profile)
		}
		return false, nil
	case errors.Is(err, keystore.ErrNotFound):
		if j.RetireStartedAt != nil {
			return true, nil
		}
		return false, fmt.Errorf("%w: %s (kid %s) is not in its backend, and this rotation never started to retire it, so it was moved or removed by someone else; nothing was deleted or disabled (if it is gone for good, drop the journal with jwkctl rotate abort --profile %s): %w",
			ErrOldKeyMissing, u, j.CurrentKid, j.Profile, err)
	case j.RetireStartedAt != nil && u.Scheme == keystore.SchemeGCPKMS && u.GCPKMS.VersionName() != "",
		j.RetireStartedAt != nil && u.Scheme == keystore.SchemeAzureKV:
		// An interrupted retire disabled the version or scheduled its
		// destruction, so KMS no longer gives its public key. The kid was
		// checked when that retire started, and KMS never reuses a
		// version's name (nor does Key Vault): it is still the old key.
		// A Key Vault URI without a version names the key's current
		// version; rotation never adds versions to the old key, and one
		// added by someone else would be enabled, open, and fail the kid
		// check above.
		return false, nil
	case j.RetireStartedAt != nil && u.Scheme == keystore.SchemeAWSKMS:
		// Likewise for an AWS KMS key an interrupted retire disabled: its
		// kid was checked when that retire started.
		return false, nil
	}
	return false, fmt.Errorf("rotation: the old key %s could not be opened to check its kid (nothing was deleted or disabled): %w", u, err)
}

// Abort drops the journal. Keys are left where they are; the note says
// what to clean up by hand.
func (r *Runner) Abort(ctx context.Context) (string, error) {
	unlock, err := r.Store.Lock(r.Profile)
	if err != nil {
		return "", err
	}
	defer unlock()
	j, err := r.Store.Load(r.Profile)
	var je *journalError
	if errors.As(err, &je) && je.profile == r.Profile && je.path == r.Store.path(r.Profile) {
		// A journal that cannot be carried on can still be dropped: its
		// error said what to check first.
		if err := os.Remove(je.path); err != nil {
			return "", fmt.Errorf("rotation: %w", err)
		}
		return fmt.Sprintf("removed the journal %s, which could not tell what its rotation left: check the registered keys with jwkctl keys expiry --profile %s and delete a key nobody uses with jwkctl keys delete --key URI",
			je.path, profile.ShellQuote(r.Profile)), nil
	}
	if err != nil {
		return "", err
	}
	var note string
	switch {
	case j.Step.Done(Activated):
		note = "the profile already uses the new key; nothing to undo"
	case j.Step.Done(Uploaded):
		note = fmt.Sprintf("the new key %s stays registered in Selvbetjening until it expires, and in its backend at %s; the profile still uses the old key", j.NewKid, redact(j.NewKey))
	case j.Step == SelfTested:
		// The upload is the next step: it may have reached Selvbetjening
		// before a crash, or not.
		note = fmt.Sprintf("the new key %s at %s may have been registered in Selvbetjening by an interrupted upload; "+
			"check with jwkctl keys expiry --profile %s (a registered key is listed with that kid and expires on its own). "+
			"Either way the profile still uses the old key, and you can delete the new one: jwkctl keys delete --key '%s'",
			j.NewKid, redact(j.NewKey), r.Profile, redact(j.NewKey))
	case j.Step.Done(Generated):
		note = fmt.Sprintf("the new key at %s was never uploaded; delete it with jwkctl keys delete --key '%s'", redact(j.NewKey), redact(j.NewKey))
	default:
		note = r.abortPlanned(ctx, j)
	}
	return note, r.Store.Remove(r.Profile)
}

// abortPlanned says what a rotation still at "planned" left: a crash
// inside generate may have made the key without recording it, so it looks.
func (r *Runner) abortPlanned(ctx context.Context, j *Journal) string {
	opts := r.Backend
	if _, p, err := r.loadProfile(); err == nil {
		if o, err := r.keyOptions(p); err == nil {
			opts = o
		}
	}
	stray, err := strayKeys(ctx, j, opts)
	switch {
	case err != nil:
		return fmt.Sprintf("an interrupted run may have created the new key at %s, and it could not be checked (%v); "+
			"look with jwkctl keys list --key '%s' and delete a key found there with jwkctl keys delete --key URI (it was never uploaded)",
			redact(j.NewKey), err, redact(j.NewKey))
	case len(stray) == 0:
		return "nothing was created (no new key at " + redact(j.NewKey) + ")"
	}
	var cmds []string
	for _, s := range stray {
		cmds = append(cmds, "jwkctl keys delete --key '"+redact(s)+"'")
	}
	return fmt.Sprintf("an interrupted run created the new key at %s but never uploaded it; delete it with %s", strings.Join(stray, ", "), strings.Join(cmds, "; "))
}

// strayKeys finds keys an interrupted generate made: the planned key if
// it exists, or for Cloud KMS the versions made since the plan.
func strayKeys(ctx context.Context, j *Journal, opts keystore.Options) ([]string, error) {
	u, err := keystore.Parse(j.NewKey)
	if err != nil {
		return nil, err
	}
	if u.Scheme == keystore.SchemeGCPKMS && u.GCPKMS.Version == "" {
		fresh, err := freshVersions(ctx, j, opts)
		for i := range fresh {
			fresh[i] = redact(fresh[i])
		}
		return fresh, err
	}
	_, err = keystore.Open(ctx, j.NewKey, opts)
	switch {
	case err == nil, errors.Is(err, keystore.ErrPassphrase):
		return []string{u.String()}, nil
	case errors.Is(err, keystore.ErrNotFound):
		return nil, nil
	}
	return nil, err
}

// KeyInUse tells which of rotation j's keys the profile's key names now:
// "old" or "new", or "" for another key (the config edited by hand); key
// is the profile's key URI. An error means the config or the profile
// could not be read.
func (r *Runner) KeyInUse(j *Journal) (which, key string, err error) {
	_, p, err := r.loadProfile()
	if err != nil {
		return "", "", err
	}
	switch {
	case p.Key != "" && j.NewKey != "" && sameKey(p.Key, j.NewKey):
		return "new", p.Key, nil
	case p.Key != "" && sameKey(p.Key, j.CurrentKey):
		return "old", p.Key, nil
	}
	return "", p.Key, nil
}

// keyUsers lists the profiles of f (and their entries) that name key.
func keyUsers(f *profile.File, key string) []string {
	var users []string
	for _, name := range f.Names() {
		p := f.Profiles[name]
		if p == nil {
			continue
		}
		for _, e := range []struct{ field, uri string }{{"key", p.Key}, {"dpop_key", p.DPoPKey}, {"next_key", p.NextKey}} {
			if e.uri != "" && sameKey(e.uri, key) {
				users = append(users, "profile "+name+" ("+e.field+")")
			}
		}
	}
	return users
}

// sameKey reports whether two URIs may name the same key, by what they
// name rather than how they are spelt: file paths absolute and clean (or
// the same file through a link), PKCS#11 URIs by token, object and id (not
// module, PIN source or the order of attributes), KMS URIs by resource
// name. When two PKCS#11 URIs cannot be told apart (one names the object
// by label, the other by id) they count as the same: the answer guards a
// deletion.
func sameKey(a, b string) bool {
	ua, err := keystore.Parse(a)
	if err != nil {
		return a == b
	}
	ub, err := keystore.Parse(b)
	if err != nil || ua.Scheme != ub.Scheme {
		return false
	}
	switch ua.Scheme {
	case keystore.SchemeFile:
		pa, erra := filepath.Abs(ua.Path)
		pb, errb := filepath.Abs(ub.Path)
		if erra != nil || errb != nil {
			return false
		}
		if pa == pb {
			return true
		}
		fa, erra := os.Stat(pa)
		fb, errb := os.Stat(pb)
		return erra == nil && errb == nil && os.SameFile(fa, fb)
	case keystore.SchemePKCS11:
		return samePKCS11(ua.PKCS11, ub.PKCS11)
	case keystore.SchemeGCPKMS:
		return ua.GCPKMS.Name() == ub.GCPKMS.Name()
	case keystore.SchemeAWSKMS:
		// By name: an alias and the key ID it points at cannot be told
		// apart without asking KMS. No region means the default one.
		a, b := ua.AWSKMS, ub.AWSKMS
		return a.Key == b.Key && (a.Region == b.Region || a.Region == "" || b.Region == "")
	case keystore.SchemeAzureKV:
		a, b := ua.AzureKV, ub.AzureKV
		// Key Vault names are case-insensitive; a URI without a version
		// names the key's current one, which may be either.
		return a.Host == b.Host && strings.EqualFold(a.Key, b.Key) &&
			(a.Version == "" || b.Version == "" || strings.EqualFold(a.Version, b.Version))
	}
	return ua.String() == ub.String()
}

func samePKCS11(a, b *keystore.PKCS11Attrs) bool {
	differ := func(x, y string) bool { return x != "" && y != "" && x != y }
	if differ(a.Token, b.Token) || differ(a.Serial, b.Serial) {
		return false
	}
	if a.HasID && b.HasID && !bytes.Equal(a.ID, b.ID) {
		return false
	}
	return !differ(a.Object, b.Object)
}
