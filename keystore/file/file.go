package file

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/inputfile"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
)

func init() { keystore.Register(Backend{}) }

// Backend stores keys as private JWK files. It holds no state.
type Backend struct{}

var (
	_ keystore.Backend         = Backend{}
	_ keystore.Importer        = Backend{}
	_ keystore.Lister          = Backend{}
	_ keystore.Deleter         = Backend{}
	_ keystore.GenerateChecker = Backend{}
	_ keystore.AlgRecorder     = (*Key)(nil)
	_ keystore.KidRecorder     = (*Key)(nil)
)

// Scheme is "file".
func (Backend) Scheme() string { return keystore.SchemeFile }

// Key is a private key read from (or just written to) a file. The private
// key is immutable once loaded, so concurrent signing is safe.
type Key struct {
	crypto.Signer
	uri *keystore.URI
	alg jose.SignatureAlgorithm // the file's "alg", if any
	kid string                  // the file's "kid", if any
}

// RecordedAlg is the algorithm in the key file ("" when it has none).
func (k *Key) RecordedAlg() jose.SignatureAlgorithm { return k.alg }

// RecordedKid is the kid in the key file ("" when it has none): the
// thumbprint in the files jwkctl writes, unless the key was imported with
// the kid it is registered under kept.
func (k *Key) RecordedKid() string { return k.kid }

// URI names the key file.
func (k *Key) URI() *keystore.URI { return k.uri }

func checkURI(u *keystore.URI) error {
	if u == nil || u.Scheme != keystore.SchemeFile || u.Path == "" {
		return fmt.Errorf("%w: want a file: URI such as file:keys/client.json", keystore.ErrBadURI)
	}
	if strings.HasSuffix(u.Path, "/") {
		return fmt.Errorf("%w: %s names a directory; name a key file such as %sclient.json", keystore.ErrBadURI, u, u)
	}
	return nil
}

// Generate creates a keypair and writes it to a new file. An existing file
// is never replaced.
func (Backend) Generate(ctx context.Context, req keystore.GenerateRequest) (keystore.Key, error) {
	if err := checkURI(req.URI); err != nil {
		return nil, err
	}
	// Fail before the slow part if the name is taken; writeNew checks again
	// atomically.
	if _, err := os.Lstat(req.URI.Path); err == nil {
		return nil, fmt.Errorf("%w: %s (jwkctl never overwrites a key; pick another name or delete it first)", keystore.ErrExists, req.URI)
	}
	var priv crypto.Signer
	var err error
	switch req.Spec.Type {
	case keystore.RSA:
		if req.Spec.Bits < keystore.MinRSABits {
			return nil, fmt.Errorf("%w: RSA keys need at least %d bits", keystore.ErrWeakKey, keystore.MinRSABits)
		}
		priv, err = rsa.GenerateKey(rand.Reader, req.Spec.Bits)
	case keystore.EC:
		if req.Spec.Curve == nil {
			return nil, fmt.Errorf("file: no curve given for an EC key")
		}
		priv, err = ecdsa.GenerateKey(req.Spec.Curve, rand.Reader)
	default:
		return nil, fmt.Errorf("file: unknown key type %q", req.Spec.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("file: generate %s key: %w", req.Spec, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return store(req.URI, priv, string(req.Spec.Alg), "", req.Passphrase)
}

// CheckGenerate implements keystore.GenerateChecker: the name must be a
// key file that does not exist yet.
func (Backend) CheckGenerate(_ context.Context, req keystore.GenerateRequest) error {
	if err := checkURI(req.URI); err != nil {
		return err
	}
	if _, err := os.Lstat(req.URI.Path); err == nil {
		return fmt.Errorf("%w: %s (jwkctl never overwrites a key; pick another name or delete it first)", keystore.ErrExists, req.URI)
	}
	return nil
}

// Import writes an existing private key to a new file, with req.Kid as
// its kid when given (else the thumbprint).
func (Backend) Import(ctx context.Context, req keystore.ImportRequest) (keystore.Key, error) {
	if err := checkURI(req.URI); err != nil {
		return nil, err
	}
	if err := keystore.CheckPrivateKey(req.Private); err != nil {
		return nil, fmt.Errorf("%w: %v", keystore.ErrWeakKey, err)
	}
	return store(req.URI, req.Private, string(req.Alg), req.Kid, req.Passphrase)
}

func store(u *keystore.URI, priv crypto.Signer, alg, kid string, pass []byte) (keystore.Key, error) {
	if kid == "" {
		tp, err := signer.Thumbprint(priv.Public())
		if err != nil {
			return nil, err
		}
		kid = tp
	}
	data, err := encode(priv, alg, kid, pass)
	if err != nil {
		return nil, err
	}
	if err := writeNew(u.Path, data); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: %s (jwkctl never overwrites a key; pick another name or delete it first)", keystore.ErrExists, u)
		}
		return nil, fmt.Errorf("file: write %s: %w", u.Path, err)
	}
	return &Key{Signer: priv, uri: u, alg: jose.SignatureAlgorithm(alg), kid: kid}, nil
}

// Open reads a key file. The file must not be readable or writable by
// group or others; an encrypted file needs opts.Passphrase.
func (Backend) Open(_ context.Context, u *keystore.URI, opts keystore.Options) (keystore.Key, error) {
	if err := checkURI(u); err != nil {
		return nil, err
	}
	data, err := readKeyFile(u.Path)
	if err != nil {
		return nil, err
	}
	priv, alg, kid, err := decode(data, opts.Passphrase, u.Path)
	if err != nil {
		return nil, err
	}
	return &Key{Signer: priv, uri: u, alg: alg, kid: kid}, nil
}

// readKeyFile reads path after checking it is a regular file that only its
// owner can read.
func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no key file at %s", keystore.ErrNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	// Checked before opening: opening a FIFO would wait for a writer.
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("file: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: key file %s has mode %04o and others can read or change it; fix it with: chmod 600 %s",
			keystore.ErrInsecure, path, perm, shellQuote(path))
	}
	return readCapped(path)
}

