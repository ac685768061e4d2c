package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/jwkctl/jwkctl/internal/inputfile"
	"github.com/jwkctl/jwkctl/keystore"
)

// ErrNotFound is returned for a profile name the file does not have.
var ErrNotFound = errors.New("profile: no such profile")

// ErrSecret is returned when a profile would hold a secret.
var ErrSecret = errors.New("profile: secrets are not stored in profiles")

// Profile is one client at one authorization server. No field holds a
// secret: key URIs may name a pin-source file, never a pin-value.
type Profile struct {
	Issuer        string `yaml:"issuer,omitempty"`
	TokenEndpoint string `yaml:"token_endpoint,omitempty"`
	Audience      string `yaml:"audience,omitempty"`
	ClientID      string `yaml:"client_id,omitempty"`
	Key           string `yaml:"key,omitempty"`
	Alg           string `yaml:"alg,omitempty"`
	// Kid is the kid assertions carry for Key, when the key is registered
	// under another kid than its RFC 7638 thumbprint and its backend cannot
	// record one (an HSM or KMS key; a key file records its own).
	Kid string `yaml:"kid,omitempty"`
	// DPoP nil (no dpop entry) means the default: on for HelseID's
	// issuers (token.DPoPByDefault) and with a dpop_key; dpop: false turns
	// it off there, dpop: true on anywhere.
	DPoP    *bool  `yaml:"dpop,omitempty"`
	DPoPKey string `yaml:"dpop_key,omitempty"`
	// Scopes and Resources are a YAML list, or one space-separated string.
	Scopes    StringList `yaml:"scopes,omitempty"`
	Resources StringList `yaml:"resources,omitempty"`
	ParentOrg string     `yaml:"parent_org,omitempty"`
	ChildOrg  string     `yaml:"child_org,omitempty"`
	// SFMJournalID adds the nhn:sfm:journal-id assertion detail.
	SFMJournalID string `yaml:"sfm_journal_id,omitempty"`
	// AssertionDetailsFile names a JSON file of further assertion_details
	// (one object, or an array of them), such as the trust framework's
	// nhn:tillitsrammeverk:parameters. Relative to the config file, like
	// passphrase_file.
	AssertionDetailsFile string `yaml:"assertion_details_file,omitempty"`
	// PassphraseFile names the file that holds a file key's passphrase.
	// Load makes a relative path absolute against the config file's
	// directory, as it does for the file paths in key URIs.
	PassphraseFile string `yaml:"passphrase_file,omitempty"`
	// KMSEndpoint overrides the Cloud KMS or AWS KMS endpoint (fakes, local-kms, private endpoints).
	KMSEndpoint string `yaml:"kms_endpoint,omitempty"`
	// SelvbetjeningURL is the client-secret API used for key rotation.
	SelvbetjeningURL string `yaml:"selvbetjening_url,omitempty"`
	// NextKey is the key a rotation has generated and uploaded but not yet
	// switched to.
	NextKey string `yaml:"next_key,omitempty"`
}

// File is the whole config file.
//
// Relative paths in a profile (file: key URIs, a PKCS#11 URI's
// pin-source=file: and module-path, passphrase_file) are relative to the
// config file's directory, as in a kubeconfig: Load makes them absolute,
// so the profiles it returns mean the same keys from any working
// directory. Save writes an unchanged value as it was written, and a
// changed one in the style of the value it replaces (a relative path stays
// relative to the config file's directory).
//
// The file is the user's: Save edits the one Load read rather than
// writing a new one, changing only the entries whose values changed and
// keeping comments, order, blank lines and formatting of everything else.
type File struct {
	// Default is the profile used when none is named.
	Default  string              `yaml:"default,omitempty"`
	Profiles map[string]*Profile `yaml:"profiles"`

	// dir is the absolute directory of the file Load read, or of the one
	// Save last wrote; written holds the profiles as they stand in that
	// file, before relative paths were resolved.
	dir     string
	written map[string]*Profile
	// src is the text of the file Load read or Save last wrote, which
	// Save edits.
	src []byte
}

// DefaultPath is $JWKCTL_CONFIG, else $XDG_CONFIG_HOME/jwkctl/config.yaml,
// else ~/.config/jwkctl/config.yaml.
func DefaultPath() (string, error) {
	if p := os.Getenv("JWKCTL_CONFIG"); p != "" {
		return p, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "jwkctl", "config.yaml"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("profile: no home directory for the config file; set JWKCTL_CONFIG: %w", err)
	}
	return filepath.Join(h, ".config", "jwkctl", "config.yaml"), nil
}

// ErrInsecure is returned for a config file that someone other than its
// owner (or root) can change: whoever can write it can point a profile at
// another issuer or key.
var ErrInsecure = errors.New("profile: insecure config file")

