package agent_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/jwkctl/jwkctl/agent"
	"github.com/jwkctl/jwkctl/keystore"
	_ "github.com/jwkctl/jwkctl/keystore/file"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/signer/signertest"
)

// A key wrapped to count its signatures signs exactly as the key itself:
// the algorithm its file records stays the default, it passes the
// conformance suite, and every signature is counted.
func TestCountedKeyKeepsItsAbilities(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		alg  jose.SignatureAlgorithm
		bits int
	}{{jose.RS256, 2048}, {jose.ES384, 0}} {
		spec, _ := keystore.SpecFor(tc.alg, tc.bits)
		k, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse("file:" + filepath.Join(dir, string(tc.alg)+".json")), Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		m := agent.NewMetrics()
		w := m.CountSignatures(k)
		if alg, err := signer.DefaultAlg(w); err != nil || alg != tc.alg {
			t.Fatalf("default alg of the wrapped %s key: %s, %v", tc.alg, alg, err)
		}
		t.Run(string(tc.alg), func(t *testing.T) { signertest.Run(t, w) })
		s, _ := signer.New(w, tc.alg)
		count := func() float64 {
			var buf bytes.Buffer
			if err := m.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			p := expfmt.NewTextParser(model.LegacyValidation)
			mfs, err := p.TextToMetricFamilies(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if mf := mfs["jwkctl_agent_signatures_total"]; mf != nil {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
			return 0
		}
		before := count()
		if _, err := s.SignPayload([]byte("x"), tc.alg); err != nil {
			t.Fatal(err)
		}
		if got := count() - before; got != 1 {
			t.Fatalf("%s: counted %v signatures for one, want 1", tc.alg, got)
		}
	}
}
