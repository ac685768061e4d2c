package rotation

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jwkctl/jwkctl/internal/inputfile"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
)

// Step is how far a rotation has come. Each step's side effect is done at
// most once: the journal records it before the next step starts, and a
// resumed rotation checks the world (does the key exist? is it
// registered?) for the one step that may have been cut short.
type Step string

// The steps, in order.
const (
	Planned    Step = "planned"
	Generated  Step = "generated"
	SelfTested Step = "self-tested"
	Uploaded   Step = "uploaded"
	Confirmed  Step = "confirmed"
	Activated  Step = "activated"
	Retired    Step = "retired"
)

var order = []Step{Planned, Generated, SelfTested, Uploaded, Confirmed, Activated, Retired}

func (s Step) index() int {
	for i, o := range order {
		if o == s {
			return i
		}
	}
	return -1
}

// Done reports whether s is at or past t.
func (s Step) Done(t Step) bool { return s.index() >= t.index() }

// Journal is the record of one client's rotation, kept as JSON, mode 0600.
type Journal struct {
	Version  int    `json:"version"`
	Profile  string `json:"profile"`
	ClientID string `json:"client_id"`
	Issuer   string `json:"issuer"`
	Endpoint string `json:"selvbetjening_endpoint"`
	// JWKAsString sends the JWK as a JSON string (older NHN samples).
	JWKAsString bool `json:"jwk_as_string,omitempty"`
	Step        Step `json:"step"`
	// CurrentKey is the old key's URI, a file key by its absolute path, so
	// the journal names the same key from any working directory.
	CurrentKey string `json:"current_key"`
	// CurrentKid is the old key's kid (RFC 7638 thumbprint) at plan time.
	// Retire deletes or disables only a key with this kid.
	CurrentKid string `json:"current_kid,omitempty"`
	// NewKey is the new key's URI as planned (for KMS, the crypto key),
	// then, once generated, its full URI (with id or version). A file key
	// is named by its absolute path.
	NewKey string `json:"new_key"`
	Alg    string `json:"alg"`
	Bits   int    `json:"bits,omitempty"`
	// KMSVersionsBefore lists a KMS key's versions before generation, so
	// a resumed rotation can tell its own new version from older ones.
	KMSVersionsBefore []string        `json:"kms_versions_before,omitempty"`
	NewKid            string          `json:"new_kid,omitempty"`
	NewPublicJWK      json.RawMessage `json:"new_public_jwk,omitempty"`
	Expiration        *time.Time      `json:"expiration,omitempty"`
	Overlap           Duration        `json:"overlap"`
	// HeldForRollout: the rotation stopped after the canary on purpose
	// (rotate run --no-activate), for configuration management to switch
	// every host to the new key; rotate activate or resume carries it on.
	HeldForRollout bool       `json:"held_for_rollout,omitempty"`
	ActivatedAt    *time.Time `json:"activated_at,omitempty"`
	// RetireStartedAt is set, and saved, once the old key's kid was
	// checked and right before it is deleted or disabled: only then may a
	// resumed retire take a missing old key for one it removed itself.
	RetireStartedAt *time.Time `json:"retire_started_at,omitempty"`
	RetiredAt       *time.Time `json:"retired_at,omitempty"`
	History         []Event    `json:"history"`
}

// Event is one line of the journal's history.
type Event struct {
	At   time.Time `json:"at"`
	Step Step      `json:"step"`
	Note string    `json:"note"`
}

// Duration is a time.Duration that reads and writes as "72h0m0s".
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	d.Duration = v
	return err
}

// ErrNoJournal: there is no rotation for the profile.
var ErrNoJournal = errors.New("rotation: no rotation in progress")

// ErrLocked: another rotation of the same client is running.
var ErrLocked = errors.New("rotation: another rotation is running")

// ErrOtherProfile: the journal file found for a profile records another
// profile's rotation. It is never carried out for the profile asked for.
var ErrOtherProfile = errors.New("rotation: the journal belongs to another profile")

// Store keeps journals and locks in a directory.
//
// A profile's journal is "NAME.HASH.json" and its lock "NAME.HASH.lock":
// NAME is the profile name made safe for a file name (for people reading
// the directory) and HASH is taken from the exact profile name, so no two
// profiles share a journal or a lock, whatever their names (also on a
// case-insensitive file system). Older versions named them "NAME.json";
// such a journal is still found, and moved to the new name at the next
// save.
type Store struct {
	Dir string
	// Log, if set, gets warnings: a journal that others can read.
	Log *slog.Logger
}

func (s Store) path(profile string) string { return filepath.Join(s.Dir, fileName(profile)+".json") }
func (s Store) lockPath(profile string) string {
	return filepath.Join(s.Dir, fileName(profile)+".lock")
}

