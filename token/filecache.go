package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/jwkctl/jwkctl/internal/inputfile"
)

// FileCache keeps token responses in Dir, one 0600 file per cache key,
// written atomically. Dir is created 0700. Tokens on disk are as good as
// the token itself until they expire: keep the cache opt-in.
type FileCache struct {
	Dir string
}

type cachedFile struct {
	TokenType string          `json:"token_type"`
	Expiry    time.Time       `json:"expiry"`
	Raw       json.RawMessage `json:"response"`
}

// Load implements Cache. A missing file is not an error; a file readable
// by others is refused.
func (f FileCache) Load(key string) (*Response, error) {
	p := f.path(key)
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token: cache: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token: cache file %s is readable by others (mode %v); delete it", p, st.Mode().Perm())
	}
	// The stored response is at most maxBody, but HTML escaping in
	// json.Marshal can grow it (< becomes \u003c).
	b, err := inputfile.Read(p, 8*maxBody, "a token cache file")
	if err != nil {
		return nil, fmt.Errorf("token: cache: %w", err)
	}
	var c cachedFile
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("token: cache file %s is damaged; delete it", p)
	}
	var w wireToken
	if err := json.Unmarshal(c.Raw, &w); err != nil || w.AccessToken == "" {
		return nil, fmt.Errorf("token: cache file %s is damaged; delete it", p)
	}
	if c.Expiry.IsZero() {
		return nil, nil // a token without expires_in lives only in memory
	}
	exp, _ := parseExpiresIn(w.ExpiresIn)
	return &Response{AccessToken: w.AccessToken, TokenType: c.TokenType, Scope: w.Scope, ExpiresIn: exp, Expiry: c.Expiry, Raw: c.Raw}, nil
}

// Store implements Cache: temp file, fsync, rename, mode 0600. A token
// without an expiry (no expires_in) is not stored: no other process could
// tell when it stops being valid.
func (f FileCache) Store(key string, r *Response) error {
	if r.Expiry.IsZero() {
		return nil
	}
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return fmt.Errorf("token: cache: %w", err)
	}
	b, err := json.Marshal(cachedFile{TokenType: r.TokenType, Expiry: r.Expiry, Raw: r.Raw})
	if err != nil {
		return fmt.Errorf("token: cache: %w", err)
	}
	tmp, err := os.CreateTemp(f.Dir, ".tok-*")
	if err != nil {
		return fmt.Errorf("token: cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("token: cache: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("token: cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("token: cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("token: cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path(key)); err != nil {
		return fmt.Errorf("token: cache: %w", err)
	}
	return nil
}

func (f FileCache) path(key string) string { return filepath.Join(f.Dir, key+".json") }

// DefaultCacheDir is $XDG_CACHE_HOME/jwkctl/tokens (os.UserCacheDir).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("token: no cache directory: %w", err)
	}
	return filepath.Join(d, "jwkctl", "tokens"), nil
}
