package token

import (
	"crypto"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/signer"
)

// countingKey counts signatures, to prove the cached path makes none.
type countingKey struct {
	crypto.Signer
	n atomic.Int64
}

func (k *countingKey) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	k.n.Add(1)
	return k.Signer.Sign(r, d, o)
}

// quickSTS answers every token request at once, without checking: the
// benchmark measures the client, not the server.
func quickSTS(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"abc","token_type":"Bearer","expires_in":3600}`))
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchSigner(b *testing.B) (*signer.Signer, *countingKey) {
	keys(b)
	k := &countingKey{Signer: testKey}
	s, err := signer.New(k, jose.ES256)
	if err != nil {
		b.Fatal(err)
	}
	return s, k
}

// BenchmarkSourceTokenCached: a cached Token must cost well under a
// microsecond and no signature.
func BenchmarkSourceTokenCached(b *testing.B) {
	srv := quickSTS(b)
	s, k := benchSigner(b)
	c, err := NewClient(Config{TokenEndpoint: srv.URL + "/token", ClientID: "bench", Signer: s})
	if err != nil {
		b.Fatal(err)
	}
	src := NewSource(c)
	if _, err := src.Token(); err != nil {
		b.Fatal(err)
	}
	before := k.n.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := src.Token(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(k.n.Load()-before)/float64(b.N), "signatures/op")
}

// BenchmarkColdToken: sign an assertion and exchange it over loopback,
// reported as a multiple of one bare signature with the same key.
func BenchmarkColdToken(b *testing.B) {
	srv := quickSTS(b)
	s, _ := benchSigner(b)
	c, err := NewClient(Config{TokenEndpoint: srv.URL + "/token", ClientID: "bench", Signer: s})
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte("header.payload")
	const sigRounds = 200
	start := time.Now()
	for range sigRounds {
		if _, err := s.SignPayload(payload, jose.ES256); err != nil {
			b.Fatal(err)
		}
	}
	perSig := time.Since(start) / sigRounds
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Exchange(b.Context(), Request{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	perOp := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(perOp)/float64(perSig), "x-signature")
	b.ReportMetric(float64(perSig.Nanoseconds()), "ns/signature")
}