// Load reads path. A missing file gives an empty File and an error that
// wraps fs.ErrNotExist, so callers that need no profile can ignore it. A
// file that group or others may write, or that is owned by someone other
// than the current user or root, is refused (ErrInsecure). Relative paths
// in the profiles are made absolute against the file's directory.
func Load(path string) (*File, error) {
	f := &File{Profiles: map[string]*Profile{}}
	b, err := readConfig(path)
	if err != nil {
		return f, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil && !errors.Is(err, io.EOF) {
		return &File{Profiles: map[string]*Profile{}}, fmt.Errorf("profile: %s: %w", path, err)
	}
	if f.Profiles == nil {
		f.Profiles = map[string]*Profile{}
	}
	for name, p := range f.Profiles {
		if p == nil {
			f.Profiles[name] = &Profile{}
			continue
		}
		if err := p.Validate(); err != nil {
			return f, fmt.Errorf("profile %q in %s: %w", name, path, err)
		}
	}
	if f.Default != "" && f.Profiles[f.Default] == nil {
		// A key URI put under default: by mistake may hold a PIN.
		return f, fmt.Errorf("profile: %s: default profile %q is not defined", path, keystore.MaskPINValue(f.Default))
	}
	dir, err := absDir(path)
	if err != nil {
		return f, err
	}
	f.dir, f.written, f.src = dir, make(map[string]*Profile, len(f.Profiles)), b
	for name, p := range f.Profiles {
		f.written[name] = p.Clone()
		p.resolve(dir)
	}
	return f, nil
}

// readConfig reads the config file after checking that only its owner,
// the current user or root, can change it.
func readConfig(path string) ([]byte, error) {
	// Before opening: opening a FIFO would wait for a writer.
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("profile: config file %s is not a regular file", path)
	}
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("profile: config file %s: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("profile: config file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, so others can change its issuers and key URIs; fix it with: chmod go-w %s",
			ErrInsecure, path, perm, shellQuote(path))
	}
	if err := checkOwner(fi, path); err != nil {
		return nil, err
	}
	b, err := inputfile.ReadFrom(fh, path, inputfile.MaxConfig, "a config file")
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return b, nil
}

// ShellQuote quotes s for a POSIX shell when it needs it, for commands
// that messages suggest.
func ShellQuote(s string) string { return shellQuote(s) }

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func absDir(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("profile: %w", err)
	}
	return filepath.Dir(abs), nil
}

// Get returns the named profile, or with an empty name the default one
// (nil, nil when there is none).
func (f *File) Get(name string) (*Profile, error) {
	if name == "" {
		name = f.Default
		if name == "" {
			return nil, nil
		}
	}
	p, ok := f.Profiles[name]
	if !ok {
		name = keystore.MaskPINValue(name) // a key URI given as --profile by mistake
		have := f.Names()
		if len(have) == 0 {
			return nil, fmt.Errorf("%w %q: the config file defines none", ErrNotFound, name)
		}
		return nil, fmt.Errorf("%w %q (have: %s)", ErrNotFound, name, strings.Join(have, ", "))
	}
	return p, nil
}

// Names lists the profile names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Profiles))
	for n := range f.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Set adds or replaces a profile after checking it holds no secret.
func (f *File) Set(name string, p *Profile) error {
	if name == "" {
		return errors.New("profile: a profile needs a name")
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("profile %q: %w", name, err)
	}
	if f.Profiles == nil {
		f.Profiles = map[string]*Profile{}
	}
	f.Profiles[name] = p
	return nil
}

// Validate refuses secrets: a key URI with a pin-value. The error wraps
// ErrSecret and never holds the PIN.
func (p *Profile) Validate() error {
	for _, k := range []struct{ field, v string }{{"key", p.Key}, {"dpop_key", p.DPoPKey}, {"next_key", p.NextKey}} {
		if hasPinValue(k.v) {
			return &secretError{field: k.field}
		}
	}
	return nil
}

// secretError says which entry holds a PIN and what to write instead; it
// wraps ErrSecret without repeating its "profile:" prefix, since callers
// already name the profile.
type secretError struct{ field string }

func (e *secretError) Error() string {
	return e.field + " has a pin-value, and the config file holds no secrets: in the key URI use pin-source=file:/path/to/pin-file or pin-source=env:VARIABLE instead"
}

func (e *secretError) Unwrap() error { return ErrSecret }

func hasPinValue(uri string) bool {
	l := strings.ToLower(uri)
	return strings.Contains(l, "pin-value=") || strings.Contains(l, "pin-value%3d")
}

