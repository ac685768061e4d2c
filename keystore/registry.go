package keystore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
)

var (
	regMu    sync.RWMutex
	backends = map[string]Backend{}
)

// Register makes a backend available for its scheme. Backends call it from
// init(); registering a scheme twice panics, as it is a programming error.
func Register(b Backend) {
	regMu.Lock()
	defer regMu.Unlock()
	s := b.Scheme()
	if _, dup := backends[s]; dup {
		panic("keystore: backend registered twice for scheme " + s)
	}
	backends[s] = b
}

// Lookup returns the backend for a scheme.
func Lookup(scheme string) (Backend, error) {
	regMu.RLock()
	b, ok := backends[scheme]
	regMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: no %q backend in this build (have: %v)", ErrBackendUnavailable, scheme, Schemes())
	}
	return b, nil
}

// Schemes lists the registered schemes, sorted.
func Schemes() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	var out []string
	for s := range backends {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func backendFor(uri string) (Backend, *URI, error) {
	u, err := Parse(uri)
	if err != nil {
		return nil, nil, err
	}
	b, err := Lookup(u.Scheme)
	if err != nil {
		return nil, nil, err
	}
	return b, u, nil
}

// Open parses uri and opens the key it names.
func Open(ctx context.Context, uri string, opts Options) (Key, error) {
	b, u, err := backendFor(uri)
	if err != nil {
		return nil, err
	}
	return b.Open(ctx, u, opts)
}

// Generate creates a keypair at req.URI in its backend.
func Generate(ctx context.Context, req GenerateRequest) (Key, error) {
	if req.URI == nil {
		return nil, fmt.Errorf("%w: no key URI given", ErrBadURI)
	}
	b, err := Lookup(req.URI.Scheme)
	if err != nil {
		return nil, err
	}
	return b.Generate(ctx, req)
}

// Import stores an existing private key at req.URI.
func Import(ctx context.Context, req ImportRequest) (Key, error) {
	if req.URI == nil {
		return nil, fmt.Errorf("%w: no key URI given", ErrBadURI)
	}
	b, err := Lookup(req.URI.Scheme)
	if err != nil {
		return nil, err
	}
	im, ok := b.(Importer)
	if !ok {
		return nil, fmt.Errorf("%w: %s keys cannot be imported", ErrUnsupported, req.URI.Scheme)
	}
	if err := CheckPrivateKey(req.Private); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWeakKey, err)
	}
	return im.Import(ctx, req)
}

// CheckGenerate reports whether Generate would refuse req, without
// creating anything, for backends that implement GenerateChecker (others
// are not asked). req.Spec comes from SpecFor, which checked it.
func CheckGenerate(ctx context.Context, req GenerateRequest) error {
	if req.URI == nil {
		return fmt.Errorf("%w: no key URI", ErrBadURI)
	}
	b, err := Lookup(req.URI.Scheme)
	if err != nil {
		return err
	}
	if c, ok := b.(GenerateChecker); ok {
		return c.CheckGenerate(ctx, req)
	}
	return nil
}

// List returns the keys under a URI prefix.
func List(ctx context.Context, prefix string, opts Options) ([]KeyInfo, error) {
	b, u, err := backendFor(prefix)
	if err != nil {
		return nil, err
	}
	l, ok := b.(Lister)
	if !ok {
		return nil, fmt.Errorf("%w: %s keys cannot be listed", ErrUnsupported, u.Scheme)
	}
	return l.List(ctx, u, opts)
}

// Delete removes the key named by uri. The caller must have confirmed.
func Delete(ctx context.Context, uri string, opts Options) error {
	b, u, err := backendFor(uri)
	if err != nil {
		return err
	}
	d, ok := b.(Deleter)
	if !ok {
		return fmt.Errorf("%w: %s keys cannot be deleted", ErrUnsupported, u.Scheme)
	}
	return d.Delete(ctx, u, opts)
}

// SetEnabled disables (enabled false) or re-enables the key named by uri,
// for backends that can (see Disabler). The caller must have confirmed a
// disable.
func SetEnabled(ctx context.Context, uri string, enabled bool, opts Options) error {
	b, u, err := backendFor(uri)
	if err != nil {
		return err
	}
	d, ok := b.(Disabler)
	if !ok {
		return fmt.Errorf("%w: %s keys cannot be disabled or enabled, only deleted", ErrUnsupported, u.Scheme)
	}
	return d.SetEnabled(ctx, u, enabled, opts)
}

// CloseAll closes every registered backend that holds resources (PKCS#11
// sessions, KMS connections). Call it once before the program exits.
func CloseAll() error {
	regMu.RLock()
	defer regMu.RUnlock()
	var errs []error
	for _, b := range backends {
		if c, ok := b.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
