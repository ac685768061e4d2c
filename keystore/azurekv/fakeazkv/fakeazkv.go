// Package fakeazkv is an in-process fake of the Azure Key Vault keys REST
// API, for tests and demos: an https server on loopback with its own test
// CA, which answers the azkeys SDK as Key Vault does — the authentication
// challenge first, then bearer-token requests with an api-version — and
// keeps RSA and EC keys in memory, signing with real crypto. Faults
// (throttling, missing permissions, answers about another key) are
// injected with SetFaults.
//
//	s, err := fakeazkv.Start()
//	b.HTTPClient = s.Client() // trusts the fake's CA, dials the fake for any host
//	opts := keystore.Options{Endpoint: s.URL()}
package fakeazkv

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwkctl/jwkctl/internal/ctxsleep"
)

// Token is the bearer token the fake accepts: the one the azurekv backend
// sends to a loopback endpoint override (azurekv.LoopbackToken).
const Token = "jwkctl-loopback-test-token"

// Tenant is the tenant the fake's authentication challenge names.
const Tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"

// APIVersions are the api-version values the fake answers.
var APIVersions = []string{"7.4", "7.5", "7.6", "2025-07-01"}

// RecoverableDays is the soft-delete retention the fake reports.
const RecoverableDays = 90

// Faults make the fake misbehave like Key Vault can.
type Faults struct {
	// Throttle answers the next Throttle authenticated requests with 429
	// Too Many Requests and a Retry-After of RetryAfter.
	Throttle   int
	RetryAfter time.Duration
	// Forbid refuses every request of one operation ("get", "list",
	// "sign", "create", "update", "delete") with 403, naming the RBAC
	// action that is missing, as Key Vault does.
	Forbid string
	// WrongKID makes answers name another key.
	WrongKID bool
	// SignDelay holds every sign request this long (or until the caller
	// gives up) before answering: a vault that hangs.
	SignDelay time.Duration
}

// Server is the fake vault. It is safe for concurrent use.
type Server struct {
	mu      sync.Mutex
	keys    map[string]*key // by lower-case name
	deleted map[string]*key
	faults  Faults
	counts  map[string]int64
	// PageSize is how many keys a list page holds (small, so paging is
	// exercised).
	PageSize int

	requests, challenges atomic.Int64
	srv                  *httptest.Server
	pool                 *x509.CertPool
	caPEM                []byte
}

type key struct {
	name     string
	versions []*version
	tags     map[string]string
}

type version struct {
	id      string
	kty     string
	priv    crypto.Signer
	ops     []string
	enabled bool
	created time.Time
	updated time.Time
}

// Start starts the fake on 127.0.0.1 with a fresh test CA.
func Start() (*Server, error) { return Serve(nil) }

// Serve starts the fake on ln (nil: a new port on 127.0.0.1) with a fresh
// test CA; Close stops it and closes ln.
func Serve(ln net.Listener) (*Server, error) {
	s := &Server{keys: map[string]*key{}, deleted: map[string]*key{}, counts: map[string]int64{}, PageSize: 2}
	cert, err := s.makeCerts()
	if err != nil {
		return nil, err
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if ln != nil {
		s.srv.Listener.Close()
		s.srv.Listener = ln
	}
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	return s, nil
}

// makeCerts makes a CA and a server certificate for loopback and every
// vault and Managed HSM host, so requests to real vault names can be
// routed to the fake.
func (s *Server) makeCerts() (tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fakeazkv test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	ca, _ = x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "fakeazkv"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "*.vault.azure.net", "*.managedhsm.azure.net"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	s.pool = x509.NewCertPool()
	s.pool.AddCert(ca)
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}, nil
}

// URL is the fake's base URL, https://127.0.0.1:PORT.
func (s *Server) URL() string { return s.srv.URL }

// CAPEM is the test CA's certificate, PEM (for SSL_CERT_FILE).
func (s *Server) CAPEM() []byte { return s.caPEM }

