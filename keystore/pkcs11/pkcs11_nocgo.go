//go:build !cgo

package pkcs11

import (
	"context"
	"fmt"

	"github.com/jwkctl/jwkctl/keystore"
)

// Backend stands in for the PKCS#11 backend in a binary built without cgo:
// every operation explains how to get the real one.
type Backend struct{}

func init() { keystore.Register(Backend{}) }

var errNoCgo = fmt.Errorf("%w: pkcs11: jwkctl was built without cgo; rebuild with CGO_ENABLED=1 and a C compiler", keystore.ErrBackendUnavailable)

// Scheme is "pkcs11".
func (Backend) Scheme() string { return keystore.SchemePKCS11 }

// Generate fails: no cgo.
func (Backend) Generate(context.Context, keystore.GenerateRequest) (keystore.Key, error) {
	return nil, errNoCgo
}

// Open fails: no cgo.
func (Backend) Open(context.Context, *keystore.URI, keystore.Options) (keystore.Key, error) {
	return nil, errNoCgo
}

// Import fails: no cgo.
func (Backend) Import(context.Context, keystore.ImportRequest) (keystore.Key, error) {
	return nil, errNoCgo
}

// List fails: no cgo.
func (Backend) List(context.Context, *keystore.URI, keystore.Options) ([]keystore.KeyInfo, error) {
	return nil, errNoCgo
}

// Delete fails: no cgo.
func (Backend) Delete(context.Context, *keystore.URI, keystore.Options) error { return errNoCgo }

// SetEnabled fails: no cgo.
func (Backend) SetEnabled(context.Context, *keystore.URI, bool, keystore.Options) error {
	return errNoCgo
}