// legacyPath is where versions before the hashed names kept a profile's
// journal. Several profiles mapped to one such file ("a b" and "a_b").
func (s Store) legacyPath(profile string) string {
	return filepath.Join(s.Dir, safeName(profile)+".json")
}

// maxReadable bounds the readable part of a file name, so that the whole
// name stays well under the usual 255-byte limit.
const maxReadable = 64

// fileName is a profile's journal and lock name without the extension:
// the readable part, a dot, and 24 hex digits (96 bits) of the SHA-256 of
// the profile name. The readable part never starts with a dot (no hidden
// files) or "@" (the client locks).
func fileName(profile string) string {
	readable := safeName(profile)
	if len(readable) > maxReadable {
		readable = readable[:maxReadable]
	}
	if readable == "" || readable[0] == '.' {
		readable = "_" + readable
	}
	sum := sha256.Sum256([]byte(profile))
	return readable + "." + hex.EncodeToString(sum[:12])
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

func checkProfileName(profile string) error {
	if profile == "" {
		return errors.New("rotation: no profile name")
	}
	return nil
}

// ErrDamaged: a journal file that is no rotation's record: not JSON,
// empty or null, an unknown step or version, or without a field its step
// needs. Nothing is carried out from it.
var ErrDamaged = errors.New("rotation: damaged journal")

// ErrInsecureJournal: a journal file that others can change (group or
// others may write it, or someone other than the current user or root
// owns it). Whoever can change it can point a retire at another key, so it
// is refused, as such a config file is.
var ErrInsecureJournal = errors.New("rotation: insecure journal")

// maxJournal caps a journal file's size: a journal is a few KiB.
const maxJournal = 1 << 20

// journalError is a journal file that cannot be carried on: it names the
// file, what is wrong, and how to recover.
type journalError struct {
	kind   error // ErrDamaged or ErrInsecureJournal
	path   string
	reason string
	// profile is the profile whose `rotate abort` removes the file, or ""
	// when none does (then the fix is to remove it by hand).
	profile string
}

func (e *journalError) Error() string {
	drop := "jwkctl rotate abort --profile " + profile.ShellQuote(e.profile) + " (keys are left where they are)"
	check := "jwkctl keys expiry --profile " + profile.ShellQuote(e.profile)
	if e.profile == "" {
		drop, check = "rm "+profile.ShellQuote(e.path), "jwkctl keys expiry --profile NAME"
	}
	if e.kind == ErrInsecureJournal {
		return fmt.Sprintf("%v %s: %s; nothing was done. Check that it records your rotation (cat %s; its current_key and new_key with their kids, against jwkctl keys public --key URI and %s), then chmod 600 %s and carry on, or drop it with %s",
			e.kind, e.path, e.reason, profile.ShellQuote(e.path), check, profile.ShellQuote(e.path), drop)
	}
	return fmt.Sprintf("%v %s: %s; nothing was done, and it cannot tell what its rotation left. Check the keys by hand (%s lists the registered kids; jwkctl keys list --key URI what is in a backend), then drop it with %s and plan again",
		e.kind, e.path, e.reason, check, drop)
}

func (e *journalError) Unwrap() error { return e.kind }

// readJournal reads, checks and parses one journal file. abortAs is the
// profile whose `rotate abort` removes this file, for the message of a
// journal that cannot be carried on ("" when none does).
func (s Store) readJournal(p, abortAs string) (*Journal, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("rotation: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("rotation: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &journalError{kind: ErrDamaged, path: p, reason: "it is not a regular file", profile: abortAs}
	}
	insecure, readable := checkJournalMode(fi)
	if insecure != "" {
		return nil, &journalError{kind: ErrInsecureJournal, path: p, reason: insecure, profile: abortAs}
	}
	if readable && s.Log != nil {
		s.Log.Warn(fmt.Sprintf("rotation journal %s can be read by others (mode %04o); it holds no secrets, but jwkctl writes journals 0600: chmod 600 %s", p, fi.Mode().Perm(), profile.ShellQuote(p)))
	}
	b, err := inputfile.ReadFrom(f, p, maxJournal, "a rotation journal")
	if err != nil {
		return nil, fmt.Errorf("rotation: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, &journalError{kind: ErrDamaged, path: p, reason: "it is not JSON (" + err.Error() + ")", profile: abortAs}
	}
	if reason := j.check(b); reason != "" {
		return nil, &journalError{kind: ErrDamaged, path: p, reason: reason, profile: abortAs}
	}
	return &j, nil
}

// check says what makes a parsed journal unfit to carry on, or "". raw
// is the file's content.
func (j *Journal) check(raw []byte) string {
	if t := bytes.TrimSpace(raw); string(t) == "null" || j.Version == 0 && j.Profile == "" && j.Step == "" {
		return "it records no rotation (empty or null)"
	}
	if j.Version != 1 {
		return fmt.Sprintf("it is version %d, and this jwkctl knows version 1 only (was it written by a newer jwkctl?)", j.Version)
	}
	if j.Step.index() < 0 {
		names := make([]string, len(order))
		for i, o := range order {
			names[i] = string(o)
		}
		return fmt.Sprintf("unknown step %q (a rotation is at one of %s)", j.Step, strings.Join(names, ", "))
	}
	var missing []string
	need := func(field string, ok bool) {
		if !ok {
			missing = append(missing, field)
		}
	}
	need("profile", j.Profile != "")
	need("client_id", j.ClientID != "")
	need("issuer", j.Issuer != "")
	need("selvbetjening_endpoint", j.Endpoint != "")
	need("current_key", j.CurrentKey != "")
	need("new_key", j.NewKey != "")
	need("alg", j.Alg != "")
	if j.Step.Done(Generated) {
		need("new_kid", j.NewKid != "")
		need("new_public_jwk", len(j.NewPublicJWK) > 0)
	}
	if j.Step.Done(Activated) {
		need("activated_at", j.ActivatedAt != nil)
	}
	if j.Step.Done(Retired) {
		need("retired_at", j.RetiredAt != nil)
	}
	if len(missing) > 0 {
		return fmt.Sprintf("at step %s it lacks %s", j.Step, strings.Join(missing, ", "))
	}
	for _, k := range []struct{ field, uri string }{{"current_key", j.CurrentKey}, {"new_key", j.NewKey}} {
		if _, err := keystore.Parse(k.uri); err != nil {
			return fmt.Sprintf("its %s is not a key URI", k.field)
		}
	}
	if _, err := signer.ParseAlg(j.Alg); err != nil {
		return fmt.Sprintf("its alg %q is not a signing algorithm", j.Alg)
	}
	if j.Step.Done(Generated) {
		if jwk, err := j.publicJWK(); err != nil || jwk.KeyID != j.NewKid {
			return fmt.Sprintf("its new_public_jwk is not the public key of new_kid %s", j.NewKid)
		}
	}
	return ""
}

// Load reads a profile's journal. A journal kept under the name of an
// older version is found too, if it is this profile's. A journal that
// records another profile is an error wrapping ErrOtherProfile.
func (s Store) Load(profile string) (*Journal, error) {
	if err := checkProfileName(profile); err != nil {
		return nil, err
	}
	p := s.path(profile)
	j, err := s.readJournal(p, profile)
	if errors.Is(err, fs.ErrNotExist) {
		return s.loadLegacy(profile)
	}
	if err != nil {
		return nil, err
	}
	if j.Profile != profile {
		return nil, fmt.Errorf("%w: %s records the rotation of profile %q, not %q; nothing was done (move the file away if it does not belong there)", ErrOtherProfile, p, j.Profile, profile)
	}
	return j, nil
}

// loadLegacy reads the profile's journal under its old name. That file
// may be another profile's whose name maps to the same old name ("a b"
// and "a_b"): then this profile has no journal.
func (s Store) loadLegacy(profile string) (*Journal, error) {
	// A damaged file under the old name may be another profile's: it is
	// removed by hand, not by this profile's abort.
	j, err := s.readJournal(s.legacyPath(profile), "")
	if errors.Is(err, fs.ErrNotExist) || err == nil && j.Profile != profile {
		return nil, fmt.Errorf("%w for profile %s", ErrNoJournal, profile)
	}
	if err != nil {
		return nil, err
	}
	return j, nil
}

// removeLegacy deletes the profile's journal under its old name, if that
// file is this profile's. A damaged one, which may be anyone's, stays
// (Load and List report it).
func (s Store) removeLegacy(profile string) error {
	lp := s.legacyPath(profile)
	if lp == s.path(profile) {
		return nil
	}
	j, err := s.readJournal(lp, "")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrDamaged) || errors.Is(err, ErrInsecureJournal) {
		return nil
	}
	if err != nil {
		return err
	}
	if j.Profile != profile {
		return nil
	}
	if err := os.Remove(lp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotation: %w", err)
	}
	return nil
}

// Save writes the journal atomically (temp file, fsync, rename), 0600.
// A journal of the profile under its old name is removed afterwards. A
// journal whose key URIs hold a pin-value is refused (it wraps
// profile.ErrSecret): a journal never holds a PIN.
func (s Store) Save(j *Journal) error {
	if err := checkProfileName(j.Profile); err != nil {
		return err
	}
	if err := j.checkNoSecret(); err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("rotation: %w", err)
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.Dir, ".journal-*.tmp")
	if err != nil {
		return fmt.Errorf("rotation: %w", err)
	}
	defer os.Remove(tmp.Name())
	werr := tmp.Chmod(0o600)
	if werr == nil {
		_, werr = tmp.Write(append(b, '\n'))
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("rotation: write journal: %w", werr)
	}
	if err := os.Rename(tmp.Name(), s.path(j.Profile)); err != nil {
		return fmt.Errorf("rotation: %w", err)
	}
	syncDir(s.Dir)
	// The journal under the new name is durable: the old one may go. If
	// it cannot, no harm: Load prefers the new name, List skips the old
	// one while the new exists, and Remove tries again.
	if s.removeLegacy(j.Profile) == nil {
		syncDir(s.Dir)
	}
	return nil
}

