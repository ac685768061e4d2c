// Package fakeawskms is an in-process AWS KMS for tests and demos: the
// KMS wire protocol (AWS JSON 1.1 over HTTP, X-Amz-Target:
// TrentService.Sign and so on) with real keys and real signatures, kept in
// memory, so the real AWS SDK can talk to it. Keys live per region (the
// region of the request's SigV4 credential scope), as in AWS. It can be
// told to fail — throttle, deny an action, refuse an alias — so every
// error path of the client is proven.
package fakeawskms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jwkctl/jwkctl/internal/ctxsleep"
	"github.com/jwkctl/jwkctl/internal/lazyre"
)

// Account is the account ID in every ARN the fake makes.
const Account = "111122223333"

// Faults make the server misbehave; the zero value behaves.
type Faults struct {
	// FailWith is an AWS error code (AccessDeniedException,
	// KMSInternalException, …) every call of the operations in Ops (all
	// operations when Ops is empty) fails with.
	FailWith string
	Ops      []string
	// Throttle is how many calls (of Ops, or any) fail with
	// ThrottlingException before the fake answers again.
	Throttle int
	// WrongKeyID makes Sign answer with another key's ARN.
	WrongKeyID bool
	// SignDelay holds every Sign this long (or until the caller gives
	// up) before answering: a KMS that hangs.
	SignDelay time.Duration
}

// Server is the fake KMS.
type Server struct {
	mu      sync.Mutex
	faults  Faults
	keys    map[string]*key   // by ARN
	aliases map[string]string // alias ARN → key ARN
	calls   map[string]int    // by operation
	now     func() time.Time
}

type key struct {
	arn, id, region string
	spec, usage     string
	state           string
	description     string
	tags            []map[string]string
	deletion        time.Time
	created         time.Time
	priv            crypto.Signer
}

// New returns an empty fake.
func New() *Server {
	return &Server{keys: map[string]*key{}, aliases: map[string]string{}, calls: map[string]int{}, now: time.Now}
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

// Serve serves the fake on ln (which must be loopback) until the returned
// stop function is called.
func (s *Server) Serve(ln net.Listener) (stop func()) {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }
}

// SetFaults changes how the server misbehaves from now on.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Calls counts the calls of one operation ("Sign", "GetPublicKey", …),
// failed ones included.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// AllCalls counts every call.
func (s *Server) AllCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

// KeyState is the state of the key an ARN names ("" if none).
func (s *Server) KeyState(arn string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[arn]; ok {
		return k.state
	}
	return ""
}

// Keys lists the ARNs of every key, in every region.
func (s *Server) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for arn := range s.keys {
		out = append(out, arn)
	}
	sort.Strings(out)
	return out
}

type apiError struct {
	code, msg string
	status    int
}

func errf(code, format string, a ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, a...), status: http.StatusBadRequest}
}

var scopeRe = lazyre.New(`Credential=[^/]+/[0-9]{8}/([a-z0-9-]+)/kms/aws4_request`)

