// Package promtext keeps counters and histograms and writes them, with
// gauges computed at scrape time, in the Prometheus text exposition format
// (version 0.0.4).
//
// It exists so that jwkctl does not link prometheus/client_golang: every
// linked package's init runs at every start, and client_golang with procfs,
// client_model and protobuf was the largest share of `jwkctl --version`'s
// start-up once the Cloud KMS chain is set aside. The agent needs a handful
// of metrics, written on a scrape; that is all this package does.
package promtext

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Type is a metric family's type, as written on its # TYPE line.
type Type string

// The types this package writes.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
)

// Family is one metric family as scraped: its name, help, type, label
// names and series.
type Family struct {
	Name, Help string
	Type       Type
	Labels     []string
	Series     []Series
}

// Series is one labelled sample (counter, gauge) or histogram.
type Series struct {
	// Values are the label values, in the order of Family.Labels.
	Values []string
	// Value is a counter's or gauge's value.
	Value float64
	// Bounds are a histogram's bucket upper bounds (ascending, without
	// +Inf); Counts the number of observations in each bucket, not
	// cumulated (Write cumulates them).
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// Write writes the families in the text format, sorted by name, each
// series' labels by name and the series by label values, as client_golang
// does; families without series
// are left out. Names and label names are checked (a wrong one is a
// programming error, so Write returns an error rather than a body a
// scraper would reject).
func Write(w io.Writer, fams ...Family) error {
	fams = slices.Clone(fams)
	slices.SortFunc(fams, func(a, b Family) int { return strings.Compare(a.Name, b.Name) })
	bw := bufio.NewWriter(w)
	for i, f := range fams {
		if i > 0 && f.Name == fams[i-1].Name {
			return fmt.Errorf("promtext: metric %q twice", f.Name)
		}
		if err := writeFamily(bw, f); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func writeFamily(w *bufio.Writer, f Family) error {
	if !validName(f.Name, true) {
		return fmt.Errorf("promtext: invalid metric name %q", f.Name)
	}
	for _, l := range f.Labels {
		if !validName(l, false) || strings.HasPrefix(l, "__") || (f.Type == Histogram && l == "le") {
			return fmt.Errorf("promtext: metric %s: invalid label name %q", f.Name, l)
		}
	}
	switch f.Type {
	case Counter, Gauge, Histogram:
	default:
		return fmt.Errorf("promtext: metric %s: unknown type %q", f.Name, f.Type)
	}
	if len(f.Series) == 0 {
		return nil
	}
	// Labels in name order, as client_golang writes them (le last).
	order := make([]int, len(f.Labels))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return strings.Compare(f.Labels[i], f.Labels[j]) })
	names := make([]string, len(order))
	for i, o := range order {
		names[i] = f.Labels[o]
	}
	series := make([]Series, len(f.Series))
	for i, s := range f.Series {
		if len(s.Values) != len(f.Labels) {
			return fmt.Errorf("promtext: metric %s: %d label values for %d labels", f.Name, len(s.Values), len(f.Labels))
		}
		series[i] = s
		series[i].Values = make([]string, len(order))
		for j, o := range order {
			series[i].Values[j] = s.Values[o]
		}
	}
	slices.SortFunc(series, func(a, b Series) int { return slices.Compare(a.Values, b.Values) })
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.Name, escapeHelp(f.Help), f.Name, f.Type)
	for i, s := range series {
		if i > 0 && slices.Equal(s.Values, series[i-1].Values) {
			return fmt.Errorf("promtext: metric %s: series %q twice", f.Name, s.Values)
		}
		labels := labelPairs(names, s.Values)
		if f.Type != Histogram {
			writeSample(w, f.Name, labels, s.Value)
			continue
		}
		if len(s.Counts) != len(s.Bounds)+1 {
			return fmt.Errorf("promtext: histogram %s: %d counts for %d bounds", f.Name, len(s.Counts), len(s.Bounds))
		}
		var cum uint64
		for j, b := range s.Bounds {
			cum += s.Counts[j]
			writeSample(w, f.Name+"_bucket", appendPair(labels, "le", formatFloat(b)), float64(cum))
		}
		writeSample(w, f.Name+"_bucket", appendPair(labels, "le", "+Inf"), float64(s.Count))
		writeSample(w, f.Name+"_sum", labels, s.Sum)
		writeSample(w, f.Name+"_count", labels, float64(s.Count))
	}
	return nil
}

// labelPairs renders `a="x",b="y"` (without braces).
func labelPairs(names, values []string) string {
	s := ""
	for i, n := range names {
		s = appendPair(s, n, values[i])
	}
	return s
}

func appendPair(labels, name, value string) string {
	p := name + `="` + escapeLabel(value) + `"`
	if labels == "" {
		return p
	}
	return labels + "," + p
}

