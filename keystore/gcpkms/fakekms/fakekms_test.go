package fakekms_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/gcpkms"
	"github.com/jwkctl/jwkctl/keystore/gcpkms/fakekms"
)

const key = "gcpkms://projects/p/locations/europe-north1/keyRings/r/cryptoKeys/k"

// Like Cloud KMS, the fake destroys only ENABLED or DISABLED versions; a
// second destroy is FAILED_PRECONDITION. gcpkms's Delete turns that into
// keystore.ErrNotFound ("already scheduled for destruction"), so a
// resumed retirement does not fail for ever.
func TestDestroyTwice(t *testing.T) {
	gcpkms.PollInterval = time.Millisecond
	s, addr, stop, err := fakekms.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	opts := keystore.Options{Endpoint: addr}
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	k, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(key), Spec: spec, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	v1 := k.URI().String()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := kmspb.NewKeyManagementServiceClient(conn)
	name := strings.TrimPrefix(v1, "gcpkms://")
	if _, err := raw.DestroyCryptoKeyVersion(ctx, &kmspb.DestroyCryptoKeyVersionRequest{Name: name}); err != nil {
		t.Fatalf("first destroy: %v", err)
	}
	if _, err := raw.DestroyCryptoKeyVersion(ctx, &kmspb.DestroyCryptoKeyVersionRequest{Name: name}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("second destroy: %v, want FAILED_PRECONDITION", err)
	}

	err = keystore.Delete(ctx, v1, opts)
	if !errors.Is(err, keystore.ErrNotFound) || !strings.Contains(err.Error(), "already scheduled for destruction") {
		t.Fatalf("delete of a destroy-scheduled version: %v", err)
	}

	// A disabled version can be destroyed; one still being generated
	// cannot, and that is not "not found".
	k2, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(key), Spec: spec, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.SetEnabled(ctx, k2.URI().String(), false, opts); err != nil {
		t.Fatal(err)
	}
	if err := keystore.Delete(ctx, k2.URI().String(), opts); err != nil {
		t.Fatalf("delete of a disabled version: %v", err)
	}
	s.SetFaults(fakekms.Faults{PendingPolls: 1000})
	v3, err := raw.CreateCryptoKeyVersion(ctx, &kmspb.CreateCryptoKeyVersionRequest{Parent: strings.TrimPrefix(key, "gcpkms://")})
	if err != nil {
		t.Fatal(err)
	}
	err = keystore.Delete(ctx, "gcpkms://"+v3.GetName(), opts)
	if err == nil || errors.Is(err, keystore.ErrNotFound) || !strings.Contains(err.Error(), "PENDING_GENERATION") {
		t.Fatalf("delete of a version still being generated: %v", err)
	}
}
