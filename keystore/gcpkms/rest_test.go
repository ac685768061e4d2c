package gcpkms_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/gcpkms"
	"github.com/jwkctl/jwkctl/signer"
)

// These tests drive the client against canned answers written from the
// Cloud KMS REST reference (cloudkms-api.json), not against fakekms: the
// JSON here is what cloudkms.googleapis.com/v1 sends, field by field.

const cannedVersion = "projects/p/locations/europe-north1/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcString is an int64 in proto3 JSON: a decimal string.
func crcString(b []byte) string { return strconv.FormatUint(uint64(crc32.Checksum(b, castagnoli)), 10) }

// canned is a Cloud KMS that answers getPublicKey and asymmetricSign for
// one P-256 key, signing what it is sent with its own key, and whose
// answers the test may rewrite.
type canned struct {
	t    *testing.T
	priv *ecdsa.PrivateKey
	pem  string

	mu sync.Mutex
	// publicKey and sign rewrite the answer (a JSON object) before it is
	// sent; status and body, when set, replace it.
	publicKey, sign func(map[string]any)
	fail            func(n int) (status int, body string) // n: this call's number, from 1
	calls           atomic.Int64
	requests        []*http.Request
	bodies          []map[string]any
}

func newCanned(t *testing.T) *canned {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	return &canned{t: t, priv: priv, pem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
}

func (c *canned) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(c.calls.Add(1))
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			c.t.Errorf("request body is not JSON: %s", raw)
		}
	}
	c.mu.Lock()
	c.requests = append(c.requests, r)
	c.bodies = append(c.bodies, body)
	fail, pkHook, signHook := c.fail, c.publicKey, c.sign
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if fail != nil {
		if status, b := fail(n); status != 0 {
			w.WriteHeader(status)
			io.WriteString(w, b)
			return
		}
	}
	var out map[string]any
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/"+cannedVersion+"/publicKey":
		out = map[string]any{
			"pem":             c.pem,
			"algorithm":       "EC_SIGN_P256_SHA256",
			"pemCrc32c":       crcString([]byte(c.pem)),
			"name":            cannedVersion,
			"protectionLevel": "SOFTWARE",
		}
		if pkHook != nil {
			pkHook(out)
		}
	case r.Method == http.MethodPost && r.URL.Path == "/v1/"+cannedVersion+":asymmetricSign":
		d, _ := body["digest"].(map[string]any)
		s, _ := d["sha256"].(string)
		digest, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(digest) != 32 {
			w.WriteHeader(400)
			io.WriteString(w, `{"error": {"code": 400, "message": "Invalid value at 'digest.sha256'", "status": "INVALID_ARGUMENT"}}`)
			return
		}
		sig, _ := ecdsa.SignASN1(rand.Reader, c.priv, digest)
		out = map[string]any{
			"signature":            base64.StdEncoding.EncodeToString(sig),
			"signatureCrc32c":      crcString(sig),
			"verifiedDigestCrc32c": body["digestCrc32c"] == crcString(digest),
			"name":                 cannedVersion,
			"protectionLevel":      "SOFTWARE",
		}
		if signHook != nil {
			signHook(out)
		}
	default:
		w.WriteHeader(404)
		fmt.Fprintf(w, `{"error": {"code": 404, "message": "no %s %s", "status": "NOT_FOUND"}}`, r.Method, r.URL.Path)
		return
	}
	json.NewEncoder(w).Encode(out)
}

