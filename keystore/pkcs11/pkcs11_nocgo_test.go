//go:build !cgo

package pkcs11_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jwkctl/jwkctl/keystore"
	_ "github.com/jwkctl/jwkctl/keystore/pkcs11"
)

// Without cgo every PKCS#11 operation says how to get the real backend.
func TestWithoutCgo(t *testing.T) {
	ctx := context.Background()
	const uri = "pkcs11:token=t;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so"
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, keystore.ErrBackendUnavailable) || !strings.Contains(err.Error(), "CGO_ENABLED=1") {
			t.Errorf("%s: %v", what, err)
		}
	}
	_, err := keystore.Open(ctx, uri, keystore.Options{})
	check("open", err)
	_, err = keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(uri), Spec: keystore.KeySpec{}})
	check("generate", err)
	_, err = keystore.List(ctx, uri, keystore.Options{})
	check("list", err)
	check("delete", keystore.Delete(ctx, uri, keystore.Options{}))
	check("disable", keystore.SetEnabled(ctx, uri, false, keystore.Options{}))
}