// Save writes f to path atomically: a temp file in the same directory,
// fsync, rename; the directory is created 0700. When path is a symbolic
// link, the file it links to is written (the temp file goes into that
// file's directory and is renamed onto it), so the link stays. The file
// keeps the mode it had (never writable by group or others; a new one gets
// 0600) and, where the system lets this process, its owner and group, so
// a config that an agent reads through its group stays readable to it.
// Profiles with a secret are refused before anything is written. Paths
// keep the form they had in the file Load read (see File): a relative key
// path that rotation replaced is written relative to path's directory.
//
// A File that Load read is saved by editing that file's text: only the
// entries that changed are rewritten (a key switched by rotation is just
// that value replaced), so the user's comments, order, blank lines,
// indentation and quoting stay. An edit that cannot be made in the text
// (a new profile, say) is made in the YAML node tree, which keeps comments
// and order. A File made from scratch is written whole.
//
// Save takes no lock: a caller that reads, changes and writes a config
// that others may change at the same time holds Lock around all three.
func (f *File) Save(path string) error {
	for _, name := range f.Names() {
		if p := f.Profiles[name]; p != nil {
			if err := p.Validate(); err != nil {
				return fmt.Errorf("profile %q: %w", name, err)
			}
		}
	}
	if f.Default != "" && f.Profiles[f.Default] == nil {
		return fmt.Errorf("profile: default profile %q is not defined", keystore.MaskPINValue(f.Default))
	}
	absdir, err := absDir(path)
	if err != nil {
		return err
	}
	out := &File{Default: f.Default, Profiles: make(map[string]*Profile, len(f.Profiles))}
	for name, p := range f.Profiles {
		var w *Profile
		if f.dir == absdir {
			// Relative paths as written mean the same only in the same
			// directory; elsewhere the absolute paths are written.
			w = f.written[name]
		}
		if p == nil {
			p = &Profile{}
		}
		out.Profiles[name] = restyle(p, w, absdir)
	}
	data, err := render(f.src, out)
	if err != nil {
		return fmt.Errorf("profile: encode: %w", err)
	}
	target, err := targetPath(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return notWritable(path, target, err)
	}
	defer os.Remove(tmp.Name())
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(target); err == nil && fi.Mode().IsRegular() {
		mode = fi.Mode().Perm() &^ 0o022
		// Before the chmod: a chown may clear mode bits.
		keepOwner(tmp, fi)
	}
	werr := errors.Join(tmp.Chmod(mode), write(tmp, data), tmp.Sync())
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("profile: write %s: %w", path, werr)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return notWritable(path, target, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable where the OS allows it
		d.Close()
	}
	f.dir, f.written, f.src = absdir, out.Profiles, data
	return nil
}

// ErrNotWritable is returned when the config file cannot be replaced:
// Save writes a new file next to it and renames it over the old one, so
// the directory that holds the file (the linked-to file's, for a symbolic
// link) must be writable.
var ErrNotWritable = errors.New("profile: the config file cannot be rewritten")

// CheckWritable tells, without changing anything, whether Save can
// replace the config file at path: it makes and removes a temp file where
// Save would make one. Key rotation calls it before it creates a key, so
// that a config it could not switch is found before anything exists.
func CheckWritable(path string) error {
	target, err := targetPath(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".config-*.yaml")
	if err != nil {
		return notWritable(path, target, err)
	}
	name := tmp.Name()
	tmp.Close()
	if err := os.Remove(name); err != nil {
		return notWritable(path, target, err)
	}
	// Activation also locks the config through its lock file: that must
	// open too (one left by another user with a narrow umask may not).
	// (A missing one can be made: the directory is writable.)
	lf, err := os.OpenFile(lockPath(target), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("profile: lock file %s of the config file %s cannot be opened (%v); its owner can fix it with: chmod 644 %s", lockPath(target), path, err, lockPath(target))
	}
	lf.Close()
	return nil
}

// notWritable is the ErrNotWritable error for path, whose file is target:
// it names the config file and the directory to fix, not a temp file.
func notWritable(path, target string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	dir := filepath.Dir(target)
	where := "its directory " + dir
	if a, b := filepath.Clean(path), filepath.Clean(target); a != b {
		where = dir + ", the directory of " + b + " (the file it links to)"
	}
	return fmt.Errorf("%w: %s is saved by writing a new file in %s and renaming it over the old one, and that fails (%v); "+
		"make that directory writable for you (chmod u+w %s), or keep the config file in a directory you can write and name it with JWKCTL_CONFIG",
		ErrNotWritable, path, where, err, shellQuote(dir))
}

// targetPath is the file Save writes for path: path itself, or when path
// is a symbolic link, the file it finally links to (which need not exist
// yet).
func targetPath(path string) (string, error) {
	t, err := filepath.EvalSymlinks(path)
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("profile: %w", err)
	}
	// Missing: path itself, or a link to a file still to be made.
	p := path
	for range 40 {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		l, err := os.Readlink(p)
		if err != nil {
			return "", fmt.Errorf("profile: %w", err)
		}
		if !filepath.IsAbs(l) {
			l = filepath.Join(filepath.Dir(p), l)
		}
		p = l
	}
	return "", fmt.Errorf("profile: %s: too many levels of symbolic links", path)
}

func write(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}

// Clone returns a deep copy, so callers can change it without touching f.
func (p *Profile) Clone() *Profile {
	if p == nil {
		return nil
	}
	c := *p
	if p.DPoP != nil {
		c.DPoP = new(*p.DPoP)
	}
	c.Scopes = slices.Clone(p.Scopes)
	c.Resources = slices.Clone(p.Resources)
	return &c
}