// checkNoSecret refuses a journal with a pin-value in a key URI. Only a
// journal written by an older jwkctl, which took one in --new-key, can
// have one; it is not carried on.
func (j *Journal) checkNoSecret() error {
	uris := append([]string{j.CurrentKey, j.NewKey}, j.KMSVersionsBefore...)
	for _, u := range uris {
		if hasPinValue(u) {
			return fmt.Errorf("%w; this journal of profile %s records such a key, so drop it (jwkctl rotate abort --profile %s) and plan again",
				&secretError{what: "a key URI of the rotation"}, j.Profile, j.Profile)
		}
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Remove deletes a finished or aborted journal (under its old name too).
func (s Store) Remove(profile string) error {
	if err := checkProfileName(profile); err != nil {
		return err
	}
	if err := os.Remove(s.path(profile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotation: %w", err)
	}
	return s.removeLegacy(profile)
}

// abortableAs is the profile whose `rotate abort` removes the journal
// file p: the profile the file names, if p is that profile's journal
// name; else "". It reads the file without checking it, only to name a
// command in a message.
func abortableAs(p string) string {
	b, err := inputfile.Read(p, maxJournal, "a rotation journal")
	if err != nil {
		return ""
	}
	var named struct {
		Profile string `json:"profile"`
	}
	if json.Unmarshal(b, &named) != nil || named.Profile == "" {
		return ""
	}
	if filepath.Base(p) != fileName(named.Profile)+".json" {
		return ""
	}
	return named.Profile
}

// List reads every journal in the store, of every profile, whatever its
// name, under the new names and the old. A journal that cannot be read is
// an error: it may belong to a running rotation.
func (s Store) List() ([]*Journal, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rotation: %w", err)
	}
	var out []*Journal
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		p := filepath.Join(s.Dir, name)
		j, err := s.readJournal(p, abortableAs(p))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, err
		}
		if p != s.path(j.Profile) {
			// An old name: left over (a crash during Save) when the
			// profile's journal exists under its new name.
			if _, err := os.Stat(s.path(j.Profile)); err == nil {
				continue
			}
		}
		out = append(out, j)
	}
	return out, nil
}

