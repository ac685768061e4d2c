package awskms_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/awskms/fakeawskms"
)

// A KMS slower than the budget: Sign gives up after Options.KMSTimeout (--kms-timeout),
// not after the built-in 30 s.
func TestSignHonoursKMSTimeout(t *testing.T) {
	s, opts := fake(t)
	generate(t, opts, "hangs", jose.ES256, 0)
	opts.KMSTimeout = 300 * time.Millisecond
	k, err := keystore.Open(context.Background(), aliasURI("hangs"), opts)
	if err != nil {
		t.Fatal(err)
	}
	s.SetFaults(fakeawskms.Faults{SignDelay: 3 * time.Second})
	digest := sha256.Sum256([]byte("x"))
	// Without the budget Sign would wait out the delay and succeed.
	if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
		t.Fatal("Sign against a KMS that answers only after 3 s succeeded although --kms-timeout was 300ms")
	}
}
