package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/promtext"
	"github.com/jwkctl/jwkctl/keystore"
)

// Metrics are the agent's Prometheus metrics, served as text by Handler.
// They are kept by internal/promtext rather than client_golang, whose
// package inits every jwkctl command would pay for at start.
type Metrics struct {
	tokensIssued    *promtext.CounterVec
	cacheHits       *promtext.CounterVec
	stsLatency      *promtext.HistogramVec
	signatures      *promtext.CounterVec
	refreshFailures *promtext.CounterVec

	mu        sync.Mutex
	agent     *Agent
	keyExpiry map[string]time.Time
	now       func() time.Time
}

// NewMetrics makes the metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		tokensIssued: promtext.NewCounterVec("jwkctl_agent_tokens_issued_total",
			"Tokens obtained from the STS.", "profile"),
		cacheHits: promtext.NewCounterVec("jwkctl_agent_cache_hits_total",
			"Token requests answered from the cache.", "profile"),
		stsLatency: promtext.NewHistogramVec("jwkctl_agent_sts_request_seconds",
			"Time for one token exchange with the STS, retries included.", promtext.ExponentialBuckets(0.005, 2, 12), "profile"),
		signatures: promtext.NewCounterVec("jwkctl_agent_signatures_total",
			"Signatures made (client assertions and DPoP proofs), by key backend.", "backend"),
		refreshFailures: promtext.NewCounterVec("jwkctl_agent_refresh_failures_total",
			"Failed token refreshes (not counting callers asking for a scope the client lacks).", "profile"),
		keyExpiry: map[string]time.Time{},
		now:       time.Now,
	}
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

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return promtext.Handler(m.families) }

// WriteText writes the metrics in the Prometheus text format, as Handler
// serves them.
func (m *Metrics) WriteText(w io.Writer) error { return promtext.Write(w, m.families()...) }

// families snapshots every metric; the expiry gauges are seconds from
// now, and the key info gauge names the kid each served profile signs with.
func (m *Metrics) families() []promtext.Family {
	m.mu.Lock()
	a, now := m.agent, m.now()
	keys := make(map[string]time.Time, len(m.keyExpiry))
	for k, v := range m.keyExpiry {
		keys[k] = v
	}
	m.mu.Unlock()
	tokenExp := promtext.Family{Name: "jwkctl_agent_token_expiry_seconds",
		Help: "Seconds until the cached token expires.", Type: promtext.Gauge, Labels: []string{"profile", "scope"}}
	keyInfo := promtext.Family{Name: "jwkctl_agent_signing_key_info",
		Help: "The kid (RFC 7638 thumbprint) of the key each profile signs with; always 1.", Type: promtext.Gauge, Labels: []string{"profile", "kid"}}
	if a != nil {
		for k, exp := range a.expiries() {
			tokenExp.Series = append(tokenExp.Series, promtext.Series{Values: []string{k[0], k[1]}, Value: exp.Sub(now).Seconds()})
		}
		for p, kid := range a.SigningKeys() {
			keyInfo.Series = append(keyInfo.Series, promtext.Series{Values: []string{p, kid}, Value: 1})
		}
	}
	keyExp := promtext.Family{Name: "jwkctl_agent_key_expiry_seconds",
		Help: "Seconds until the profile's registered key expires in Selvbetjening, when known.", Type: promtext.Gauge, Labels: []string{"profile"}}
	for p, exp := range keys {
		keyExp.Series = append(keyExp.Series, promtext.Series{Values: []string{p}, Value: exp.Sub(now).Seconds()})
	}
	return []promtext.Family{
		m.tokensIssued.Family(), m.cacheHits.Family(), m.stsLatency.Family(),
		m.signatures.Family(), m.refreshFailures.Family(), tokenExp, keyExp, keyInfo,
	}
}

// CountSignatures wraps a key so its signatures are counted under its
// backend's scheme. The wrapper keeps the key's optional abilities (its
// algorithms, its recorded alg, r‖s signing), so a wrapped key signs
// exactly as the key itself would.
func (m *Metrics) CountSignatures(k keystore.Key) keystore.Key {
	return &counted{k, m.signatures.With(k.URI().Scheme)}
}

type counted struct {
	keystore.Key
	c *promtext.CounterValue
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