// Lock takes the profile's rotation lock. It wraps ErrLocked, naming the
// holder's pid and host, while another process (or another Lock in this
// one) holds it. See lockFile for how the lock works on each platform.
func (s Store) Lock(profile string) (unlock func(), err error) {
	if err := checkProfileName(profile); err != nil {
		return nil, err
	}
	return s.lock(s.lockPath(profile), "profile "+profile)
}

// LockClient takes the lock of one client (issuer + client_id), which
// several profiles may share: only one of them rotates at a time. Its file
// name starts with "@", which no profile's lock file can.
func (s Store) LockClient(issuer, clientID string) (unlock func(), err error) {
	return s.lock(s.clientLockPath(issuer, clientID), "client "+clientID+" at "+issuer)
}

func (s Store) clientLockPath(issuer, clientID string) string {
	sum := sha256.Sum256([]byte(clientKey(issuer, clientID)))
	return filepath.Join(s.Dir, "@client-"+hex.EncodeToString(sum[:12])+".lock")
}

// clientKey names a client: the issuer (without a trailing slash) and its
// client_id.
func clientKey(issuer, clientID string) string {
	return strings.TrimRight(issuer, "/") + "\x00" + clientID
}

func (s Store) lock(p, what string) (unlock func(), err error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("rotation: %w", err)
	}
	return lockFile(p, what)
}

// holderLine is what a lock file holds while its lock is held: "pid@host".
// It only serves the message of a refused lock.
func holderLine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s\n", os.Getpid(), host)
}

// describeHolder turns a lock file's "pid@host" into "pid N on host H".
func describeHolder(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\n")
	pid, host, ok := strings.Cut(strings.TrimSpace(line), "@")
	if _, err := strconv.Atoi(pid); !ok || err != nil {
		return "another process"
	}
	if host == "" {
		return "pid " + pid
	}
	return "pid " + pid + " on host " + host
}
