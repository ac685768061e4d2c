package agent_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	dto "github.com/prometheus/client_model/go"
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

// GET /metrics, read with Prometheus's own parser after known events:
// every family the agent documents is there with its type, help and
// values, a scope with a quote and a backslash comes back intact, and the
// STS histogram is cumulative. The families are exactly the rows of the
// metric table in docs/agent.md.
func TestMetricsEndpoint(t *testing.T) {
	ok, failing := &fakeSTS{}, &fakeSTS{fail: errors.New("sts down")}
	a := agent.New(agent.Config{}, []*agent.Profile{{Name: "p", Client: ok, KeyID: "kid-p"}, {Name: `we"ird`, Client: failing}})
	defer a.Close()
	exp := time.Now().Add(30 * 24 * time.Hour)
	a.Metrics().SetKeyExpiry("p", exp)
	hc := unixClient(serve(t, a, ""))
	getToken(hc, "p")
	getToken(hc, "p")
	getToken(hc, "p")
	scope := `a"b\c`
	if resp, err := hc.Get("http://agent/v1/token?profile=p&scope=" + url.QueryEscape(scope)); err == nil {
		resp.Body.Close()
	}
	if code, _, _ := getToken(hc, url.QueryEscape(`we"ird`)); code != 503 {
		t.Fatalf("the failing profile answered %d", code)
	}
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	k, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse("file:" + filepath.Join(t.TempDir(), "k.json")), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	w := a.Metrics().CountSignatures(k)
	for range 2 {
		if _, err := w.Sign(rand.Reader, make([]byte, 32), crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	}

	resp, err := hc.Get("http://agent/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); expfmt.ResponseFormat(resp.Header).FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("Prometheus's parser rejects /metrics: %v", err)
	}
	type sample struct {
		family string
		labels string
	}
	values := map[sample]float64{}
	for name, mf := range mfs {
		if mf.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			s := sample{name, strings.Join(ls, ",")}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				values[s] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				values[s] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				values[s] = float64(h.GetSampleCount())
				var prev uint64
				for _, b := range h.GetBucket() {
					if b.GetCumulativeCount() < prev {
						t.Errorf("%s{%s}: buckets not cumulative", name, s.labels)
					}
					prev = b.GetCumulativeCount()
				}
				if n := len(h.GetBucket()); n != 13 || prev != h.GetSampleCount() {
					t.Errorf("%s{%s}: %d buckets ending at %d, want 12 + Inf ending at the count %d", name, s.labels, n, prev, h.GetSampleCount())
				}
			default:
				t.Errorf("%s: type %v", name, mf.GetType())
			}
		}
	}
	for s, want := range map[sample]float64{
		{"jwkctl_agent_tokens_issued_total", "profile=p"}:                 2, // no scope, and the odd scope
		{"jwkctl_agent_cache_hits_total", "profile=p"}:                    2,
		{"jwkctl_agent_sts_request_seconds", "profile=p"}:                 2,
		{"jwkctl_agent_sts_request_seconds", `profile=we"ird`}:            1,
		{"jwkctl_agent_refresh_failures_total", `profile=we"ird`}:         1,
		{"jwkctl_agent_signatures_total", "backend=file"}:                 2,
		{"jwkctl_agent_token_expiry_seconds", "profile=p,scope="}:         60,
		{"jwkctl_agent_token_expiry_seconds", "profile=p,scope=" + scope}: 60,
	} {
		got, ok := values[s]
		if !ok {
			t.Errorf("no sample %s{%s}; have %v", s.family, s.labels, values)
			continue
		}
		if s.family == "jwkctl_agent_token_expiry_seconds" {
			if got > want || got < want-10 {
				t.Errorf("%s{%s} = %v, want about %v", s.family, s.labels, got, want)
			}
		} else if got != want {
			t.Errorf("%s{%s} = %v, want %v", s.family, s.labels, got, want)
		}
	}
	if got := values[sample{"jwkctl_agent_key_expiry_seconds", "profile=p"}]; math.Abs(got-time.Until(exp).Seconds()) > 10 {
		t.Errorf("key expiry %v s, want about %v", got, time.Until(exp).Seconds())
	}

	doc, err := os.ReadFile("../docs/agent.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(jwkctl_agent_[a-z_]+)\\{").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	for name := range mfs {
		if !documented[name] {
			t.Errorf("%s is served but not in docs/agent.md's metric table", name)
		}
		delete(documented, name)
	}
	for name := range documented {
		t.Errorf("docs/agent.md lists %s, which /metrics does not serve here", name)
	}
}
