package devsts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/loopback"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
)

// Paths the server answers on, as HelseID lays them out.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/.well-known/openid-configuration/jwks"
	TokenPath     = "/connect/token"
	// DemoAPIPath is a small protected resource: GET DemoAPIPath + "{herId}".
	DemoAPIPath = "/api/demo/communicationparty/"
	// DemoScope is the scope the demo resource requires.
	DemoScope = "nhn:demo-api/read"
)

// allowedAlgs are the algorithms HelseID accepts for client assertions and
// DPoP proofs. HS* and none are refused.
var allowedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
}

// Config tunes the server. The zero value is HelseID-like: DPoP nonces are
// required, 10 s of clock skew is tolerated.
type Config struct {
	// Issuer is the server's base URL (http only on loopback). Start fills
	// it in from the listener.
	Issuer string
	// Skew is the clock difference tolerated on exp, nbf and iat.
	Skew time.Duration
	// MaxAssertionLifetime caps exp - iat of client assertions (default
	// 60 s, as HelseID allows).
	MaxAssertionLifetime time.Duration
	// TokenLifetime is the access tokens' lifetime (default 5 minutes).
	TokenLifetime time.Duration
	// NoNonce turns off the DPoP nonce requirement.
	NoNonce bool
	// RequireDPoP refuses token requests without a DPoP proof.
	RequireDPoP bool
	// AssertionAlgs and DPoPAlgs are the algorithms the server takes for
	// client assertions and DPoP proofs, and publishes in its discovery
	// document (token_endpoint_auth_signing_alg_values_supported,
	// dpop_signing_alg_values_supported). Nil means HelseID's: RS, PS and
	// ES 256 to 512.
	AssertionAlgs, DPoPAlgs []jose.SignatureAlgorithm
	// KeyLifetime is how long a registered client key stays valid, as
	// Selvbetjening gives each key an expiration (default KeyLifetime).
	// An expired key no longer authenticates its client.
	KeyLifetime time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger gets one line per request, never a token or assertion.
	Logger *slog.Logger
}

// Server is a development STS. It is NOT for production: clients, keys and
// replay caches live in memory, and its signing key is made at start.
type Server struct {
	cfg     Config
	key     *ecdsa.PrivateKey
	kid     string
	secret  []byte
	mux     *http.ServeMux
	mu      sync.Mutex
	clients map[string]*client
	seen    map[string]time.Time // jti → expiry, for assertions and proofs
	issued  int
	// The fake Selvbetjening API's bookkeeping.
	uploads int
}

type client struct {
	keys    []jose.JSONWebKey
	expires []time.Time // per key
	scopes  []string
}

