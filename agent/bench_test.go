package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jwkctl/jwkctl/agent"
)

// BenchmarkCachedTokenOverUnixSocket: requests per second and p99 latency
// for cached tokens over the agent's Unix socket, next to a bare net/http
// hello-world on the same kind of socket (targets: ≥ 20,000 req/s and
// p99 < 1 ms on 2 cores). agent/hello is the ratio of the two rates.
func BenchmarkCachedTokenOverUnixSocket(b *testing.B) {
	a := agent.New(agent.Config{}, []*agent.Profile{{Name: "p", Client: &fakeSTS{}}})
	defer a.Close()
	agentSock := serve(b, a, "")
	helloSock := filepath.Join(b.TempDir(), "hello.sock")
	ln, err := agent.Listen("unix:"+helloSock, "")
	if err != nil {
		b.Fatal(err)
	}
	hello := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"hello":"world"}`))
	})}
	go hello.Serve(ln)
	defer hello.Close()

	run := func(sock, path string, n, workers int) (rate float64, p99 time.Duration) {
		hc := unixClient(sock)
		lat := make([][]time.Duration, workers)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					t0 := time.Now()
					resp, err := hc.Get("http://agent" + path)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					lat[w] = append(lat[w], time.Since(t0))
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		all := slices.Concat(lat...)
		slices.Sort(all)
		if len(all) == 0 {
			return 0, 0
		}
		return float64(len(all)) / elapsed.Seconds(), all[len(all)*99/100]
	}
	run(agentSock, "/v1/token?profile=p", 100, 8) // warm the cache and connections
	run(helloSock, "/", 100, 8)
	for _, workers := range []int{2, 4, 8} {
		b.Run(fmt.Sprintf("clients=%d", workers), func(b *testing.B) {
			n := max(b.N, 2000)
			ar, ap := run(agentSock, "/v1/token?profile=p", n, workers)
			hr, hp := run(helloSock, "/", n, workers)
			b.ReportMetric(ar, "agent-req/s")
			b.ReportMetric(float64(ap.Microseconds()), "agent-p99-µs")
			b.ReportMetric(hr, "hello-req/s")
			b.ReportMetric(float64(hp.Microseconds()), "hello-p99-µs")
			b.ReportMetric(ar/hr, "agent/hello")
		})
	}
}
