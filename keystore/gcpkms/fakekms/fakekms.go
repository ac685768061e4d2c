// Package fakekms is an in-process Cloud KMS for tests and demos: the
// Cloud KMS REST API v1 (JSON over HTTP, as cloudkms.googleapis.com/v1
// speaks it) with real keys and real signatures, kept in memory, so
// Google's own REST client can talk to it. It can be told to misbehave —
// corrupt a CRC32C, answer for the wrong key, keep a version pending, fail
// with a status, hang — so every integrity check in the client is proven
// to fire.
package fakekms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwkctl/jwkctl/internal/ctxsleep"
	"github.com/jwkctl/jwkctl/internal/lazyre"
)

// Faults make the server misbehave; the zero value behaves.
type Faults struct {
	CorruptPEMCRC       bool // GetPublicKey: wrong pemCrc32c
	CorruptSignatureCRC bool // AsymmetricSign: wrong signatureCrc32c
	OmitPEMCRC          bool // GetPublicKey: no pemCrc32c
	OmitSignatureCRC    bool // AsymmetricSign: no signatureCrc32c
	UnverifiedDigest    bool // AsymmetricSign: verifiedDigestCrc32c (and verifiedDataCrc32c) false
	WrongName           bool // both: answer with another version's name
	// FailWith is a google.rpc.Code name ("UNAVAILABLE",
	// "PERMISSION_DENIED", …) every call fails with, as Google's error
	// body with the matching HTTP status; "" answers.
	FailWith string
	// PendingPolls is how many GetCryptoKeyVersion calls a new version
	// stays PENDING_GENERATION for.
	PendingPolls int
	// Delay holds every call this long (or until the caller gives up)
	// before answering: a KMS that hangs.
	Delay time.Duration
}

// Server is the fake KMS.
type Server struct {
	mu       sync.Mutex
	faults   Faults
	keys     map[string]*cryptoKey
	signRPCs atomic.Int64
	allRPCs  atomic.Int64
}

// The resources, in the REST API's JSON (proto3 JSON mapping: int64 as
// strings, bytes in base64, enums by name, defaults left out).

type versionTemplate struct {
	Algorithm       string `json:"algorithm,omitempty"`
	ProtectionLevel string `json:"protectionLevel,omitempty"`
}

type cryptoKeyJSON struct {
	Name            string           `json:"name,omitempty"`
	Purpose         string           `json:"purpose,omitempty"`
	CreateTime      string           `json:"createTime,omitempty"`
	VersionTemplate *versionTemplate `json:"versionTemplate,omitempty"`
}

type versionJSON struct {
	Name            string `json:"name,omitempty"`
	State           string `json:"state,omitempty"`
	ProtectionLevel string `json:"protectionLevel,omitempty"`
	Algorithm       string `json:"algorithm,omitempty"`
	CreateTime      string `json:"createTime,omitempty"`
	GenerateTime    string `json:"generateTime,omitempty"`
}

type cryptoKey struct {
	json     cryptoKeyJSON
	versions []*version
}

type version struct {
	json    versionJSON
	priv    crypto.Signer
	pending int
}

// New returns an empty fake.
func New() *Server { return &Server{keys: map[string]*cryptoKey{}} }

// SetFaults changes how the server misbehaves from now on.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// SignRPCs counts AsymmetricSign calls; AllRPCs counts every call.
func (s *Server) SignRPCs() int64 { return s.signRPCs.Load() }

// AllRPCs counts every call.
func (s *Server) AllRPCs() int64 { return s.allRPCs.Load() }

// Serve serves the fake on ln (which must be loopback) until the returned
// stop function is called.
func (s *Server) Serve(ln net.Listener) (stop func()) {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }
}

// Start serves a new fake on a free loopback port and returns it with its
// address (for keystore.Options.Endpoint) and a stop function.
func Start() (*Server, string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	s := New()
	return s, ln.Addr().String(), s.Serve(ln), nil
}

// apiError is an error answer: google.rpc.Status as the REST API sends it.
type apiError struct {
	status, message string
}

func errorf(status, format string, args ...any) *apiError {
	return &apiError{status: status, message: fmt.Sprintf(format, args...)}
}

