package awskms_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/benchraw"
	"github.com/jwkctl/jwkctl/keystore/awskms"
	"github.com/jwkctl/jwkctl/signer"
)

// BenchmarkAssertionVsRawSign: a client assertion through jwkctl (claims,
// JOSE, DER → r‖s, one Sign call) against the bare SDK Sign call on the
// same fake key. Reports the overhead ratio and the KMS calls per
// assertion (must be 1: the public key is fetched once per process).
func BenchmarkAssertionVsRawSign(b *testing.B) {
	s, opts := fake(b)
	k := generate(b, opts, "bench", jose.ES256, 0)
	sg, _ := signer.New(k, jose.ES256)
	ac, err := assertion.NewClient(sg, assertion.Config{ClientID: "bench", Audience: "https://helseid-sts.test.nhn.no"})
	if err != nil {
		b.Fatal(err)
	}
	raw, err := awskms.Dial(context.Background(), awskms.Target{Endpoint: opts.Endpoint, Region: region})
	if err != nil {
		b.Fatal(err)
	}
	arn := k.(*awskms.Key).ARN()
	digest := sha256.Sum256([]byte("header.payload"))
	rawSign := func() {
		if _, err := raw.Sign(context.Background(), &kms.SignInput{KeyId: aws.String(arn), Message: digest[:],
			MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}); err != nil {
			b.Fatal(err)
		}
	}
	before, pubBefore := s.AllCalls(), s.Calls("GetPublicKey")
	n := benchraw.Run(b, func() error { _, err := ac.Sign(); return err }, rawSign)
	calls := float64(s.AllCalls()-before-n) / float64(n) // minus the raw path's own calls
	if s.Calls("GetPublicKey") != pubBefore {
		b.Fatal("signing asked KMS for the public key again")
	}
	b.ReportMetric(calls, "kms-calls/assertion")
}
