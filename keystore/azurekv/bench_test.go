package azurekv_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/benchraw"
	"github.com/jwkctl/jwkctl/keystore/azurekv/fakeazkv"
	"github.com/jwkctl/jwkctl/signer"
)

// BenchmarkAssertionVsRawSign: a client assertion through jwkctl (claims,
// JOSE, kid and length checks, one Sign request) against the bare azkeys
// Sign call on the same fake vault key. Reports the overhead ratio and
// the HTTP requests per assertion (must be 1: the public key is read once,
// the authentication challenge is answered once per process).
func BenchmarkAssertionVsRawSign(b *testing.B) {
	s, opts := fake(b)
	k := generate(b, opts, vault+"/bench", jose.ES256, 0)
	sg, err := signer.New(k, jose.ES256)
	if err != nil {
		b.Fatal(err)
	}
	ac, err := assertion.NewClient(sg, assertion.Config{ClientID: "bench", Audience: "https://helseid-sts.test.nhn.no"})
	if err != nil {
		b.Fatal(err)
	}
	raw, err := azkeys.NewClient(s.URL(), tokenFunc(func(policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{Token: fakeazkv.Token, ExpiresOn: time.Now().Add(time.Hour)}, nil
	}), &azkeys.ClientOptions{DisableChallengeResourceVerification: true, ClientOptions: policy.ClientOptions{Transport: s.Client()}})
	if err != nil {
		b.Fatal(err)
	}
	u := k.URI().AzureKV
	digest := sha256.Sum256([]byte("header.payload"))
	rawSign := func() {
		if _, err := raw.Sign(context.Background(), u.Key, u.Version, azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil); err != nil {
			b.Fatal(err)
		}
	}
	rawSign() // the raw client's own challenge round trip
	before := s.Requests()
	n := benchraw.Run(b, func() error { _, err := ac.Sign(); return err }, rawSign)
	requests := float64(s.Requests()-before-int64(n)) / float64(n) // minus the raw path's own
	b.ReportMetric(requests, "requests/assertion")
}
