// Package benchraw times a jwkctl operation against the raw operation it
// wraps (for a KMS backend: the bare SDK call, against the same fake),
// alternating the two in one b.Loop so both see the same machine load.
//
//	n := benchraw.Run(b, func() error { _, err := ac.Sign(); return err }, rawSign)
//	b.ReportMetric(float64(fake.Calls()-before-n)/float64(n), "rpcs/assertion")
package benchraw

import (
	"testing"
	"time"
)

// Run calls ours and raw alternately until b.Loop ends and reports
// jwkctl/raw (the ratio of their total times) and overhead-ns/op. It
// returns how many times each ran. raw reports its own failures.
func Run(b *testing.B, ours func() error, raw func()) (n int) {
	b.Helper()
	var tj, tr time.Duration
	for b.Loop() {
		start := time.Now()
		if err := ours(); err != nil {
			b.Fatal(err)
		}
		tj += time.Since(start)
		start = time.Now()
		raw()
		tr += time.Since(start)
		n++
	}
	if n > 0 && tr > 0 {
		b.ReportMetric(float64(tj)/float64(tr), "jwkctl/raw")
		b.ReportMetric(float64(tj-tr)/float64(n), "overhead-ns/op")
	}
	return n
}