// Client returns an HTTP client that trusts the fake's CA and sends every
// request to the fake, whatever host it names (myvault.vault.azure.net
// included), and through no proxy.
func (s *Server) Client() *http.Client {
	addr := s.srv.Listener.Addr().String()
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetFaults replaces the faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Count is how many authenticated requests of an operation ("get",
// "list", "sign", "create", "update", "delete") reached the fake,
// throttled and refused ones included.
func (s *Server) Count(op string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

// Requests is how many HTTP requests reached the fake, the
// unauthenticated challenge requests included.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Challenges is how many requests came without a token and were answered
// with the authentication challenge.
func (s *Server) Challenges() int64 { return s.challenges.Load() }

// AddKey puts a key made outside jwkctl into the vault, with the given
// key operations (a key that may not sign, for example). kty is RSA or EC.
func (s *Server) AddKey(name, kty string, ops []string) error {
	v, err := newVersion(kty, 2048, "P-256")
	if err != nil {
		return err
	}
	v.ops = ops
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[strings.ToLower(name)]
	if k == nil {
		k = &key{name: name, tags: map[string]string{}}
		s.keys[strings.ToLower(name)] = k
	}
	k.versions = append(k.versions, v)
	return nil
}

func newVersion(kty string, size int, crv string) (*version, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	now := time.Now().Truncate(time.Second)
	v := &version{id: hex.EncodeToString(id), kty: kty, enabled: true, created: now, updated: now}
	var err error
	switch kty {
	case "RSA", "RSA-HSM":
		v.priv, err = rsa.GenerateKey(rand.Reader, size)
	case "EC", "EC-HSM":
		c := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[crv]
		if c == nil {
			return nil, fmt.Errorf("unknown curve %q", crv)
		}
		v.priv, err = ecdsa.GenerateKey(c, rand.Reader)
	default:
		return nil, fmt.Errorf("unknown kty %q", kty)
	}
	return v, err
}

// --- HTTP ---

type kvErr struct {
	status       int
	code, inner  string
	msg          string
	extraHeaders map[string]string
}

func writeErr(w http.ResponseWriter, e kvErr) {
	for k, v := range e.extraHeaders {
		w.Header().Set(k, v)
	}
	body := map[string]any{"code": e.code, "message": e.msg}
	if e.inner != "" {
		body["innererror"] = map[string]any{"code": e.inner}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(v)
}

// rbacAction is the data action Key Vault names when RBAC refuses op.
var rbacAction = map[string]string{
	"get": "Microsoft.KeyVault/vaults/keys/read", "list": "Microsoft.KeyVault/vaults/keys/read",
	"sign": "Microsoft.KeyVault/vaults/keys/sign/action", "create": "Microsoft.KeyVault/vaults/keys/create/action",
	"update": "Microsoft.KeyVault/vaults/keys/update/action", "delete": "Microsoft.KeyVault/vaults/keys/delete",
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	resource := "https://vault.azure.net"
	if strings.Contains(r.Host, ".managedhsm.") {
		resource = "https://managedhsm.azure.net"
	}
	challenge := `Bearer authorization="https://login.microsoftonline.com/` + Tenant + `", resource="` + resource + `"`
	av := r.URL.Query().Get("api-version")
	if !slices.Contains(APIVersions, av) {
		writeErr(w, kvErr{status: 400, code: "BadParameter", msg: fmt.Sprintf("The specified version (%s) is not recognized. Consider using the latest supported version (%s).", av, APIVersions[len(APIVersions)-1])})
		return
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		s.challenges.Add(1)
		writeErr(w, kvErr{status: 401, code: "Unauthorized", msg: "AKV10000: Request is missing a Bearer or PoP token.", extraHeaders: map[string]string{"WWW-Authenticate": challenge}})
		return
	}
	if auth != "Bearer "+Token {
		writeErr(w, kvErr{status: 401, code: "Unauthorized", msg: "AKV10032: Invalid issuer.", extraHeaders: map[string]string{"WWW-Authenticate": challenge}})
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	op, name, ver := route(r.Method, parts)
	if op == "" {
		writeErr(w, kvErr{status: 400, code: "BadParameter", msg: "The request URI is not valid: " + r.Method + " " + r.URL.Path})
		return
	}
	s.mu.Lock()
	delay := s.faults.SignDelay
	s.mu.Unlock()
	if op == "sign" && ctxsleep.Sleep(r.Context(), delay) != nil {
		return // the caller gave up
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[op]++
	if s.faults.Throttle > 0 {
		s.faults.Throttle--
		h := map[string]string{"Retry-After": strconv.Itoa(int((s.faults.RetryAfter + time.Second - 1) / time.Second))}
		if s.faults.RetryAfter < time.Second {
			h["retry-after-ms"] = strconv.Itoa(int(s.faults.RetryAfter / time.Millisecond))
		}
		writeErr(w, kvErr{status: 429, code: "Throttled", msg: "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached", extraHeaders: h})
		return
	}
	if s.faults.Forbid == op {
		writeErr(w, kvErr{status: 403, code: "Forbidden", inner: "ForbiddenByRbac",
			msg: "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n" +
				"Caller: appid=00000000-0000-0000-0000-000000000001;oid=00000000-0000-0000-0000-000000000002\r\nAction: '" + rbacAction[op] + "'\r\n" +
				"Resource: '/subscriptions/…/resourcegroups/jwkctl/providers/microsoft.keyvault/vaults/fake'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC'\r\n"})
		return
	}
	host := "https://" + r.Host
	switch op {
	case "create":
		s.create(w, r, host, name)
	case "get":
		s.get(w, host, name, ver)
	case "sign":
		s.sign(w, r, host, name, ver)
	case "update":
		s.update(w, r, host, name, ver)
	case "delete":
		s.delete(w, host, name)
	case "list":
		s.list(w, r, host, name)
	}
}

// route names the operation of a request, and its key and version.
func route(method string, p []string) (op, name, ver string) {
	switch {
	case len(p) == 1 && p[0] == "keys" && method == http.MethodGet:
		return "list", "", ""
	case len(p) < 2 || p[0] != "keys":
		return "", "", ""
	case len(p) == 3 && p[2] == "create" && method == http.MethodPost:
		return "create", p[1], ""
	case len(p) == 3 && p[2] == "versions" && method == http.MethodGet:
		return "list", p[1], ""
	case len(p) == 4 && p[3] == "sign" && method == http.MethodPost:
		return "sign", p[1], p[2]
	case len(p) <= 3:
		if len(p) == 3 {
			ver = p[2]
		}
		switch method {
		case http.MethodGet:
			return "get", p[1], ver
		case http.MethodPatch:
			return "update", p[1], ver
		case http.MethodDelete:
			if len(p) == 2 {
				return "delete", p[1], ""
			}
		}
	}
	return "", "", ""
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// kid is the key's identifier as Key Vault writes it, or another key's
// when the WrongKID fault is on.
func (s *Server) kid(host, name, ver string) string {
	if s.faults.WrongKID {
		name += "-other"
	}
	if ver == "" {
		return host + "/keys/" + name
	}
	return host + "/keys/" + name + "/" + ver
}

func (s *Server) jwk(host string, k *key, v *version) map[string]any {
	j := map[string]any{"kid": s.kid(host, k.name, v.id), "kty": v.kty, "key_ops": v.ops}
	switch p := v.priv.Public().(type) {
	case *rsa.PublicKey:
		j["n"], j["e"] = b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, _ := p.Bytes()
		size := (len(raw) - 1) / 2
		j["crv"], j["x"], j["y"] = p.Curve.Params().Name, b64(raw[1:1+size]), b64(raw[1+size:])
	}
	return j
}

func attrs(v *version) map[string]any {
	return map[string]any{"enabled": v.enabled, "created": v.created.Unix(), "updated": v.updated.Unix(),
		"recoveryLevel": "Recoverable+Purgeable", "recoverableDays": RecoverableDays, "exportable": false}
}

func (s *Server) bundle(host string, k *key, v *version) map[string]any {
	return map[string]any{"key": s.jwk(host, k, v), "attributes": attrs(v), "tags": k.tags}
}

func notFound(w http.ResponseWriter, name string) {
	writeErr(w, kvErr{status: 404, code: "KeyNotFound", msg: fmt.Sprintf("A key with (name/id) %s was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command.", name)})
}

func disabled(w http.ResponseWriter, op string) {
	writeErr(w, kvErr{status: 403, code: "Forbidden", inner: "KeyDisabled", msg: fmt.Sprintf("Operation %s is not allowed on a disabled key.", op)})
}

// find returns a key's version ("" = the current one, the newest).
func (s *Server) find(name, ver string) (*key, *version) {
	k := s.keys[strings.ToLower(name)]
	if k == nil || len(k.versions) == 0 {
		return nil, nil
	}
	if ver == "" {
		return k, k.versions[len(k.versions)-1]
	}
	for _, v := range k.versions {
		if strings.EqualFold(v.id, ver) {
			return k, v
		}
	}
	return k, nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, host, name string) {
	var req struct {
		Kty     string   `json:"kty"`
		KeySize int      `json:"key_size"`
		Crv     string   `json:"crv"`
		KeyOps  []string `json:"key_ops"`
		Attrs   *struct {
			Enabled    *bool `json:"enabled"`
			Exportable *bool `json:"exportable"`
		} `json:"attributes"`
		Tags map[string]string `json:"tags"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, kvErr{status: 400, code: "BadParameter", msg: "The request body is not valid JSON."})
		return
	}
	if s.deleted[strings.ToLower(name)] != nil {
		writeErr(w, kvErr{status: 409, code: "Conflict", inner: "ObjectIsDeletedButRecoverable", msg: fmt.Sprintf("Key %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.", name)})
		return
	}
	if req.Attrs != nil && req.Attrs.Exportable != nil && *req.Attrs.Exportable {
		writeErr(w, kvErr{status: 400, code: "BadParameter", msg: "Exportable keys must have a release policy."})
		return
	}
	switch {
	case (req.Kty == "RSA" || req.Kty == "RSA-HSM") && (req.KeySize == 2048 || req.KeySize == 3072 || req.KeySize == 4096):
	case (req.Kty == "EC" || req.Kty == "EC-HSM") && slices.Contains([]string{"P-256", "P-384", "P-521"}, req.Crv):
	default:
		writeErr(w, kvErr{status: 400, code: "BadParameter", msg: fmt.Sprintf("Invalid key type %q, size %d or curve %q.", req.Kty, req.KeySize, req.Crv)})
		return
	}
	v, err := newVersion(req.Kty, req.KeySize, req.Crv)
	if err != nil {
		writeErr(w, kvErr{status: 500, code: "InternalError", msg: err.Error()})
		return
	}
	v.ops = req.KeyOps
	if req.Attrs != nil && req.Attrs.Enabled != nil {
		v.enabled = *req.Attrs.Enabled
	}
	// As in Key Vault, creating an existing name adds a version.
	k := s.keys[strings.ToLower(name)]
	if k == nil {
		k = &key{name: name}
		s.keys[strings.ToLower(name)] = k
	}
	if req.Tags != nil {
		k.tags = req.Tags
	}
	k.versions = append(k.versions, v)
	writeJSON(w, s.bundle(host, k, v))
}

func (s *Server) get(w http.ResponseWriter, host, name, ver string) {
	k, v := s.find(name, ver)
	if v == nil {
		notFound(w, name)
		return
	}
	if !v.enabled {
		disabled(w, "get")
		return
	}
	writeJSON(w, s.bundle(host, k, v))
}

func (s *Server) sign(w http.ResponseWriter, r *http.Request, host, name, ver string) {
	var req struct {
		Alg   string `json:"alg"`
		Value string `json:"value"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, kvErr{status: 400, code: "BadParameter", msg: "The request body is not valid JSON."})
		return
	}
	k, v := s.find(name, ver)
	if v == nil {
		notFound(w, name)
		return
	}
	if !v.enabled {
		disabled(w, "sign")
		return
	}
	if !slices.Contains(v.ops, "sign") {
		writeErr(w, kvErr{status: 400, code: "BadParameter", msg: "Operation sign is not permitted by the key's key_ops."})
		return
	}
	digest, err := unb64(req.Value)
	if err != nil {
		writeErr(w, kvErr{status: 400, code: "BadParameter", msg: "value is not base64url."})
		return
	}
	h := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}[strings.TrimLeft(req.Alg, "PRSE")]
	if h == 0 || len(digest) != h.Size() {
		writeErr(w, kvErr{status: 400, code: "BadParameter", msg: fmt.Sprintf("Invalid digest length or algorithm %q.", req.Alg)})
		return
	}
	var sig []byte
	switch p := v.priv.(type) {
	case *rsa.PrivateKey:
		switch req.Alg[:2] {
		case "PS":
			sig, err = rsa.SignPSS(rand.Reader, p, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		case "RS":
			sig, err = rsa.SignPKCS1v15(rand.Reader, p, h, digest)
		default:
			err = fmt.Errorf("algorithm %s does not fit an RSA key", req.Alg)
		}
	case *ecdsa.PrivateKey:
		want := map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[p.Curve.Params().Name]
		if req.Alg != want {
			err = fmt.Errorf("algorithm %s does not fit a %s key", req.Alg, p.Curve.Params().Name)
			break
		}
		var rr, ss *big.Int
		rr, ss, err = ecdsa.Sign(rand.Reader, p, digest)
		if err == nil {
			size := (p.Curve.Params().BitSize + 7) / 8
			sig = make([]byte, 2*size)
			rr.FillBytes(sig[:size])
			ss.FillBytes(sig[size:])
		}
	}
	if err != nil {
		writeErr(w, kvErr{status: 400, code: "BadParameter", msg: err.Error()})
		return
	}
	writeJSON(w, map[string]any{"kid": s.kid(host, k.name, v.id), "value": b64(sig)})
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, host, name, ver string) {
	var req struct {
		Attrs *struct {
			Enabled *bool `json:"enabled"`
		} `json:"attributes"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, kvErr{status: 400, code: "BadParameter", msg: "The request body is not valid JSON."})
		return
	}
	k, v := s.find(name, ver)
	if v == nil {
		notFound(w, name)
		return
	}
	if req.Attrs != nil && req.Attrs.Enabled != nil {
		v.enabled = *req.Attrs.Enabled
		v.updated = time.Now().Truncate(time.Second)
	}
	writeJSON(w, s.bundle(host, k, v))
}

func (s *Server) delete(w http.ResponseWriter, host, name string) {
	k, v := s.find(name, "")
	if v == nil {
		notFound(w, name)
		return
	}
	delete(s.keys, strings.ToLower(name))
	s.deleted[strings.ToLower(name)] = k
	now := time.Now()
	b := s.bundle(host, k, v)
	b["recoveryId"] = host + "/deletedkeys/" + k.name
	b["deletedDate"] = now.Unix()
	b["scheduledPurgeDate"] = now.Add(RecoverableDays * 24 * time.Hour).Unix()
	writeJSON(w, b)
}

// list answers a page of keys (name "") or of a key's versions, with a
// nextLink while more remain.
func (s *Server) list(w http.ResponseWriter, r *http.Request, host, name string) {
	type item struct {
		KID   string            `json:"kid"`
		Attrs map[string]any    `json:"attributes"`
		Tags  map[string]string `json:"tags,omitempty"`
	}
	var all []item
	if name == "" {
		var names []string
		for n := range s.keys {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			k := s.keys[n]
			all = append(all, item{s.kid(host, k.name, ""), attrs(k.versions[len(k.versions)-1]), k.tags})
		}
	} else {
		k := s.keys[strings.ToLower(name)]
		if k == nil {
			// Key Vault lists no versions of a missing key.
			writeJSON(w, map[string]any{"value": []item{}})
			return
		}
		for _, v := range k.versions {
			all = append(all, item{s.kid(host, k.name, v.id), attrs(v), k.tags})
		}
	}
	skip, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	if skip < 0 || skip > len(all) {
		skip = len(all)
	}
	end := min(skip+max(s.PageSize, 1), len(all))
	out := map[string]any{"value": all[skip:end]}
	if end < len(all) {
		q := r.URL.Query()
		q.Set("$skiptoken", strconv.Itoa(end))
		out["nextLink"] = host + r.URL.Path + "?" + q.Encode()
	} else {
		out["nextLink"] = nil
	}
	writeJSON(w, out)
}