// readCapped reads a key file with a cap, and only if, opened, it is still
// a regular file (not one swapped for a FIFO or device since a Stat).
func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("file: %s is not a regular file", path)
	}
	data, err := inputfile.ReadFrom(f, path, maxKeyFile, "a key file")
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	return data, nil
}

// List returns the keys in a directory (file:dir/) or the single key a
// file: URI names. Files that are not keys are skipped. Encrypted keys are
// listed with State "encrypted" and no public key unless opts.Passphrase
// opens them. The temporary files of a write (see writeNew) are listed
// with State "temp-file", or "stale-temp-file" once a minute old: a
// stale one is what a killed write left, may hold a private key, and goes
// with the next key written in that directory.
func (Backend) List(_ context.Context, prefix *keystore.URI, opts keystore.Options) ([]keystore.KeyInfo, error) {
	if prefix == nil || prefix.Scheme != keystore.SchemeFile {
		return nil, fmt.Errorf("%w: want a file: URI", keystore.ErrBadURI)
	}
	fi, err := os.Stat(prefix.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", keystore.ErrNotFound, prefix.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	var paths []string
	temps := map[string]string{}
	if fi.IsDir() {
		entries, err := os.ReadDir(prefix.Path)
		if err != nil {
			return nil, fmt.Errorf("file: %w", err)
		}
		now := time.Now()
		for _, e := range entries {
			p := filepath.Join(prefix.Path, e.Name())
			if temp, stale := isTemp(e, now); temp {
				// Hidden, but it may hold a private key a killed write
				// left behind: the user should know it is there.
				paths, temps[p] = append(paths, p), "temp-file"
				if stale {
					temps[p] = "stale-temp-file"
				}
				continue
			}
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				paths = append(paths, p)
			}
		}
	} else {
		paths = []string{prefix.Path}
	}
	sort.Strings(paths)
	var out []keystore.KeyInfo
	for _, p := range paths {
		info, ok := inspect(p, opts.Passphrase)
		if state := temps[p]; state != "" {
			info.State, ok = state, true
		}
		if ok {
			out = append(out, info)
		}
	}
	return out, nil
}

func inspect(path string, pass []byte) (keystore.KeyInfo, bool) {
	info := keystore.KeyInfo{URI: &keystore.URI{Scheme: keystore.SchemeFile, Path: path}}
	data, err := readCapped(path)
	if err != nil {
		return info, false
	}
	if isJWE(data) {
		info.State = "encrypted"
		if pass != nil {
			if priv, _, kid, err := decode(data, pass, path); err == nil {
				info.Public, info.Kid = priv.Public(), kid
			}
		}
		return info, true
	}
	p, err := parsePrivate(data)
	if err != nil {
		return info, false
	}
	info.Public, info.Kid = p.Private.Public(), p.Kid
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		info.State = "insecure-mode"
	}
	return info, true
}

// Delete removes a key file.
func (Backend) Delete(_ context.Context, u *keystore.URI, _ keystore.Options) error {
	if err := checkURI(u); err != nil {
		return err
	}
	fi, err := os.Lstat(u.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: no key file at %s", keystore.ErrNotFound, u.Path)
	}
	if err != nil {
		return fmt.Errorf("file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("file: %s is not a regular file; not deleting it", u.Path)
	}
	// Only a key file goes: a private JWK, or one jwkctl encrypted. A
	// mistyped path to a config or any other file is refused.
	data, err := readCapped(u.Path)
	if err != nil {
		return err
	}
	if !isJWE(data) {
		if _, _, err := ParsePrivateJWK(data); err != nil {
			return fmt.Errorf("file: %s is not a key file (a private JWK, or one jwkctl encrypted); not deleting it", u.Path)
		}
	}
	if err := os.Remove(u.Path); err != nil {
		return fmt.Errorf("file: %w", err)
	}
	return syncDir(filepath.Dir(u.Path))
}

func shellQuote(s string) string {
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
