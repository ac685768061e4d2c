// Package azurekvtest points the registered azurekv backend at an
// in-process fake vault (fakeazkv) for the length of a test.
//
//	s, opts := azurekvtest.Start(t)
//	key, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: …, Options: opts})
package azurekvtest

import (
	"testing"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/azurekv"
	"github.com/jwkctl/jwkctl/keystore/azurekv/fakeazkv"
)

// Start starts a fake vault, stopped when the test ends, and points the
// registered backend at it (Use). opts sends azurekv: requests to it.
func Start(t testing.TB) (s *fakeazkv.Server, opts keystore.Options) {
	t.Helper()
	s, err := fakeazkv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	Use(t, s)
	return s, keystore.Options{Endpoint: s.URL()}
}

// Use makes the registered azurekv backend trust s's CA and send its
// requests to s, with no client or credential cached from before; at the
// end of the test it is reset to its defaults.
func Use(t testing.TB, s *fakeazkv.Server) *azurekv.Backend {
	t.Helper()
	b, err := keystore.Lookup(keystore.SchemeAzureKV)
	if err != nil {
		t.Fatal(err)
	}
	ab := b.(*azurekv.Backend)
	ab.Reset()
	ab.HTTPClient = s.Client()
	t.Cleanup(func() {
		ab.Reset()
		ab.HTTPClient, ab.Credential = nil, nil
	})
	return ab
}
