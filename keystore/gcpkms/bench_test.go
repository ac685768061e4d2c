package gcpkms_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"hash/crc32"
	"testing"

	"github.com/go-jose/go-jose/v4"
	cloudkms "google.golang.org/api/cloudkms/v1"
	"google.golang.org/api/option"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/benchraw"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/gcpkms/fakekms"
	"github.com/jwkctl/jwkctl/signer"
)

// BenchmarkAssertionVsRawRPC: a client assertion through jwkctl (claims,
// JOSE, CRC32C checks, one asymmetricSign) against the bare asymmetricSign
// call through Google's generated REST client on the same fake KMS key. Reports the overhead ratio and the RPCs
// per assertion (must be 1: the public key is cached).
func BenchmarkAssertionVsRawRPC(b *testing.B) {
	s, addr, stop, err := fakekms.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	opts := keystore.Options{Endpoint: addr}
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	k, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse(ring + "/cryptoKeys/bench"), Spec: spec, Options: opts})
	if err != nil {
		b.Fatal(err)
	}
	sg, _ := signer.New(k, jose.ES256)
	ac, err := assertion.NewClient(sg, assertion.Config{ClientID: "bench", Audience: "https://helseid-sts.test.nhn.no"})
	if err != nil {
		b.Fatal(err)
	}
	raw, err := cloudkms.NewService(context.Background(), option.WithEndpoint("http://"+addr+"/"), option.WithoutAuthentication())
	if err != nil {
		b.Fatal(err)
	}
	name := k.URI().GCPKMS.VersionName()
	digest := sha256.Sum256([]byte("header.payload"))
	table := crc32.MakeTable(crc32.Castagnoli)
	rawSign := func() {
		if _, err := raw.Projects.Locations.KeyRings.CryptoKeys.CryptoKeyVersions.AsymmetricSign(name, &cloudkms.AsymmetricSignRequest{
			Digest:       &cloudkms.Digest{Sha256: base64.StdEncoding.EncodeToString(digest[:])},
			DigestCrc32c: int64(crc32.Checksum(digest[:], table))}).Do(); err != nil {
			b.Fatal(err)
		}
	}
	before := s.AllRPCs()
	n := benchraw.Run(b, func() error { _, err := ac.Sign(); return err }, rawSign)
	rpcs := float64(s.AllRPCs()-before-int64(n)) / float64(n) // minus the raw path's own calls
	b.ReportMetric(rpcs, "rpcs/assertion")
}
