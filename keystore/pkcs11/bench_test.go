//go:build cgo

package pkcs11_test

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	p11 "github.com/miekg/pkcs11"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
	"github.com/jwkctl/jwkctl/signer"
)

// BenchmarkAssertionVsCSign compares client-assertion signing through
// jwkctl (claims, JOSE, signer adapter, the key's session pool) with bare
// C_SignInit+C_Sign through miekg/pkcs11 on the same SoftHSM2 key, with 1
// and 2 goroutines. Metrics: jwkctl-vs-direct is jwkctl's throughput as a
// fraction of the direct path's (target ≥ 0.9); scaling is each path's
// 2-goroutine throughput over its 1-goroutine throughput.
func BenchmarkAssertionVsCSign(b *testing.B) {
	tok := softhsmtest.Token(b)
	for _, tc := range []struct {
		label string
		alg   jose.SignatureAlgorithm
		bits  int
		mech  *p11.Mechanism
	}{
		{"bench-ps256", jose.PS256, 2048, p11.NewMechanism(p11.CKM_RSA_PKCS_PSS, p11.NewPSSParams(p11.CKM_SHA256, p11.CKG_MGF1_SHA256, 32))},
		{"bench-es256", jose.ES256, 0, p11.NewMechanism(p11.CKM_ECDSA, nil)},
	} {
		key := generateB(b, tok.URI(tc.label), tc.alg, tc.bits)
		s, err := signer.New(key, tc.alg)
		if err != nil {
			b.Fatal(err)
		}
		ac, err := assertion.NewClient(s, assertion.Config{ClientID: "bench", Audience: "https://helseid-sts.test.nhn.no"})
		if err != nil {
			b.Fatal(err)
		}
		direct := newDirect(b, tok, tc.label, tc.mech)
		jwkctlOps := func(n, g int) time.Duration {
			return parallel(n, g, func() {
				if _, err := ac.Sign(); err != nil {
					b.Error(err)
				}
			})
		}
		rates := map[string]float64{}
		for _, g := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", tc.alg, g), func(b *testing.B) {
				n := b.N
				// Interleave the two paths in rounds so they share the
				// machine's conditions.
				var tj, td time.Duration
				const rounds = 40
				for i := range rounds {
					// Alternate which path goes first, so neither always
					// runs on a warmer or a colder machine.
					if i%2 == 0 {
						tj += jwkctlOps(n/rounds+1, g)
						td += direct.run(b, n/rounds+1, g)
					} else {
						td += direct.run(b, n/rounds+1, g)
						tj += jwkctlOps(n/rounds+1, g)
					}
				}
				ops := float64(rounds * (n/rounds + 1))
				rj, rd := ops/tj.Seconds(), ops/td.Seconds()
				rates[fmt.Sprintf("j%d", g)], rates[fmt.Sprintf("d%d", g)] = rj, rd
				b.ReportMetric(rj, "jwkctl-ops/s")
				b.ReportMetric(rd, "direct-ops/s")
				b.ReportMetric(rj/rd, "jwkctl-vs-direct")
				if g == 2 && rates["j1"] > 0 && rates["d1"] > 0 {
					b.ReportMetric(rj/rates["j1"], "jwkctl-scaling")
					b.ReportMetric(rd/rates["d1"], "direct-scaling")
				}
			})
		}
	}
}

// parallel runs f n times spread over g goroutines and returns the time.
func parallel(n, g int, f func()) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < n; j += g {
				f()
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// direct signs with bare PKCS#11 calls, one session per goroutine.
type direct struct {
	p        *p11.Ctx
	sessions []p11.SessionHandle
	handle   p11.ObjectHandle
	mech     *p11.Mechanism
	digest   []byte
}

func newDirect(b *testing.B, tok *softhsmtest.T, label string, mech *p11.Mechanism) *direct {
	b.Helper()
	p, sh := openDirectTB(b, tok)
	d := &direct{p: p, mech: mech, sessions: []p11.SessionHandle{sh}}
	if err := p.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
		b.Fatal(err)
	}
	objs, _, err := p.FindObjects(sh, 1)
	p.FindObjectsFinal(sh)
	if err != nil || len(objs) != 1 {
		b.Fatalf("find %s: %v", label, err)
	}
	d.handle = objs[0]
	_, sh2 := openDirectTB(b, tok)
	d.sessions = append(d.sessions, sh2)
	sum := sha256.Sum256([]byte("header.payload of a client assertion"))
	d.digest = sum[:]
	return d
}

func (d *direct) run(b *testing.B, n, g int) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh := d.sessions[i]
			for j := i; j < n; j += g {
				if err := d.p.SignInit(sh, []*p11.Mechanism{d.mech}, d.handle); err != nil {
					b.Error(err)
					return
				}
				if _, err := d.p.Sign(sh, d.digest); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}
