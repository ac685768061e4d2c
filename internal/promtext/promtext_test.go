package promtext_test

import (
	"bytes"
	"io"
	"math"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/jwkctl/jwkctl/internal/promtext"
)

// parse reads an exposition with Prometheus's own parser (a test-only
// import: the binary does not link it), strict about names.
func parse(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("Prometheus's parser rejects the output: %v", err)
	}
	return mfs
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func write(t *testing.T, fams ...promtext.Family) string {
	t.Helper()
	var buf bytes.Buffer
	if err := promtext.Write(&buf, fams...); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestCountersAndGauges(t *testing.T) {
	c := promtext.NewCounterVec("x_total", "Things counted.", "kind")
	c.With("a").Inc()
	c.With("a").Inc()
	c.With("b").Add(0.5)
	g := promtext.Family{Name: "y_seconds", Help: "Seconds left.", Type: promtext.Gauge, Labels: []string{"p", "q"},
		Series: []promtext.Series{{Values: []string{"1", "2"}, Value: -3.25}, {Values: []string{"1", "3"}, Value: math.Inf(1)}}}
	empty := promtext.NewCounterVec("z_total", "Never counted.", "kind")
	out := write(t, g, c.Family(), empty.Family())
	mfs := parse(t, strings.NewReader(out))
	if len(mfs) != 2 || mfs["z_total"] != nil {
		t.Fatalf("families %v: want x_total and y_seconds, not the empty z_total", mfs)
	}
	x := mfs["x_total"]
	if x.GetType() != dto.MetricType_COUNTER || x.GetHelp() != "Things counted." || len(x.GetMetric()) != 2 {
		t.Fatalf("x_total: %v", x)
	}
	got := map[string]float64{}
	for _, m := range x.GetMetric() {
		got[labels(m)["kind"]] = m.GetCounter().GetValue()
	}
	if got["a"] != 2 || got["b"] != 0.5 {
		t.Fatalf("x_total values %v, want a=2 b=0.5", got)
	}
	y := mfs["y_seconds"]
	if y.GetType() != dto.MetricType_GAUGE || len(y.GetMetric()) != 2 {
		t.Fatalf("y_seconds: %v", y)
	}
	for _, m := range y.GetMetric() {
		l, v := labels(m), m.GetGauge().GetValue()
		if l["p"] != "1" || (l["q"] == "2" && v != -3.25) || (l["q"] == "3" && !math.IsInf(v, 1)) {
			t.Fatalf("y_seconds sample %v = %v", l, v)
		}
	}
	// Sorted by name, series by label values, as client_golang writes:
	// the same families in any order give the same bytes.
	if again := write(t, empty.Family(), c.Family(), g); again != out || strings.Index(out, "x_total") > strings.Index(out, "y_seconds") {
		t.Fatalf("output not in a stable order:\n%s\n---\n%s", out, again)
	}
}

// Label values can carry what a caller sent (a scope): quotes,
// backslashes, line feeds and bytes that are not UTF-8 must neither break
// the body nor inject a sample.
func TestLabelEscaping(t *testing.T) {
	nasty := []string{
		`a"b`, `c\d`, "e\nf 1\ng{h=\"i\"} 2", "\xff\xfe", `\"`, `trailing\`,
	}
	c := promtext.NewCounterVec("x_total", "Help with a \\ backslash\nand a line feed.", "v")
	for i, v := range nasty {
		c.With(v).Add(float64(i + 1))
	}
	mfs := parse(t, strings.NewReader(write(t, c.Family())))
	if len(mfs) != 1 {
		t.Fatalf("an escaped value leaked a family: %v", mfs)
	}
	x := mfs["x_total"]
	if x.GetHelp() != "Help with a \\ backslash\nand a line feed." {
		t.Fatalf("help read back as %q", x.GetHelp())
	}
	if len(x.GetMetric()) != len(nasty) {
		t.Fatalf("%d samples, want %d", len(x.GetMetric()), len(nasty))
	}
	for _, m := range x.GetMetric() {
		v := labels(m)["v"]
		i := int(m.GetCounter().GetValue()) - 1
		want := strings.ToValidUTF8(nasty[i], "\uFFFD")
		if v != want {
			t.Errorf("label value %q read back as %q", want, v)
		}
	}
}

func TestHistogram(t *testing.T) {
	bounds := promtext.ExponentialBuckets(0.005, 2, 12)
	if len(bounds) != 12 || bounds[0] != 0.005 || bounds[11] != 10.24 {
		t.Fatalf("buckets %v", bounds)
	}
	h := promtext.NewHistogramVec("lat_seconds", "Latency.", bounds, "profile")
	obs := []float64{0.001, 0.005, 0.0051, 0.3, 0.3, 10.24, 11, 1000}
	for _, v := range obs {
		h.With("p").Observe(v)
	}
	h.With("q").Observe(0.02)
	out := write(t, h.Family())
	mfs := parse(t, strings.NewReader(out))
	f := mfs["lat_seconds"]
	if f.GetType() != dto.MetricType_HISTOGRAM || len(f.GetMetric()) != 2 {
		t.Fatalf("lat_seconds: %v", f)
	}
	for _, m := range f.GetMetric() {
		if labels(m)["profile"] != "p" {
			continue
		}
		hh := m.GetHistogram()
		var sum float64
		for _, v := range obs {
			sum += v
		}
		if hh.GetSampleCount() != uint64(len(obs)) || hh.GetSampleSum() != sum {
			t.Fatalf("count %d sum %v, want %d and %v", hh.GetSampleCount(), hh.GetSampleSum(), len(obs), sum)
		}
		bs := hh.GetBucket()
		if len(bs) != len(bounds)+1 || !math.IsInf(bs[len(bounds)].GetUpperBound(), 1) || bs[len(bounds)].GetCumulativeCount() != uint64(len(obs)) {
			t.Fatalf("%d buckets, want %d and +Inf holding every observation", len(bs), len(bounds))
		}
		// Cumulative: each bucket counts the observations ≤ its bound,
		// recomputed here from the observations.
		var prev uint64
		for i, b := range bs[:len(bounds)] {
			if b.GetUpperBound() != bounds[i] {
				t.Fatalf("bucket %d bound %v, want %v", i, b.GetUpperBound(), bounds[i])
			}
			var want uint64
			for _, v := range obs {
				if v <= bounds[i] {
					want++
				}
			}
			if b.GetCumulativeCount() != want || b.GetCumulativeCount() < prev {
				t.Fatalf("bucket le=%v: %d, want %d (cumulative)", bounds[i], b.GetCumulativeCount(), want)
			}
			prev = b.GetCumulativeCount()
		}
	}
	// Labels in name order whatever order they were declared in, le last.
	h2 := promtext.NewHistogramVec("h_seconds", "h", []float64{1}, "zone", "app")
	h2.With("z1", "a1").Observe(2)
	if out2 := write(t, h2.Family()); !strings.Contains(out2, `h_seconds_bucket{app="a1",zone="z1",le="1"} 0`) ||
		!strings.Contains(out2, `h_seconds_count{app="a1",zone="z1"} 1`) {
		t.Fatalf("label order:\n%s", out2)
	}
	if !strings.Contains(out, `lat_seconds_bucket{profile="p",le="+Inf"} 8`) || !strings.Contains(out, `lat_seconds_bucket{profile="p",le="0.005"} 2`) {
		t.Fatalf("bucket lines:\n%s", out)
	}
}

// Concurrent updates and scrapes: run with -race; the totals are exact.
func TestConcurrentUse(t *testing.T) {
	c := promtext.NewCounterVec("x_total", "x", "k")
	h := promtext.NewHistogramVec("h_seconds", "h", []float64{1}, "k")
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := []string{"a", "b"}[(w+i)%2]
				c.With(k).Inc()
				h.With(k).Observe(0.5)
				if i%100 == 0 {
					parse(t, strings.NewReader(write(t, c.Family(), h.Family())))
				}
			}
		}()
	}
	wg.Wait()
	mfs := parse(t, strings.NewReader(write(t, c.Family(), h.Family())))
	var total float64
	for _, m := range mfs["x_total"].GetMetric() {
		total += m.GetCounter().GetValue()
	}
	var count uint64
	for _, m := range mfs["h_seconds"].GetMetric() {
		count += m.GetHistogram().GetSampleCount()
		if m.GetHistogram().GetBucket()[0].GetCumulativeCount() != m.GetHistogram().GetSampleCount() {
			t.Fatalf("histogram series inconsistent: %v", m)
		}
	}
	if total != workers*each || count != workers*each {
		t.Fatalf("counted %v and observed %d, want %d each", total, count, workers*each)
	}
}

func TestWriteRejectsBadFamilies(t *testing.T) {
	ok := promtext.Series{Values: []string{"v"}, Value: 1}
	for name, f := range map[string][]promtext.Family{
		"metric name":     {{Name: "1x", Type: promtext.Gauge, Labels: []string{"l"}, Series: []promtext.Series{ok}}},
		"label name":      {{Name: "x", Type: promtext.Gauge, Labels: []string{"a-b"}, Series: []promtext.Series{ok}}},
		"reserved label":  {{Name: "x", Type: promtext.Gauge, Labels: []string{"__l"}, Series: []promtext.Series{ok}}},
		"le on histogram": {{Name: "x", Type: promtext.Histogram, Labels: []string{"le"}, Series: []promtext.Series{{Values: []string{"v"}, Counts: []uint64{0}}}}},
		"type":            {{Name: "x", Type: "summary", Labels: []string{"l"}, Series: []promtext.Series{ok}}},
		"value count":     {{Name: "x", Type: promtext.Gauge, Labels: []string{"l", "m"}, Series: []promtext.Series{ok}}},
		"duplicate":       {{Name: "x", Type: promtext.Gauge, Labels: []string{"l"}, Series: []promtext.Series{ok, ok}}},
		"family twice":    {{Name: "x", Type: promtext.Gauge, Labels: []string{"l"}, Series: []promtext.Series{ok}}, {Name: "x", Type: promtext.Gauge}},
	} {
		if err := promtext.Write(io.Discard, f...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestHandler(t *testing.T) {
	c := promtext.NewCounterVec("x_total", "x", "k")
	c.With("a").Inc()
	rec := httptest.NewRecorder()
	promtext.Handler(func() []promtext.Family { return []promtext.Family{c.Family()} }).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != promtext.ContentType {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if got := expfmt.ResponseFormat(rec.Header()); got.FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("Prometheus reads the content type as %v", got)
	}
	if v := parse(t, rec.Body)["x_total"].GetMetric()[0].GetCounter().GetValue(); v != 1 {
		t.Fatalf("x_total %v", v)
	}
	rec = httptest.NewRecorder()
	promtext.Handler(func() []promtext.Family { return []promtext.Family{{Name: "bad name", Type: promtext.Gauge}} }).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 500 {
		t.Fatalf("a family that cannot be written: %d, want 500", rec.Code)
	}
}
