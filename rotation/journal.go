package rotation

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
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
	ActivatedAt       *time.Time      `json:"activated_at,omitempty"`
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

// Store keeps journals and locks in a directory.
type Store struct{ Dir string }

func (s Store) path(profile string) string { return filepath.Join(s.Dir, safeName(profile)+".json") }
func (s Store) lockPath(profile string) string {
	return filepath.Join(s.Dir, safeName(profile)+".lock")
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// Load reads a profile's journal.
func (s Store) Load(profile string) (*Journal, error) {
	b, err := os.ReadFile(s.path(profile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w for profile %s", ErrNoJournal, profile)
	}
	if err != nil {
		return nil, fmt.Errorf("rotation: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("rotation: journal %s is damaged: %v", s.path(profile), err)
	}
	return &j, nil
}

// Save writes the journal atomically (temp file, fsync, rename), 0600.
func (s Store) Save(j *Journal) error {
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
	if d, err := os.Open(s.Dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Remove deletes a finished or aborted journal.
func (s Store) Remove(profile string) error {
	err := os.Remove(s.path(profile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// List reads every journal in the store, of every profile. A journal
// that cannot be read is an error: it may belong to a running rotation.
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
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil {
			return nil, fmt.Errorf("rotation: %w", err)
		}
		var j Journal
		if err := json.Unmarshal(b, &j); err != nil {
			return nil, fmt.Errorf("rotation: journal %s is damaged: %v", filepath.Join(s.Dir, name), err)
		}
		out = append(out, &j)
	}
	return out, nil
}

// Lock takes the profile's rotation lock: a file created with O_EXCL that
// holds "pid@host". A lock left by a process that is gone (same host) is
// taken over; a live one is an error wrapping ErrLocked.
func (s Store) Lock(profile string) (unlock func(), err error) {
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
	host, _ := os.Hostname()
	me := fmt.Sprintf("%d@%s", os.Getpid(), host)
	for attempt := 0; attempt < 2; attempt++ {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, werr := f.WriteString(me + "\n")
			f.Close()
			if werr != nil {
				os.Remove(p)
				return nil, werr
			}
			return func() { os.Remove(p) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("rotation: lock: %w", err)
		}
		b, _ := os.ReadFile(p)
		holder := strings.TrimSpace(string(b))
		pidStr, h, _ := strings.Cut(holder, "@")
		pid, perr := strconv.Atoi(pidStr)
		if h == host && perr == nil && !alive(pid) {
			os.Remove(p) // stale: that process is gone
			continue
		}
		return nil, fmt.Errorf("%w for %s (held by %s; if that process is gone, remove %s)", ErrLocked, what, holder, p)
	}
	return nil, fmt.Errorf("%w for %s", ErrLocked, what)
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
