package assertion_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/signer"
)

// BenchmarkAssertion compares a client assertion through the whole stack
// (claims, JSON, base64, signer adapter) with the bare crypto.Signer.Sign
// of a SHA-256 digest on the same key. The overhead-ratio metric is
// full/raw: the targets are ≤ 1.05 for PS256 (RSA-2048) and ≤ 1.25 for
// ES256 (P-256).
func BenchmarkAssertion(b *testing.B) {
	ec, rk := keys(b)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  jose.SignatureAlgorithm
		opts crypto.SignerOpts
	}{
		{"PS256-RSA2048", rk, jose.PS256, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}},
		{"ES256-P256", ec, jose.ES256, crypto.SHA256},
	} {
		s, err := signer.New(tc.key, tc.alg)
		if err != nil {
			b.Fatal(err)
		}
		c, err := assertion.NewClient(s, assertion.Config{ClientID: "bench-client", Audience: "https://helseid-sts.test.nhn.no"})
		if err != nil {
			b.Fatal(err)
		}
		digest := sha256.Sum256([]byte("signing input of about the size of a client assertion"))
		raw := func(n int) time.Duration {
			start := time.Now()
			for range n {
				if _, err := tc.key.Sign(rand.Reader, digest[:], tc.opts); err != nil {
					b.Fatal(err)
				}
			}
			return time.Since(start)
		}
		full := func(n int) time.Duration {
			start := time.Now()
			for range n {
				if _, err := c.Sign(); err != nil {
					b.Fatal(err)
				}
			}
			return time.Since(start)
		}
		b.Run(tc.name+"/raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.key.Sign(rand.Reader, digest[:], tc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/assertion", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Sign(); err != nil {
					b.Fatal(err)
				}
			}
		})
		// Interleaved rounds so both sides see the same machine load.
		b.Run(tc.name+"/ratio", func(b *testing.B) {
			var tr, tf time.Duration
			n := 0
			for b.Loop() {
				tr += raw(1)
				tf += full(1)
				n++
			}
			b.ReportMetric(float64(tf)/float64(tr), "overhead-ratio")
			b.ReportMetric(float64(tf-tr)/float64(n), "overhead-ns/op")
		})
	}
}