func (c *canned) set(f func(c *canned)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

func startCanned(t *testing.T) (*canned, keystore.Options, *gcpkms.Backend) {
	t.Helper()
	c := newCanned(t)
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	b := gcpkms.New()
	t.Cleanup(func() { b.Close() })
	return c, keystore.Options{Endpoint: srv.Listener.Addr().String(), KMSTimeout: 2 * time.Second}, b
}

// The requests are the REST API's, and a JWS signature made through the client
// verifies with the public key (crypto/ecdsa, not our code): the digest went out
// in the field and encoding KMS reads.
func TestCannedWireFormat(t *testing.T) {
	c, opts, b := startCanned(t)
	k, err := b.Open(context.Background(), keystore.MustParse("gcpkms://"+cannedVersion), opts)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := signer.New(k, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0")
	sig, err := sg.SignPayload(payload, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	// A JWS ES256 signature is r || s, 32 bytes each (RFC 7518 3.4).
	h := sha256.Sum256(payload)
	if len(sig) != 64 || !ecdsa.Verify(&c.priv.PublicKey, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatalf("signature does not verify with the KMS public key")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.requests) != 2 {
		t.Fatalf("%d requests for one open and one signature, want 2", len(c.requests))
	}
	get, sign := c.requests[0], c.requests[1]
	if get.Method != "GET" || get.URL.Path != "/v1/"+cannedVersion+"/publicKey" {
		t.Errorf("public key request %s %s", get.Method, get.URL)
	}
	if sign.Method != "POST" || sign.URL.Path != "/v1/"+cannedVersion+":asymmetricSign" || !strings.HasPrefix(sign.Header.Get("Content-Type"), "application/json") {
		t.Errorf("sign request %s %s %v", sign.Method, sign.URL, sign.Header)
	}
	for _, r := range c.requests {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("a loopback endpoint was sent credentials: %v", r.Header)
		}
	}
	body := c.bodies[1]
	d, _ := body["digest"].(map[string]any)
	digest, err := base64.StdEncoding.DecodeString(fmt.Sprint(d["sha256"]))
	if err != nil || len(d) != 1 || len(digest) != 32 {
		t.Fatalf("digest %v", body)
	}
	// int64 fields are JSON strings.
	if crcs, ok := body["digestCrc32c"].(string); !ok || crcs != crcString(digest) {
		t.Fatalf("digestCrc32c %#v, want the string %q", body["digestCrc32c"], crcString(digest))
	}
	if len(body) != 2 {
		t.Errorf("unexpected fields in %v", body)
	}
}

// Every integrity field of the answers is checked, and Google's error body
// is read by its status.
func TestCannedAnswers(t *testing.T) {
	del := func(f string) func(map[string]any) { return func(m map[string]any) { delete(m, f) } }
	setf := func(f string, v any) func(map[string]any) { return func(m map[string]any) { m[f] = v } }
	errBody := func(code int, status, msg string) func(int) (int, string) {
		return func(int) (int, string) {
			return code, fmt.Sprintf(`{"error": {"code": %d, "message": %q, "status": %q}}`, code, msg, status)
		}
	}
	for _, tc := range []struct {
		name      string
		publicKey func(map[string]any)
		sign      func(map[string]any)
		fail      func(int) (int, string)
		open      bool   // the check is at Open
		want      string // "" = succeeds
		is        error
	}{
		{name: "as documented"},
		{name: "pemCrc32c as a JSON number", publicKey: func(m map[string]any) { n, _ := strconv.Atoi(m["pemCrc32c"].(string)); m["pemCrc32c"] = n }, open: true},
		{name: "no pemCrc32c", publicKey: del("pemCrc32c"), open: true, want: "failed its CRC32C check"},
		{name: "wrong pemCrc32c", publicKey: setf("pemCrc32c", "12345"), open: true, want: "failed its CRC32C check"},
		{name: "public key for another version", publicKey: setf("name", cannedVersion+"0"), open: true, want: "answered for"},
		{name: "algorithm unknown", publicKey: setf("algorithm", "EC_SIGN_SECP256K1_SHA256"), open: true, want: "not a JOSE signing algorithm"},
		{name: "PEM not matching the algorithm", publicKey: setf("algorithm", "EC_SIGN_P384_SHA384"), open: true, want: "does not match"},
		{name: "no signatureCrc32c", sign: del("signatureCrc32c"), want: "signature from"},
		{name: "wrong signatureCrc32c", sign: setf("signatureCrc32c", "7"), want: "signature from"},
		{name: "digest CRC not verified (field left out, as proto3 JSON does for false)", sign: del("verifiedDigestCrc32c"), want: "did not confirm the digest"},
		{name: "signature for another version", sign: setf("name", strings.Replace(cannedVersion, "/k/", "/other/", 1)), want: "answered for"},
		{name: "permission denied", fail: errBody(403, "PERMISSION_DENIED", "Permission 'cloudkms.cryptoKeyVersions.useToSign' denied on resource"), want: "needs IAM permission cloudkms.cryptoKeyVersions.useToSign", is: keystore.ErrPermission},
		{name: "permission denied on open", fail: errBody(403, "PERMISSION_DENIED", "denied"), open: true, want: "cloudkms.cryptoKeyVersions.viewPublicKey", is: keystore.ErrPermission},
		{name: "unauthenticated", fail: errBody(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."), want: "no valid Google credentials", is: keystore.ErrPermission},
		{name: "not found", fail: errBody(404, "NOT_FOUND", cannedVersion+" not found."), open: true, want: "does not exist in Cloud KMS", is: keystore.ErrNotFound},
		{name: "disabled", fail: errBody(400, "FAILED_PRECONDITION", cannedVersion+" is not in state ENABLED, current state is DISABLED."), want: "not enabled (disabled, destroyed or still being generated): " + cannedVersion + " is not in state ENABLED, current state is DISABLED."},
		{name: "status read from the body, not the HTTP code", fail: errBody(400, "PERMISSION_DENIED", "x"), want: "needs IAM permission", is: keystore.ErrPermission},
		{name: "no JSON body: the HTTP status", fail: func(int) (int, string) { return 403, "<html>Forbidden</html>" }, want: "needs IAM permission", is: keystore.ErrPermission},
		{name: "quota: not retried", fail: errBody(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), want: "HTTP 429 (RESOURCE_EXHAUSTED): Quota exceeded"},
		{name: "503 twice then an answer", fail: func(n int) (int, string) {
			if n <= 2 {
				return 503, `{"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}}`
			}
			return 0, ""
		}},
		{name: "504 then an answer", fail: func(n int) (int, string) {
			if n == 1 {
				return 504, `{"error": {"code": 504, "message": "Deadline expired before operation could complete.", "status": "DEADLINE_EXCEEDED"}}`
			}
			return 0, ""
		}},
		{name: "a 200 that is not JSON", fail: func(int) (int, string) { return 200, "<html>captive portal</html>" }, want: "not the expected JSON"},
		{name: "an answer too long", fail: func(int) (int, string) { return 200, `{"name": "` + strings.Repeat("a", 5<<20) + `"}` }, want: "longer than"},
		{name: "a multi-line message stays one line", fail: errBody(500, "INTERNAL", "line one\nline two"), want: "HTTP 500 (INTERNAL): line one line two"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, opts, b := startCanned(t)
			var key keystore.Key
			if !tc.open {
				var err error
				if key, err = b.Open(context.Background(), keystore.MustParse("gcpkms://"+cannedVersion), opts); err != nil {
					t.Fatal(err)
				}
			}
			c.set(func(c *canned) { c.publicKey, c.sign, c.fail = tc.publicKey, tc.sign, tc.fail })
			if tc.fail != nil {
				c.calls.Store(0)
			}
			var err error
			if tc.open {
				key, err = b.Open(context.Background(), keystore.MustParse("gcpkms://"+cannedVersion), opts)
			}
			if err == nil {
				var sig []byte
				digest := sha256.Sum256([]byte("payload"))
				sig, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
				if err == nil && !ecdsa.VerifyASN1(&c.priv.PublicKey, digest[:], sig) {
					t.Fatal("the signature does not verify")
				}
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Fatalf("%v does not wrap %v", err, tc.is)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Fatalf("error on several lines: %q", err)
			}
		})
	}
}

// A KMS that hangs is given up on when --kms-timeout runs out.
func TestCannedHangBoundedByTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	b := gcpkms.New()
	defer b.Close()
	start := time.Now()
	_, err := b.Open(context.Background(), keystore.MustParse("gcpkms://"+cannedVersion), keystore.Options{Endpoint: srv.Listener.Addr().String(), KMSTimeout: 300 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("open of a hanging KMS: %v after %v", err, time.Since(start))
	}
}

// Off loopback, the client speaks HTTPS and sends an access token from
// Application Default Credentials — here a service-account file whose
// token endpoint is a local server — and never puts the token in an
// error.
func TestADCOverTLS(t *testing.T) {
	const token = "ya29.secret-access-token"
	var tokenCalls atomic.Int64
	var tokenFail atomic.Bool
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenCalls.Add(1)
		r.ParseForm()
		if r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.Form.Get("assertion") == "" {
			t.Errorf("token request %v", r.Form)
		}
		w.Header().Set("Content-Type", "application/json")
		if tokenFail.Load() {
			w.WriteHeader(400)
			io.WriteString(w, `{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}`)
			return
		}
		fmt.Fprintf(w, `{"access_token": %q, "token_type": "Bearer", "expires_in": 3600}`, token)
	}))
	defer tokenSrv.Close()
	sa, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKCS8PrivateKey(sa)
	cred, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "p", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "jwkctl@p.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokenSrv.URL,
		"quota_project_id": "billed-project",
	})
	file := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(file, cred, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", file)

	c := newCanned(t)
	var authz, quota atomic.Value
	var unauth atomic.Bool
	kms := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz.Store(r.Header.Get("Authorization"))
		quota.Store(r.Header.Get("X-Goog-User-Project"))
		if r.TLS == nil {
			t.Error("not TLS")
		}
		if unauth.Load() {
			w.WriteHeader(401)
			io.WriteString(w, `{"error": {"code": 401, "message": "Request had invalid authentication credentials. Expected OAuth 2 access token.", "status": "UNAUTHENTICATED"}}`)
			return
		}
		c.ServeHTTP(w, r)
	}))
	defer kms.Close()
	// "example.com" is in the test server's certificate; every dial goes
	// to the test server.
	tr := kms.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != "example.com:443" {
			return nil, fmt.Errorf("dial %s: not the test server", addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, kms.Listener.Addr().String())
	}
	b := gcpkms.New()
	b.Transport = tr
	defer b.Close()
	opts := keystore.Options{Endpoint: "example.com", KMSTimeout: time.Second}
	k, err := b.Open(context.Background(), keystore.MustParse("gcpkms://"+cannedVersion), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := authz.Load(); got != "Bearer "+token {
		t.Fatalf("Authorization %q", got)
	}
	if got := quota.Load(); got != "billed-project" {
		t.Fatalf("X-Goog-User-Project %q, want the credentials' quota_project_id", got)
	}
	digest := sha256.Sum256([]byte("payload"))
	if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	if n := tokenCalls.Load(); n != 1 {
		t.Errorf("%d token requests for two calls, want 1 (the token is reused)", n)
	}

	unauth.Store(true)
	_, err = k.Sign(rand.Reader, digest[:], crypto.SHA256)
	if !errors.Is(err, keystore.ErrPermission) || !strings.Contains(err.Error(), "no valid Google credentials") || strings.Contains(err.Error(), token) {
		t.Fatalf("KMS refusing the token: %v", err)
	}

	// The token endpoint refuses: reported at once (no retries), one
	// line, without the assertion or the answer's body.
	// GOOGLE_CLOUD_QUOTA_PROJECT overrides the credentials' quota project.
	t.Setenv("GOOGLE_CLOUD_QUOTA_PROJECT", "env-project")
	unauth.Store(false)
	tokenFail.Store(true)
	b2 := gcpkms.New()
	b2.Transport = tr
	defer b2.Close()
	before := tokenCalls.Load()
	_, err = b2.Open(context.Background(), keystore.MustParse("gcpkms://"+cannedVersion), opts)
	if !errors.Is(err, keystore.ErrPermission) || !strings.Contains(err.Error(), "invalid_grant: Invalid JWT Signature.") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("token refused: %v", err)
	}
	if n := tokenCalls.Load() - before; n != 1 {
		t.Errorf("a refused token was asked for %d times, want 1", n)
	}
	tokenFail.Store(false)
	b3 := gcpkms.New()
	b3.Transport = tr
	defer b3.Close()
	if _, err := b3.Open(context.Background(), keystore.MustParse("gcpkms://"+cannedVersion), opts); err != nil {
		t.Fatal(err)
	}
	if got := quota.Load(); got != "env-project" {
		t.Fatalf("X-Goog-User-Project %q, want GOOGLE_CLOUD_QUOTA_PROJECT's", got)
	}
}

// Nothing about credentials is looked up for a loopback endpoint, and off
// loopback missing credentials say how to set them up; plain http is
// refused off loopback.
func TestEndpoints(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	_, opts, b := startCanned(t)
	if _, err := b.Open(context.Background(), keystore.MustParse("gcpkms://"+cannedVersion), opts); err != nil {
		t.Fatalf("loopback endpoint with broken ADC: %v", err)
	}
	for endpoint, want := range map[string]string{
		"example.com:443":       "Application Default Credentials",
		"https://example.com":   "Application Default Credentials",
		"":                      "Application Default Credentials",
		"http://example.com":    "plain http only to loopback",
		"example.com/v1":        "want HOST[:PORT]",
		"https://127.0.0.1:443": "want HOST[:PORT]",
	} {
		b := gcpkms.New()
		_, err := b.Open(context.Background(), keystore.MustParse("gcpkms://"+cannedVersion), keystore.Options{Endpoint: endpoint})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("endpoint %q: %v, want %q", endpoint, err, want)
		}
	}
}
