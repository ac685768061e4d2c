package token_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/token"
)

// BenchmarkColdTokenDevSTS: one token request as it really runs — a fresh
// assertion (and DPoP proof), a loopback exchange with the dev STS, which
// verifies them and signs an access token — reported as a multiple of one
// bare ES256 signature with the same key.
func BenchmarkColdTokenDevSTS(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := signer.New(key, jose.ES256)
	if err != nil {
		b.Fatal(err)
	}
	sts, stop, err := devsts.Start(devsts.Config{TokenLifetime: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	if err := sts.RegisterClient("bench", []jose.JSONWebKey{*s.Public()}, []string{devsts.DemoScope}); err != nil {
		b.Fatal(err)
	}
	const sigRounds = 300
	start := time.Now()
	for range sigRounds {
		if _, err := s.SignPayload([]byte("header.payload"), jose.ES256); err != nil {
			b.Fatal(err)
		}
	}
	perSig := time.Since(start) / sigRounds
	for _, dpop := range []bool{false, true} {
		name := "Bearer"
		if dpop {
			name = "DPoP"
		}
		b.Run(name, func(b *testing.B) {
			c, err := token.NewClient(token.Config{Issuer: sts.Issuer(), ClientID: "bench", Signer: s, DPoP: dpop, Scopes: []string{devsts.DemoScope}})
			if err != nil {
				b.Fatal(err)
			}
			// The first exchange learns the nonce; steady state is measured.
			if _, err := c.Exchange(b.Context(), token.Request{}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := c.Exchange(b.Context(), token.Request{}); err != nil {
					b.Fatal(err)
				}
			}
			perOp := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(perOp)/float64(perSig), "x-signature")
		})
	}
}
