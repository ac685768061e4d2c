package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jwkctl/jwkctl/keystore"
)

// Metrics are the agent's Prometheus metrics, in their own registry.
type Metrics struct {
	Registry        *prometheus.Registry
	tokensIssued    *prometheus.CounterVec
	cacheHits       *prometheus.CounterVec
	stsLatency      *prometheus.HistogramVec
	signatures      *prometheus.CounterVec
	refreshFailures *prometheus.CounterVec

	mu         sync.Mutex
	agent      *Agent
	keyExpiry  map[string]time.Time
	now        func() time.Time
	tokenDesc  *prometheus.Desc
	keyExpDesc *prometheus.Desc
	keyDesc    *prometheus.Desc
}

// NewMetrics makes the metrics and registers them.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jwkctl_agent_tokens_issued_total",
			Help: "Tokens obtained from the STS."}, []string{"profile"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jwkctl_agent_cache_hits_total",
			Help: "Token requests answered from the cache."}, []string{"profile"}),
		stsLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "jwkctl_agent_sts_request_seconds",
			Help: "Time for one token exchange with the STS, retries included.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"profile"}),
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jwkctl_agent_signatures_total",
			Help: "Signatures made (client assertions and DPoP proofs), by key backend."}, []string{"backend"}),
		refreshFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jwkctl_agent_refresh_failures_total",
			Help: "Failed token refreshes (not counting callers asking for a scope the client lacks)."}, []string{"profile"}),
		keyExpiry: map[string]time.Time{},
		now:       time.Now,
		tokenDesc: prometheus.NewDesc("jwkctl_agent_token_expiry_seconds",
			"Seconds until the cached token expires.", []string{"profile", "scope"}, nil),
		keyExpDesc: prometheus.NewDesc("jwkctl_agent_key_expiry_seconds",
			"Seconds until the profile's registered key expires in Selvbetjening, when known.", []string{"profile"}, nil),
		keyDesc: prometheus.NewDesc("jwkctl_agent_signing_key_info",
			"The kid (RFC 7638 thumbprint) of the key each profile signs with; always 1.", []string{"profile", "kid"}, nil),
	}
	m.Registry.MustRegister(m.tokensIssued, m.cacheHits, m.stsLatency, m.signatures, m.refreshFailures, m)
	return m
}

// SetKeyExpiry records when a profile's registered key expires (from
// Selvbetjening, via key rotation or `jwkctl keys expiry`).
func (m *Metrics) SetKeyExpiry(profile string, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keyExpiry[profile] = t
}

// keepKeyExpiry forgets the key expiry of profiles no longer served.
func (m *Metrics) keepKeyExpiry(served map[string]*Profile) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.keyExpiry {
		if _, ok := served[name]; !ok {
			delete(m.keyExpiry, name)
		}
	}
}

func (m *Metrics) attach(a *Agent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.agent = a
	m.now = a.cfg.Now
}

// Describe implements prometheus.Collector for the expiry gauges.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.tokenDesc
	ch <- m.keyExpDesc
	ch <- m.keyDesc
}

// Collect implements prometheus.Collector: expiries as seconds from now,
// and the served profiles' signing keys.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	a, now := m.agent, m.now()
	keys := make(map[string]time.Time, len(m.keyExpiry))
	for k, v := range m.keyExpiry {
		keys[k] = v
	}
	m.mu.Unlock()
	if a != nil {
		for k, exp := range a.expiries() {
			ch <- prometheus.MustNewConstMetric(m.tokenDesc, prometheus.GaugeValue, exp.Sub(now).Seconds(), k[0], k[1])
		}
		for p, kid := range a.SigningKeys() {
			ch <- prometheus.MustNewConstMetric(m.keyDesc, prometheus.GaugeValue, 1, p, kid)
		}
	}
	for p, exp := range keys {
		ch <- prometheus.MustNewConstMetric(m.keyExpDesc, prometheus.GaugeValue, exp.Sub(now).Seconds(), p)
	}
}

// CountSignatures wraps a key so its signatures are counted under its
// backend's scheme. The wrapper keeps the key's optional abilities (its
// algorithms, its recorded alg, r‖s signing), so a wrapped key signs
// exactly as the key itself would.
func (m *Metrics) CountSignatures(k keystore.Key) keystore.Key {
	return &counted{k, m.signatures.WithLabelValues(k.URI().Scheme)}
}

type counted struct {
	keystore.Key
	c prometheus.Counter
}

var (
	_ keystore.AlgRestricted = (*counted)(nil)
	_ keystore.AlgRecorder   = (*counted)(nil)
	_ keystore.KidRecorder   = (*counted)(nil)
	_ keystore.ConcatSigner  = (*counted)(nil)
)

func (k *counted) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	k.c.Inc()
	return k.Key.Sign(r, d, o)
}

// Algs forwards keystore.AlgRestricted; nil means any algorithm.
func (k *counted) Algs() []jose.SignatureAlgorithm {
	if r, ok := k.Key.(keystore.AlgRestricted); ok {
		return r.Algs()
	}
	return nil
}

// RecordedAlg forwards keystore.AlgRecorder.
func (k *counted) RecordedAlg() jose.SignatureAlgorithm {
	if r, ok := k.Key.(keystore.AlgRecorder); ok {
		return r.RecordedAlg()
	}
	return ""
}

// RecordedKid forwards keystore.KidRecorder: a wrapped key must keep
// signing with the kid it is registered under.
func (k *counted) RecordedKid() string {
	if r, ok := k.Key.(keystore.KidRecorder); ok {
		return r.RecordedKid()
	}
	return ""
}

// SignConcat forwards keystore.ConcatSigner, or converts the key's DER.
func (k *counted) SignConcat(d []byte, o crypto.SignerOpts) ([]byte, error) {
	if cs, ok := k.Key.(keystore.ConcatSigner); ok {
		k.c.Inc()
		return cs.SignConcat(d, o)
	}
	ec, ok := k.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("agent: r‖s signing needs an ECDSA key")
	}
	der, err := k.Sign(rand.Reader, d, o)
	if err != nil {
		return nil, err
	}
	return keystore.ECDSAConcat(der, (ec.Curve.Params().BitSize+7)/8)
}