// ServeHTTP answers one KMS call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if r.Method != http.MethodPost || !ok {
		writeErr(w, &apiError{code: "UnknownOperationException", msg: "not a KMS call", status: http.StatusBadRequest})
		return
	}
	m := scopeRe().FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		writeErr(w, errf("MissingAuthenticationTokenException", "Missing Authentication Token"))
		return
	}
	region := m[1]
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeErr(w, errf("SerializationException", "%v", err))
		return
	}
	s.mu.Lock()
	delay := s.faults.SignDelay
	s.mu.Unlock()
	if op == "Sign" && ctxsleep.Sleep(r.Context(), delay) != nil {
		return // the caller gave up
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	if aerr := s.injected(op); aerr != nil {
		writeErr(w, aerr)
		return
	}
	h, ok := handlers[op]
	if !ok {
		writeErr(w, errf("UnsupportedOperationException", "fakeawskms does not implement %s", op))
		return
	}
	out, aerr := h(s, region, body)
	if aerr != nil {
		writeErr(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) injected(op string) *apiError {
	f := &s.faults
	if len(f.Ops) > 0 && !contains(f.Ops, op) {
		return nil
	}
	if f.Throttle > 0 {
		f.Throttle--
		return errf("ThrottlingException", "Rate exceeded")
	}
	switch f.FailWith {
	case "":
		return nil
	case "AccessDeniedException":
		return errf(f.FailWith, "User: arn:aws:iam::%s:user/test is not authorized to perform: kms:%s because no identity-based policy allows the kms:%s action", Account, op, op)
	}
	return errf(f.FailWith, "fakeawskms: injected %s", f.FailWith)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func writeErr(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": e.msg})
}

var handlers = map[string]func(*Server, string, []byte) (any, *apiError){
	"CreateKey":           (*Server).createKey,
	"CreateAlias":         (*Server).createAlias,
	"DescribeKey":         (*Server).describeKey,
	"GetPublicKey":        (*Server).getPublicKey,
	"Sign":                (*Server).sign,
	"ListAliases":         (*Server).listAliases,
	"DisableKey":          setEnabled(false),
	"EnableKey":           setEnabled(true),
	"ScheduleKeyDeletion": (*Server).scheduleKeyDeletion,
}

func decode(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return errf("SerializationException", "%v", err)
	}
	return nil
}

func arnPrefix(region string) string { return "arn:aws:kms:" + region + ":" + Account + ":" }

// resolve finds a key by key ID, key ARN, alias name or alias ARN.
// aliasOK is false for the operations AWS allows only key IDs and ARNs
// for (DisableKey, EnableKey, ScheduleKeyDeletion).
func (s *Server) resolve(region, id string, aliasOK bool) (*key, *apiError) {
	if id == "" {
		return nil, errf("ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	arn := id
	switch {
	case strings.HasPrefix(id, "alias/"):
		arn = arnPrefix(region) + id
	case !strings.HasPrefix(id, "arn:"):
		arn = arnPrefix(region) + "key/" + id
	}
	if strings.Contains(arn, ":alias/") {
		if !aliasOK {
			return nil, errf("NotFoundException", "Invalid keyId %s", id)
		}
		target, ok := s.aliases[arn]
		if !ok {
			return nil, errf("NotFoundException", "Alias %s is not found.", arn)
		}
		arn = target
	}
	k, ok := s.keys[arn]
	if !ok {
		return nil, errf("NotFoundException", "Key '%s' does not exist", arn)
	}
	return k, nil
}

// usable refuses keys that are disabled or pending deletion, as KMS does
// for cryptographic operations and GetPublicKey.
func (k *key) usable() *apiError {
	switch k.state {
	case "Disabled":
		return errf("DisabledException", "%s is disabled.", k.arn)
	case "PendingDeletion":
		return errf("KMSInvalidStateException", "%s is pending deletion.", k.arn)
	}
	return nil
}

var signingAlgs = map[string][]string{
	"RSA":           {"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512", "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"},
	"ECC_NIST_P256": {"ECDSA_SHA_256"},
	"ECC_NIST_P384": {"ECDSA_SHA_384"},
	"ECC_NIST_P521": {"ECDSA_SHA_512"},
}

func (k *key) signingAlgs() []string {
	if k.usage != "SIGN_VERIFY" {
		return nil
	}
	if strings.HasPrefix(k.spec, "RSA_") {
		return signingAlgs["RSA"]
	}
	return signingAlgs[k.spec]
}

func (k *key) metadata() map[string]any {
	md := map[string]any{
		"AWSAccountId": Account, "Arn": k.arn, "KeyId": k.id, "KeySpec": k.spec, "CustomerMasterKeySpec": k.spec,
		"KeyUsage": k.usage, "KeyState": k.state, "Enabled": k.state == "Enabled", "Description": k.description,
		"KeyManager": "CUSTOMER", "Origin": "AWS_KMS", "CreationDate": k.created.Unix(),
	}
	if algs := k.signingAlgs(); algs != nil {
		md["SigningAlgorithms"] = algs
	} else {
		md["EncryptionAlgorithms"] = []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}
	}
	if !k.deletion.IsZero() {
		md["DeletionDate"] = k.deletion.Unix()
	}
	return md
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Server) createKey(region string, body []byte) (any, *apiError) {
	var in struct {
		KeySpec, CustomerMasterKeySpec, KeyUsage, Description string
		Tags                                                  []map[string]string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	spec := in.KeySpec
	if spec == "" {
		spec = in.CustomerMasterKeySpec
	}
	var priv crypto.Signer
	var err error
	switch spec {
	case "RSA_2048", "RSA_3072", "RSA_4096":
		bits := map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}[spec]
		priv, err = rsa.GenerateKey(rand.Reader, bits)
	case "ECC_NIST_P256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ECC_NIST_P384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ECC_NIST_P521":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		return nil, errf("ValidationException", "fakeawskms: KeySpec %q is not an asymmetric key spec it makes", spec)
	}
	if err != nil {
		return nil, errf("KMSInternalException", "%v", err)
	}
	switch {
	case in.KeyUsage == "":
		return nil, errf("ValidationException", "You must specify a KeyUsage value for an asymmetric KMS key.")
	case in.KeyUsage == "ENCRYPT_DECRYPT" && !strings.HasPrefix(spec, "RSA_"):
		return nil, errf("ValidationException", "KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec %s", spec)
	case in.KeyUsage != "SIGN_VERIFY" && in.KeyUsage != "ENCRYPT_DECRYPT":
		return nil, errf("ValidationException", "KeyUsage %s is not supported", in.KeyUsage)
	}
	id := newID()
	k := &key{arn: arnPrefix(region) + "key/" + id, id: id, region: region, spec: spec, usage: in.KeyUsage,
		state: "Enabled", description: in.Description, tags: in.Tags, created: s.now(), priv: priv}
	s.keys[k.arn] = k
	return map[string]any{"KeyMetadata": k.metadata()}, nil
}

var aliasRe = lazyre.New(`^alias/[A-Za-z0-9/_-]+$`)

func (s *Server) createAlias(region string, body []byte) (any, *apiError) {
	var in struct{ AliasName, TargetKeyId string }
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if !aliasRe().MatchString(in.AliasName) || strings.HasPrefix(in.AliasName, "alias/aws/") {
		return nil, errf("ValidationException", "Alias must start with the prefix \"alias/\" and not alias/aws/")
	}
	arn := arnPrefix(region) + in.AliasName
	if _, ok := s.aliases[arn]; ok {
		return nil, errf("AlreadyExistsException", "An alias with the name %s already exists", arn)
	}
	k, e := s.resolve(region, in.TargetKeyId, false)
	if e != nil {
		return nil, e
	}
	if k.state == "PendingDeletion" {
		return nil, errf("KMSInvalidStateException", "%s is pending deletion.", k.arn)
	}
	s.aliases[arn] = k.arn
	return map[string]any{}, nil
}

func keyID(body []byte) (string, *apiError) {
	var in struct{ KeyId string }
	return in.KeyId, decode(body, &in)
}

func (s *Server) describeKey(region string, body []byte) (any, *apiError) {
	id, e := keyID(body)
	if e != nil {
		return nil, e
	}
	k, e := s.resolve(region, id, true)
	if e != nil {
		return nil, e
	}
	return map[string]any{"KeyMetadata": k.metadata()}, nil
}

func (s *Server) getPublicKey(region string, body []byte) (any, *apiError) {
	id, e := keyID(body)
	if e != nil {
		return nil, e
	}
	k, e := s.resolve(region, id, true)
	if e != nil {
		return nil, e
	}
	if e := k.usable(); e != nil {
		return nil, e
	}
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		return nil, errf("KMSInternalException", "%v", err)
	}
	out := map[string]any{"KeyId": k.arn, "KeySpec": k.spec, "CustomerMasterKeySpec": k.spec, "KeyUsage": k.usage, "PublicKey": der}
	if algs := k.signingAlgs(); algs != nil {
		out["SigningAlgorithms"] = algs
	} else {
		out["EncryptionAlgorithms"] = []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}
	}
	return out, nil
}

func (s *Server) sign(region string, body []byte) (any, *apiError) {
	var in struct {
		KeyId, MessageType, SigningAlgorithm string
		Message                              []byte
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	k, e := s.resolve(region, in.KeyId, true)
	if e != nil {
		return nil, e
	}
	if e := k.usable(); e != nil {
		return nil, e
	}
	if k.usage != "SIGN_VERIFY" {
		return nil, errf("InvalidKeyUsageException", "%s key usage is %s which is not valid for Sign.", k.arn, k.usage)
	}
	if !contains(k.signingAlgs(), in.SigningAlgorithm) {
		return nil, errf("InvalidKeyUsageException", "Algorithm %s is incompatible with key spec %s.", in.SigningAlgorithm, k.spec)
	}
	if in.MessageType != "DIGEST" {
		return nil, errf("ValidationException", "fakeawskms signs digests only (MessageType DIGEST), not %q", in.MessageType)
	}
	var h crypto.Hash
	switch {
	case strings.HasSuffix(in.SigningAlgorithm, "_256"):
		h = crypto.SHA256
	case strings.HasSuffix(in.SigningAlgorithm, "_384"):
		h = crypto.SHA384
	default:
		h = crypto.SHA512
	}
	if len(in.Message) != h.Size() {
		return nil, errf("ValidationException", "Digest is invalid length for algorithm %s.", in.SigningAlgorithm)
	}
	var opts crypto.SignerOpts = h
	if strings.HasPrefix(in.SigningAlgorithm, "RSASSA_PSS_") {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	}
	// ecdsa.PrivateKey.Sign returns ASN.1 DER, as KMS does.
	sig, err := k.priv.Sign(rand.Reader, in.Message, opts)
	if err != nil {
		return nil, errf("KMSInternalException", "%v", err)
	}
	arn := k.arn
	if s.faults.WrongKeyID {
		arn = arnPrefix(region) + "key/" + newID()
	}
	return map[string]any{"KeyId": arn, "Signature": sig, "SigningAlgorithm": in.SigningAlgorithm}, nil
}

func (s *Server) listAliases(region string, body []byte) (any, *apiError) {
	var in struct {
		Marker string
		Limit  int
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	var names []string
	for arn := range s.aliases {
		if strings.HasPrefix(arn, arnPrefix(region)) {
			names = append(names, arn)
		}
	}
	sort.Strings(names)
	// Pages of two, so clients must follow markers.
	start := 0
	if in.Marker != "" {
		fmt.Sscanf(in.Marker, "%d", &start)
	}
	end := min(start+2, len(names))
	var out []map[string]any
	for _, arn := range names[min(start, len(names)):end] {
		name := arn[strings.Index(arn, ":alias/")+1:]
		out = append(out, map[string]any{"AliasArn": arn, "AliasName": name, "TargetKeyId": s.keys[s.aliases[arn]].id})
	}
	resp := map[string]any{"Aliases": out, "Truncated": end < len(names)}
	if end < len(names) {
		resp["NextMarker"] = fmt.Sprint(end)
	}
	return resp, nil
}

func setEnabled(enabled bool) func(*Server, string, []byte) (any, *apiError) {
	return func(s *Server, region string, body []byte) (any, *apiError) {
		id, e := keyID(body)
		if e != nil {
			return nil, e
		}
		k, e := s.resolve(region, id, false)
		if e != nil {
			return nil, e
		}
		if k.state == "PendingDeletion" {
			return nil, errf("KMSInvalidStateException", "%s is pending deletion.", k.arn)
		}
		k.state = map[bool]string{true: "Enabled", false: "Disabled"}[enabled]
		return map[string]any{}, nil
	}
}

func (s *Server) scheduleKeyDeletion(region string, body []byte) (any, *apiError) {
	var in struct {
		KeyId               string
		PendingWindowInDays int
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	k, e := s.resolve(region, in.KeyId, false)
	if e != nil {
		return nil, e
	}
	if k.state == "PendingDeletion" {
		return nil, errf("KMSInvalidStateException", "%s is pending deletion.", k.arn)
	}
	days := in.PendingWindowInDays
	if days == 0 {
		days = 30
	}
	if days < 7 || days > 30 {
		return nil, errf("ValidationException", "PendingWindowInDays must be between 7 and 30")
	}
	k.state = "PendingDeletion"
	k.deletion = s.now().Add(time.Duration(days) * 24 * time.Hour).Truncate(time.Second)
	return map[string]any{"KeyId": k.arn, "KeyState": k.state, "DeletionDate": k.deletion.Unix(), "PendingWindowInDays": days}, nil
}

// AddKey creates a key directly (for tests: an ENCRYPT_DECRYPT key jwkctl
// would never make) and returns its ARN.
func (s *Server) AddKey(region, spec, usage, alias string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"KeySpec": spec, "KeyUsage": usage})
	out, e := s.createKey(region, body)
	if e != nil {
		return "", fmt.Errorf("%s: %s", e.code, e.msg)
	}
	arn := out.(map[string]any)["KeyMetadata"].(map[string]any)["Arn"].(string)
	if alias != "" {
		body, _ = json.Marshal(map[string]string{"AliasName": alias, "TargetKeyId": arn})
		if _, e := s.createAlias(region, body); e != nil {
			return "", fmt.Errorf("%s: %s", e.code, e.msg)
		}
	}
	return arn, nil
}

// Tags returns the tags a key was created with.
func (s *Server) Tags(arn string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	if k, ok := s.keys[arn]; ok {
		for _, t := range k.tags {
			out[t["TagKey"]] = t["TagValue"]
		}
	}
	return out
}