// New makes a server. Register clients before serving.
func New(cfg Config) (*Server, error) {
	if cfg.Skew == 0 {
		cfg.Skew = 10 * time.Second
	}
	if cfg.MaxAssertionLifetime == 0 {
		cfg.MaxAssertionLifetime = 60 * time.Second
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AssertionAlgs == nil {
		cfg.AssertionAlgs = allowedAlgs
	}
	if cfg.DPoPAlgs == nil {
		cfg.DPoPAlgs = allowedAlgs
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kid, err := signer.Thumbprint(key.Public())
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, key: key, kid: kid, secret: secret, mux: http.NewServeMux(),
		clients: map[string]*client{}, seen: map[string]time.Time{}}
	s.mux.HandleFunc("GET "+DiscoveryPath, s.discovery)
	s.mux.HandleFunc("GET "+JWKSPath, s.jwks)
	s.mux.HandleFunc("POST "+TokenPath, s.token)
	s.mux.HandleFunc(TokenPath, func(w http.ResponseWriter, _ *http.Request) {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
	})
	s.mux.HandleFunc("GET "+DemoAPIPath+"{herId}", s.demo)
	return s, nil
}

// Handle mounts another handler on the server's mux, for fakes that share
// its issuer (for example a Selvbetjening API).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Issuer is the issuer URL.
func (s *Server) Issuer() string { return s.cfg.Issuer }

// SetIssuer sets the issuer URL once the listen address is known.
func (s *Server) SetIssuer(u string) { s.cfg.Issuer = strings.TrimRight(u, "/") }

// TokenEndpoint is the token endpoint URL.
func (s *Server) TokenEndpoint() string { return s.cfg.Issuer + TokenPath }

// TokensIssued counts access tokens issued so far.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// RegisterClient registers a client with its public keys (as uploaded to
// Selvbetjening) and the scopes it may ask for. Registering an id again
// replaces it.
func (s *Server) RegisterClient(id string, keys []jose.JSONWebKey, scopes []string) error {
	if id == "" {
		return errors.New("devsts: empty client id")
	}
	for i, k := range keys {
		if err := checkPublicJWK(k); err != nil {
			return fmt.Errorf("devsts: client %s key %d: %w", id, i, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &client{keys: slices.Clone(keys), scopes: slices.Clone(scopes)}
	for range keys {
		c.expires = append(c.expires, s.keyExpiry())
	}
	s.clients[id] = c
	return nil
}

// keyExpiry is when a key registered now expires.
func (s *Server) keyExpiry() time.Time {
	if s.cfg.KeyLifetime > 0 {
		return s.cfg.Now().Add(s.cfg.KeyLifetime)
	}
	return s.cfg.Now().Add(KeyLifetime)
}

// SetKeyExpiry changes when a client's registered key (by kid, the RFC
// 7638 thumbprint) expires, to try expiry monitoring and what happens
// after a key expires.
func (s *Server) SetKeyExpiry(id, kid string, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return fmt.Errorf("devsts: unknown client %q", id)
	}
	for i, k := range c.keys {
		if tp, _ := signer.Thumbprint(k.Key); tp == kid {
			c.expires[i] = t
			return nil
		}
	}
	return fmt.Errorf("devsts: client %s has no key %s", id, kid)
}

// AddClientKey registers one more public key for a client, as Selvbetjening
// allows several at once during a rotation.
func (s *Server) AddClientKey(id string, k jose.JSONWebKey) error {
	if err := checkPublicJWK(k); err != nil {
		return fmt.Errorf("devsts: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return fmt.Errorf("devsts: unknown client %q", id)
	}
	c.keys = append(c.keys, k)
	c.expires = append(c.expires, s.keyExpiry())
	return nil
}

// ClientKeys returns a client's registered public keys.
func (s *Server) ClientKeys(id string) []jose.JSONWebKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[id]; ok {
		return slices.Clone(c.keys)
	}
	return nil
}

func checkPublicJWK(k jose.JSONWebKey) error {
	if !k.Valid() {
		return errors.New("not a valid JWK")
	}
	if !k.IsPublic() {
		return errors.New("a private JWK was given; register the public key only")
	}
	return keystore.CheckPublicKey(k.Key)
}

func (s *Server) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.cfg.Issuer,
		"jwks_uri":                              s.cfg.Issuer + JWKSPath,
		"token_endpoint":                        s.cfg.Issuer + TokenPath,
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": algNames(s.cfg.AssertionAlgs),
		"dpop_signing_alg_values_supported":                algNames(s.cfg.DPoPAlgs),
		"scopes_supported":                                 []string{DemoScope},
	})
}

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.JWKS())
}

// JWKS is the server's own public key set, for checking its access tokens.
func (s *Server) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: s.key.Public(), KeyID: s.kid, Algorithm: string(jose.ES256), Use: "sig"}}}
}

// --- nonces: stateless, HMAC over a time window ---

const nonceWindow = 5 * time.Minute

func (s *Server) nonceAt(t time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.Unix()/int64(nonceWindow/time.Second)))
	m := hmac.New(sha256.New, s.secret)
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(append(b[:], m.Sum(nil)[:16]...))
}

// Nonce is the DPoP nonce the server hands out now.
func (s *Server) Nonce() string { return s.nonceAt(s.cfg.Now()) }

func (s *Server) nonceOK(n string) bool {
	now := s.cfg.Now()
	return n != "" && (hmac.Equal([]byte(n), []byte(s.nonceAt(now))) || hmac.Equal([]byte(n), []byte(s.nonceAt(now.Add(-nonceWindow)))))
}

// remember records a jti until exp; it reports false for a replay.
func (s *Server) remember(kind, jti string, until time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	for k, exp := range s.seen {
		if now.After(exp) {
			delete(s.seen, k)
		}
	}
	key := kind + ":" + jti
	if _, dup := s.seen[key]; dup {
		return false
	}
	s.seen[key] = until
	return true
}

// --- helpers ---

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// IsLoopback reports whether a listen address or host is on loopback.
func IsLoopback(hostport string) bool { return loopback.HostPort(hostport) }

// Start serves a new server on a free loopback port and returns it with a
// function that stops it.
func Start(cfg Config) (*Server, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	return Serve(ln, cfg)
}

// Serve serves a new server on ln, which must be a loopback listener.
func Serve(ln net.Listener, cfg Config) (*Server, func(), error) {
	if !IsLoopback(ln.Addr().String()) {
		ln.Close()
		return nil, nil, fmt.Errorf("devsts: refusing to listen on %s: the dev STS is for loopback only", ln.Addr())
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "http://" + ln.Addr().String()
	}
	s, err := New(cfg)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return s, func() { _ = hs.Close() }, nil
}

func algNames(algs []jose.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}