// httpStatus is the HTTP status Google's API gateway answers a
// google.rpc.Code with.
var httpStatus = map[string]int{
	"CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404,
	"ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
	"ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503,
	"DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	code, ok := httpStatus[e.status]
	if !ok {
		code = 500
	}
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": e.message, "status": e.status}})
}

var (
	keyRingRe = lazyre.New(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+$`)
	keyRe     = lazyre.New(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$`)
	versionRe = lazyre.New(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+/cryptoKeyVersions/[0-9]+$`)
	keyIDRe   = lazyre.New(`^[a-zA-Z0-9_-]{1,63}$`)
)

// ServeHTTP routes /v1/… as the Cloud KMS REST API does.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		writeError(w, errorf("NOT_FOUND", "fakekms: no such path %s", r.URL.Path))
		return
	}
	name, verb, _ := strings.Cut(path, ":")
	resource, collection := name, ""
	if i := strings.LastIndex(name, "/"); i >= 0 {
		resource, collection = name[:i], name[i+1:]
	}
	var out any
	var err *apiError
	switch {
	case r.Method == http.MethodPost && verb == "" && collection == "cryptoKeys" && keyRingRe().MatchString(resource):
		out, err = s.call(r, false, func(f Faults, body []byte) (any, *apiError) {
			return s.createCryptoKey(f, resource, r.URL.Query().Get("cryptoKeyId"), body)
		})
	case r.Method == http.MethodGet && verb == "" && collection == "cryptoKeys" && keyRingRe().MatchString(resource):
		out, err = s.call(r, false, func(Faults, []byte) (any, *apiError) { return s.listCryptoKeys(resource, r) })
	case r.Method == http.MethodGet && verb == "" && keyRe().MatchString(name):
		out, err = s.call(r, false, func(Faults, []byte) (any, *apiError) { return s.getCryptoKey(name) })
	case r.Method == http.MethodPost && verb == "" && collection == "cryptoKeyVersions" && keyRe().MatchString(resource):
		out, err = s.call(r, false, func(f Faults, _ []byte) (any, *apiError) { return s.createCryptoKeyVersion(f, resource) })
	case r.Method == http.MethodGet && verb == "" && collection == "cryptoKeyVersions" && keyRe().MatchString(resource):
		out, err = s.call(r, false, func(Faults, []byte) (any, *apiError) { return s.listCryptoKeyVersions(resource, r) })
	case r.Method == http.MethodGet && verb == "" && versionRe().MatchString(name):
		out, err = s.call(r, false, func(Faults, []byte) (any, *apiError) { return s.getCryptoKeyVersion(name) })
	case r.Method == http.MethodGet && verb == "" && collection == "publicKey" && versionRe().MatchString(resource):
		out, err = s.call(r, false, func(f Faults, _ []byte) (any, *apiError) { return s.getPublicKey(f, resource) })
	case r.Method == http.MethodPost && verb == "asymmetricSign" && versionRe().MatchString(name):
		out, err = s.call(r, true, func(f Faults, body []byte) (any, *apiError) { return s.asymmetricSign(f, name, body) })
	case r.Method == http.MethodPost && verb == "destroy" && versionRe().MatchString(name):
		out, err = s.call(r, false, func(Faults, []byte) (any, *apiError) { return s.destroy(name) })
	case r.Method == http.MethodPatch && verb == "" && versionRe().MatchString(name):
		out, err = s.call(r, false, func(_ Faults, body []byte) (any, *apiError) {
			return s.updateCryptoKeyVersion(name, r.URL.Query().Get("updateMask"), body)
		})
	default:
		err = errorf("NOT_FOUND", "fakekms: %s %s is not a method the fake serves", r.Method, r.URL.Path)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// call counts the call, applies the faults and reads the body.
func (s *Server) call(r *http.Request, sign bool, h func(Faults, []byte) (any, *apiError)) (any, *apiError) {
	if sign {
		s.signRPCs.Add(1)
	}
	s.allRPCs.Add(1)
	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	if ctxsleep.Sleep(r.Context(), f.Delay) != nil {
		return nil, errorf("CANCELLED", "fakekms: the caller gave up")
	}
	if f.FailWith != "" {
		return nil, errorf(f.FailWith, "fakekms: injected %s", f.FailWith)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, errorf("INVALID_ARGUMENT", "fakekms: reading the request: %v", err)
	}
	return h(f, body)
}

// decode reads a request body strictly, as Google's JSON parser rejects
// unknown fields.
func decode(body []byte, v any) *apiError {
	if len(body) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf("INVALID_ARGUMENT", "Invalid JSON payload received. %v", err)
	}
	return nil
}

// crc is a CRC32C as the REST API writes an int64: a decimal string.
func crc(b []byte) string {
	return strconv.FormatInt(int64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))), 10)
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func (s *Server) version(name string) (*version, *apiError) {
	i := strings.Index(name, "/cryptoKeyVersions/")
	if i < 0 {
		return nil, errorf("INVALID_ARGUMENT", "not a version name: %s", name)
	}
	k, ok := s.keys[name[:i]]
	if !ok {
		return nil, errorf("NOT_FOUND", "%s not found.", name)
	}
	for _, v := range k.versions {
		if v.json.Name == name {
			return v, nil
		}
	}
	return nil, errorf("NOT_FOUND", "%s not found.", name)
}

func generate(a string) (crypto.Signer, *apiError) {
	var (
		priv crypto.Signer
		err  error
	)
	switch {
	case strings.HasPrefix(a, "RSA_SIGN_PSS_") || strings.HasPrefix(a, "RSA_SIGN_PKCS1_"):
		bits, _ := strconv.Atoi(strings.Split(a, "_")[3])
		if bits != 2048 && bits != 3072 && bits != 4096 {
			return nil, errorf("INVALID_ARGUMENT", "fakekms: algorithm %s not supported", a)
		}
		priv, err = rsa.GenerateKey(rand.Reader, bits)
	case a == "EC_SIGN_P256_SHA256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case a == "EC_SIGN_P384_SHA384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		return nil, errorf("INVALID_ARGUMENT", "fakekms: algorithm %q not supported", a)
	}
	if err != nil {
		return nil, errorf("INTERNAL", "fakekms: %v", err)
	}
	return priv, nil
}

func (s *Server) newVersion(k *cryptoKey, pending int) (*version, *apiError) {
	a := k.json.VersionTemplate.Algorithm
	priv, err := generate(a)
	if err != nil {
		return nil, err
	}
	v := &version{priv: priv, pending: pending, json: versionJSON{
		Name:            fmt.Sprintf("%s/cryptoKeyVersions/%d", k.json.Name, len(k.versions)+1),
		State:           "ENABLED",
		Algorithm:       a,
		ProtectionLevel: k.json.VersionTemplate.ProtectionLevel,
		CreateTime:      now(),
	}}
	if pending > 0 {
		v.json.State = "PENDING_GENERATION"
	} else {
		v.json.GenerateTime = v.json.CreateTime
	}
	k.versions = append(k.versions, v)
	return v, nil
}

// createCryptoKey makes the key and its first version. Like Cloud KMS, it
// answers the key without a primary version: asymmetric keys have none.
func (s *Server) createCryptoKey(f Faults, parent, id string, body []byte) (any, *apiError) {
	var in cryptoKeyJSON
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if !keyIDRe().MatchString(id) {
		return nil, errorf("INVALID_ARGUMENT", "fakekms: cryptoKeyId %q is not valid", id)
	}
	if in.Purpose != "ASYMMETRIC_SIGN" {
		return nil, errorf("INVALID_ARGUMENT", "fakekms: only ASYMMETRIC_SIGN keys")
	}
	if in.VersionTemplate == nil || in.VersionTemplate.Algorithm == "" {
		return nil, errorf("INVALID_ARGUMENT", "fakekms: versionTemplate.algorithm required")
	}
	tmpl := *in.VersionTemplate
	switch tmpl.ProtectionLevel {
	case "":
		tmpl.ProtectionLevel = "SOFTWARE"
	case "SOFTWARE", "HSM":
	default:
		return nil, errorf("INVALID_ARGUMENT", "fakekms: protection level %q not supported", tmpl.ProtectionLevel)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := parent + "/cryptoKeys/" + id
	if _, ok := s.keys[name]; ok {
		return nil, errorf("ALREADY_EXISTS", "%s already exists.", name)
	}
	k := &cryptoKey{json: cryptoKeyJSON{Name: name, Purpose: "ASYMMETRIC_SIGN", CreateTime: now(), VersionTemplate: &tmpl}}
	if _, err := s.newVersion(k, f.PendingPolls); err != nil {
		return nil, err
	}
	s.keys[name] = k
	return k.copy(), nil
}

// copy is the key's JSON, safe to encode after the lock is released.
func (k *cryptoKey) copy() cryptoKeyJSON {
	c := k.json
	t := *k.json.VersionTemplate
	c.VersionTemplate = &t
	return c
}

func (s *Server) createCryptoKeyVersion(f Faults, parent string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[parent]
	if !ok {
		return nil, errorf("NOT_FOUND", "%s not found.", parent)
	}
	v, err := s.newVersion(k, f.PendingPolls)
	if err != nil {
		return nil, err
	}
	return v.json, nil
}

func (s *Server) getCryptoKey(name string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[name]
	if !ok {
		return nil, errorf("NOT_FOUND", "%s not found.", name)
	}
	return k.copy(), nil
}

// getCryptoKeyVersion returns a version; a pending one advances one poll.
func (s *Server) getCryptoKeyVersion(name string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.version(name)
	if err != nil {
		return nil, err
	}
	if v.pending > 0 {
		v.pending--
		if v.pending == 0 {
			v.json.State, v.json.GenerateTime = "ENABLED", now()
		}
	}
	return v.json, nil
}

// page cuts a listing by pageSize and pageToken (the index to go on at),
// as the REST API pages.
func page(r *http.Request, n int) (from, to int, next string, err *apiError) {
	q := r.URL.Query()
	size := 25
	if ps := q.Get("pageSize"); ps != "" {
		v, perr := strconv.Atoi(ps)
		if perr != nil || v < 0 {
			return 0, 0, "", errorf("INVALID_ARGUMENT", "fakekms: pageSize %q", ps)
		}
		if v > 0 {
			size = min(v, 1000)
		}
	}
	if t := q.Get("pageToken"); t != "" {
		v, perr := strconv.Atoi(t)
		if perr != nil || v < 0 || v > n {
			return 0, 0, "", errorf("INVALID_ARGUMENT", "fakekms: invalid pageToken")
		}
		from = v
	}
	to = min(from+size, n)
	if to < n {
		next = strconv.Itoa(to)
	}
	return from, to, next, nil
}

// listCryptoKeys lists the keys of a key ring, a page at a time.
func (s *Server) listCryptoKeys(parent string, r *http.Request) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []cryptoKeyJSON{}
	for name, k := range s.keys {
		if strings.HasPrefix(name, parent+"/cryptoKeys/") {
			out = append(out, k.copy())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	from, to, next, err := page(r, len(out))
	if err != nil {
		return nil, err
	}
	type list struct {
		CryptoKeys    []cryptoKeyJSON `json:"cryptoKeys,omitempty"`
		NextPageToken string          `json:"nextPageToken,omitempty"`
		TotalSize     int             `json:"totalSize,omitempty"`
	}
	return list{CryptoKeys: out[from:to], NextPageToken: next, TotalSize: len(out)}, nil
}

// listCryptoKeyVersions lists a key's versions, a page at a time.
func (s *Server) listCryptoKeyVersions(parent string, r *http.Request) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[parent]
	if !ok {
		return nil, errorf("NOT_FOUND", "%s not found.", parent)
	}
	var out []versionJSON
	for _, v := range k.versions {
		out = append(out, v.json)
	}
	from, to, next, err := page(r, len(out))
	if err != nil {
		return nil, err
	}
	type list struct {
		CryptoKeyVersions []versionJSON `json:"cryptoKeyVersions,omitempty"`
		NextPageToken     string        `json:"nextPageToken,omitempty"`
		TotalSize         int           `json:"totalSize,omitempty"`
	}
	return list{CryptoKeyVersions: out[from:to], NextPageToken: next, TotalSize: len(out)}, nil
}

type publicKeyJSON struct {
	Pem             string `json:"pem"`
	Algorithm       string `json:"algorithm"`
	PemCrc32c       string `json:"pemCrc32c,omitempty"`
	Name            string `json:"name"`
	ProtectionLevel string `json:"protectionLevel"`
}

// getPublicKey returns the PEM public key with its CRC32C.
func (s *Server) getPublicKey(f Faults, name string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.version(name)
	if err != nil {
		return nil, err
	}
	if v.json.State != "ENABLED" {
		return nil, errorf("FAILED_PRECONDITION", "%s is not in state ENABLED, current state is %s.", name, v.json.State)
	}
	der, merr := x509.MarshalPKIXPublicKey(v.priv.Public())
	if merr != nil {
		return nil, errorf("INTERNAL", "%v", merr)
	}
	p := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	out := publicKeyJSON{Pem: p, PemCrc32c: crc([]byte(p)), Algorithm: v.json.Algorithm, Name: v.json.Name, ProtectionLevel: v.json.ProtectionLevel}
	if f.CorruptPEMCRC {
		out.PemCrc32c = crc([]byte(p + " "))
	}
	if f.OmitPEMCRC {
		out.PemCrc32c = ""
	}
	if f.WrongName {
		out.Name += "0"
	}
	return out, nil
}

type signRequest struct {
	Digest *struct {
		Sha256 []byte `json:"sha256"`
		Sha384 []byte `json:"sha384"`
		Sha512 []byte `json:"sha512"`
	} `json:"digest"`
	DigestCrc32c *int64Field `json:"digestCrc32c"`
	Data         []byte      `json:"data"`
	DataCrc32c   *int64Field `json:"dataCrc32c"`
}

type signResponse struct {
	Signature            []byte `json:"signature"`
	SignatureCrc32c      string `json:"signatureCrc32c,omitempty"`
	VerifiedDigestCrc32c bool   `json:"verifiedDigestCrc32c,omitempty"`
	VerifiedDataCrc32c   bool   `json:"verifiedDataCrc32c,omitempty"`
	Name                 string `json:"name"`
	ProtectionLevel      string `json:"protectionLevel"`
}

// int64Field is an int64 in proto3 JSON: a decimal string, or a number.
type int64Field string

func (f *int64Field) UnmarshalJSON(b []byte) error {
	s := string(b)
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return fmt.Errorf("invalid value for int64: %.40s", b)
	}
	*f = int64Field(s)
	return nil
}

// crcField reads a CRC32C field: "" when absent.
func crcField(f *int64Field) (string, *apiError) {
	if f == nil {
		return "", nil
	}
	v, _ := strconv.ParseInt(string(*f), 10, 64)
	if v < 0 || v > 0xffffffff {
		return "", errorf("INVALID_ARGUMENT", "fakekms: a CRC32C must be an unsigned 32-bit integer, not %s", string(*f))
	}
	return strconv.FormatInt(v, 10), nil
}

// asymmetricSign signs a digest (or data, hashed as the algorithm says),
// checking its CRC32C as KMS does.
func (s *Server) asymmetricSign(f Faults, name string, body []byte) (any, *apiError) {
	var in signRequest
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	v, err := s.version(name)
	var vj versionJSON
	if err == nil {
		vj = v.json // read under the lock; an update may change the state
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if vj.State != "ENABLED" {
		return nil, errorf("FAILED_PRECONDITION", "%s is not in state ENABLED, current state is %s.", name, vj.State)
	}
	h := crypto.SHA256
	switch {
	case strings.HasSuffix(vj.Algorithm, "_SHA384"):
		h = crypto.SHA384
	case strings.HasSuffix(vj.Algorithm, "_SHA512"):
		h = crypto.SHA512
	}
	var digest []byte
	out := signResponse{Name: vj.Name, ProtectionLevel: vj.ProtectionLevel}
	switch {
	case in.Digest != nil && in.Data != nil:
		return nil, errorf("INVALID_ARGUMENT", "fakekms: give digest or data, not both")
	case in.Digest != nil:
		var got crypto.Hash
		n := 0
		for _, d := range []struct {
			b []byte
			h crypto.Hash
		}{{in.Digest.Sha256, crypto.SHA256}, {in.Digest.Sha384, crypto.SHA384}, {in.Digest.Sha512, crypto.SHA512}} {
			if d.b != nil {
				digest, got = d.b, d.h
				n++
			}
		}
		if n != 1 || got != h || len(digest) != h.Size() {
			return nil, errorf("INVALID_ARGUMENT", "fakekms: %s signs one %v digest", vj.Algorithm, h)
		}
		want, cerr := crcField(in.DigestCrc32c)
		if cerr != nil {
			return nil, cerr
		}
		if want != "" && want != crc(digest) {
			return nil, errorf("INVALID_ARGUMENT", "The checksum in field digest_crc32c did not match the data in field digest.")
		}
		out.VerifiedDigestCrc32c = want != ""
	case in.Data != nil:
		want, cerr := crcField(in.DataCrc32c)
		if cerr != nil {
			return nil, cerr
		}
		if want != "" && want != crc(in.Data) {
			return nil, errorf("INVALID_ARGUMENT", "The checksum in field data_crc32c did not match the data in field data.")
		}
		out.VerifiedDataCrc32c = want != ""
		hh := h.New()
		hh.Write(in.Data)
		digest = hh.Sum(nil)
	default:
		return nil, errorf("INVALID_ARGUMENT", "fakekms: digest or data required")
	}
	var opts crypto.SignerOpts = h
	if strings.HasPrefix(vj.Algorithm, "RSA_SIGN_PSS_") {
		opts = &rsa.PSSOptions{SaltLength: h.Size(), Hash: h}
	}
	sig, serr := v.priv.Sign(rand.Reader, digest, opts)
	if serr != nil {
		return nil, errorf("INTERNAL", "%v", serr)
	}
	out.Signature, out.SignatureCrc32c = sig, crc(sig)
	if f.CorruptSignatureCRC {
		out.SignatureCrc32c = crc(append([]byte{0}, sig...))
	}
	if f.OmitSignatureCRC {
		out.SignatureCrc32c = ""
	}
	if f.UnverifiedDigest {
		out.VerifiedDigestCrc32c, out.VerifiedDataCrc32c = false, false
	}
	if f.WrongName {
		out.Name += "0"
	}
	return out, nil
}

// destroy schedules destruction. As in Cloud KMS, only an ENABLED or
// DISABLED version can be destroyed: one already DESTROY_SCHEDULED or
// DESTROYED (or still being generated) is refused with
// FAILED_PRECONDITION.
func (s *Server) destroy(name string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.version(name)
	if err != nil {
		return nil, err
	}
	if st := v.json.State; st != "ENABLED" && st != "DISABLED" {
		return nil, errorf("FAILED_PRECONDITION", "%s is not in state ENABLED or DISABLED (it is %s)", name, st)
	}
	v.json.State = "DESTROY_SCHEDULED"
	return v.json, nil
}

// updateCryptoKeyVersion switches a version between ENABLED and DISABLED,
// the only update KMS allows on a version's state.
func (s *Server) updateCryptoKeyVersion(name, mask string, body []byte) (any, *apiError) {
	if mask != "state" {
		return nil, errorf("INVALID_ARGUMENT", "fakekms: only updateMask=state is supported, got %q", mask)
	}
	var in versionJSON
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Name != "" && in.Name != name {
		return nil, errorf("INVALID_ARGUMENT", "fakekms: the body names %s, the path %s", in.Name, name)
	}
	if in.State != "ENABLED" && in.State != "DISABLED" {
		return nil, errorf("INVALID_ARGUMENT", "state can only be set to ENABLED or DISABLED, not %q", in.State)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.version(name)
	if err != nil {
		return nil, err
	}
	if st := v.json.State; st != "ENABLED" && st != "DISABLED" {
		return nil, errorf("FAILED_PRECONDITION", "%s is %s", name, st)
	}
	v.json.State = in.State
	return v.json, nil
}