func writeSample(w *bufio.Writer, name, labels string, v float64) {
	w.WriteString(name)
	if labels != "" {
		w.WriteString("{" + labels + "}")
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

// formatFloat writes a value as the format and client_golang do: shortest
// decimal that reads back exactly, and +Inf, -Inf, NaN.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// Label values may hold anything a caller sent (a scope, say), so they are
// escaped per the format (backslash, double quote, line feed), and bytes
// that are not UTF-8 become U+FFFD: the format requires UTF-8, and a
// scraper would reject the whole body otherwise.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string {
	return labelEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

// HELP text escapes only backslash and line feed.
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeHelp(s string) string { return helpEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD")) }

// validName checks a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or, without
// colons, a label name.
func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c == ':' && colon) || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Handler serves the families collect returns, for GET /metrics. The body
// is rendered in full before the first byte is sent, so a scraper never
// gets half a body with a 200.
func Handler(collect func() []Family) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		if err := Write(&buf, collect()...); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
	})
}

// CounterVec is a counter family partitioned by label values; safe for
// concurrent use.
type CounterVec struct {
	name, help string
	labels     []string
	mu         sync.Mutex
	series     map[string]*CounterValue
}

// NewCounterVec makes a counter family.
func NewCounterVec(name, help string, labels ...string) *CounterVec {
	return &CounterVec{name: name, help: help, labels: labels, series: map[string]*CounterValue{}}
}

// With returns the counter for the label values (one per label name),
// making it at zero on first use.
func (v *CounterVec) With(values ...string) *CounterValue {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("promtext: %s: %d label values for %d labels", v.name, len(values), len(v.labels)))
	}
	k := seriesKey(values)
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.series[k]
	if !ok {
		c = &CounterValue{values: slices.Clone(values)}
		v.series[k] = c
	}
	return c
}

// Family snapshots the counters.
func (v *CounterVec) Family() Family {
	v.mu.Lock()
	defer v.mu.Unlock()
	f := Family{Name: v.name, Help: v.help, Type: Counter, Labels: v.labels}
	for _, c := range v.series {
		f.Series = append(f.Series, Series{Values: c.values, Value: c.Value()})
	}
	return f
}

// CounterValue is one counter; it only goes up.
type CounterValue struct {
	values []string
	bits   atomic.Uint64
}

// Inc adds one.
func (c *CounterValue) Inc() { c.Add(1) }

// Add adds d, which must not be negative (a counter that went down would
// read as a restart to rate()).
func (c *CounterValue) Add(d float64) {
	if d < 0 || math.IsNaN(d) {
		panic("promtext: counter decreased")
	}
	for {
		old := c.bits.Load()
		if c.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// Value is the counter's current value.
func (c *CounterValue) Value() float64 { return math.Float64frombits(c.bits.Load()) }

// HistogramVec is a histogram family partitioned by label values; safe for
// concurrent use.
type HistogramVec struct {
	name, help string
	labels     []string
	bounds     []float64
	mu         sync.Mutex
	series     map[string]*HistogramValue
}

// NewHistogramVec makes a histogram family with the bucket upper bounds
// given (ascending; +Inf is implied).
func NewHistogramVec(name, help string, bounds []float64, labels ...string) *HistogramVec {
	for i := range bounds {
		if math.IsNaN(bounds[i]) || math.IsInf(bounds[i], 0) || (i > 0 && bounds[i] <= bounds[i-1]) {
			panic(fmt.Sprintf("promtext: %s: bucket bounds must be finite and ascending", name))
		}
	}
	return &HistogramVec{name: name, help: help, labels: labels, bounds: bounds, series: map[string]*HistogramValue{}}
}

// ExponentialBuckets returns n bounds, the first start, each the previous
// times factor (as client_golang's function of that name).
func ExponentialBuckets(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// With returns the histogram for the label values, making it empty on
// first use.
func (v *HistogramVec) With(values ...string) *HistogramValue {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("promtext: %s: %d label values for %d labels", v.name, len(values), len(v.labels)))
	}
	k := seriesKey(values)
	v.mu.Lock()
	defer v.mu.Unlock()
	h, ok := v.series[k]
	if !ok {
		h = &HistogramValue{values: slices.Clone(values), bounds: v.bounds, counts: make([]uint64, len(v.bounds)+1)}
		v.series[k] = h
	}
	return h
}

// Family snapshots the histograms; each series is consistent (its count,
// sum and buckets from the same observations).
func (v *HistogramVec) Family() Family {
	v.mu.Lock()
	hs := make([]*HistogramValue, 0, len(v.series))
	for _, h := range v.series {
		hs = append(hs, h)
	}
	v.mu.Unlock()
	f := Family{Name: v.name, Help: v.help, Type: Histogram, Labels: v.labels}
	for _, h := range hs {
		h.mu.Lock()
		f.Series = append(f.Series, Series{Values: h.values, Bounds: h.bounds, Counts: slices.Clone(h.counts), Count: h.count, Sum: h.sum})
		h.mu.Unlock()
	}
	return f
}

// HistogramValue is one histogram.
type HistogramValue struct {
	values []string
	bounds []float64
	mu     sync.Mutex
	counts []uint64 // per bucket, the last for +Inf
	count  uint64
	sum    float64
}

// Observe records v in the first bucket whose upper bound is ≥ v.
func (h *HistogramValue) Observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[i]++
	h.count++
	h.sum += v
}

// seriesKey joins label values unambiguously: each is length-prefixed, so
// no value can pass for a separator.
func seriesKey(values []string) string {
	var b strings.Builder
	for _, v := range values {
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String()
}
