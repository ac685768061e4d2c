package gcpkms

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/jwkctl/jwkctl/internal/loopback"
	"github.com/jwkctl/jwkctl/keystore"
)

func init() { keystore.Register(New()) }

// Scope is the OAuth scope jwkctl asks Google credentials for.
const Scope = "https://www.googleapis.com/auth/cloudkms"

// DefaultEndpoint is Google's Cloud KMS REST endpoint.
const DefaultEndpoint = "cloudkms.googleapis.com"

// PollInterval is how often Generate asks whether a new version has left
// PENDING_GENERATION. Tests shorten it.
var PollInterval = time.Second

// Backend talks to Cloud KMS over its REST API, one HTTP client per
// endpoint, made when a gcpkms key is first used.
type Backend struct {
	// Transport carries the requests; nil means http.DefaultTransport.
	// For an endpoint off loopback it is wrapped to add the access token.
	// Tests may replace it.
	Transport http.RoundTripper

	mu      sync.Mutex
	clients map[string]*restClient
}

var (
	_ keystore.Backend         = (*Backend)(nil)
	_ keystore.Lister          = (*Backend)(nil)
	_ keystore.Deleter         = (*Backend)(nil)
	_ keystore.Disabler        = (*Backend)(nil)
	_ keystore.GenerateChecker = (*Backend)(nil)
	_ io.Closer                = (*Backend)(nil)
)

// New returns a Backend that calls Cloud KMS over HTTPS with Application
// Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the
// metadata server: workload identity), or a loopback endpoint over plain
// HTTP without credentials (a fake). Nothing is looked up or dialled
// until a key is used.
func New() *Backend { return &Backend{clients: map[string]*restClient{}} }

// baseURL is the URL an endpoint (keystore.Options.Endpoint: HOST[:PORT],
// "" for Google's) is called at, and whether it is loopback.
func baseURL(endpoint string) (string, bool, error) {
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	hostport, scheme := endpoint, ""
	if i := strings.Index(endpoint, "://"); i >= 0 {
		scheme, hostport = strings.ToLower(endpoint[:i]), strings.TrimSuffix(endpoint[i+3:], "/")
	}
	if hostport == "" || strings.ContainsAny(hostport, "/?#@ ") {
		return "", false, fmt.Errorf("gcpkms: Cloud KMS endpoint %q: want HOST[:PORT]", endpoint)
	}
	loop := loopback.HostPort(hostport)
	switch {
	case scheme == "" && loop, scheme == "http" && loop:
		return "http://" + hostport, true, nil
	case scheme == "" && !loop, scheme == "https" && !loop:
		return "https://" + hostport, false, nil
	case scheme == "http":
		return "", false, fmt.Errorf("gcpkms: Cloud KMS endpoint %q: plain http only to loopback", endpoint)
	}
	return "", false, fmt.Errorf("gcpkms: Cloud KMS endpoint %q: want HOST[:PORT] (https off loopback, plain http on it)", endpoint)
}

// connect makes the client for an endpoint: off loopback, over HTTPS with
// an access token from Application Default Credentials.
func (b *Backend) connect(ctx context.Context, endpoint string) (*restClient, error) {
	base, loop, err := baseURL(endpoint)
	if err != nil {
		return nil, err
	}
	tr := b.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	if loop {
		return &restClient{hc: &http.Client{Transport: tr}, base: base}, nil
	}
	// The credentials outlive this call's context: they refresh tokens
	// for later ones.
	creds, err := google.FindDefaultCredentials(context.WithoutCancel(ctx), Scope)
	if err != nil {
		return nil, fmt.Errorf("gcpkms: connect to Cloud KMS: %v (are Application Default Credentials set up? gcloud auth application-default login, or GOOGLE_APPLICATION_CREDENTIALS)", oneLine(err.Error(), 300))
	}
	if q := quotaProject(creds); q != "" {
		tr = userProject{project: q, base: tr}
	}
	return &restClient{hc: &http.Client{Transport: &oauth2.Transport{Source: tokenSource{creds.TokenSource}, Base: tr}}, base: base}, nil
}

// quotaProject is the project billed for the calls, as Google's client
// libraries find it: GOOGLE_CLOUD_QUOTA_PROJECT, else the credentials'
// quota_project_id (gcloud's user credentials have one; Cloud KMS refuses
// user credentials without it).
func quotaProject(creds *google.Credentials) string {
	if q := os.Getenv("GOOGLE_CLOUD_QUOTA_PROJECT"); q != "" {
		return q
	}
	var v struct {
		QuotaProject string `json:"quota_project_id"`
	}
	if json.Unmarshal(creds.JSON, &v) != nil {
		return ""
	}
	return v.QuotaProject
}

// userProject sends X-Goog-User-Project, the quota project.
type userProject struct {
	project string
	base    http.RoundTripper
}

func (u userProject) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Goog-User-Project", u.project)
	return u.base.RoundTrip(r)
}

// tokenSource turns a failure to get an access token into a
// credentialsError, which the request's error is then reduced to.
type tokenSource struct{ ts oauth2.TokenSource }

func (t tokenSource) Token() (*oauth2.Token, error) {
	tok, err := t.ts.Token()
	if err == nil {
		return tok, nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		// The token endpoint refused: its OAuth error code and
		// description (RFC 6749 5.2), never the rest of the body.
		code, desc := re.ErrorCode, re.ErrorDescription
		if code == "" {
			var e struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			if json.Unmarshal(re.Body, &e) == nil {
				code, desc = e.Error, e.ErrorDescription
			}
		}
		msg := strings.Trim(code+": "+desc, ": ")
		unavailable := false
		if re.Response != nil {
			if msg == "" {
				msg = re.Response.Status
			}
			unavailable = re.Response.StatusCode >= 500
		}
		return nil, &credentialsError{msg: "getting a Google access token: " + oneLine(msg, 300), unavailable: unavailable}
	}
	return nil, &credentialsError{msg: "getting a Google access token: " + oneLine(err.Error(), 300), unavailable: true}
}

// tokenSafe reduces a request that failed for want of an access token to
// that failure.
func tokenSafe(err error) error {
	var ce *credentialsError
	if errors.As(err, &ce) {
		return ce
	}
	return err
}

// Scheme is "gcpkms".
func (b *Backend) Scheme() string { return keystore.SchemeGCPKMS }

func (b *Backend) client(ctx context.Context, opts keystore.Options) (*restClient, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[opts.Endpoint]; ok {
		return c, nil
	}
	c, err := b.connect(ctx, opts.Endpoint)
	if err != nil {
		return nil, err
	}
	if b.clients == nil {
		b.clients = map[string]*restClient{}
	}
	b.clients[opts.Endpoint] = c
	return c, nil
}

// Close forgets the clients and closes their idle connections.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, c := range b.clients {
		c.hc.CloseIdleConnections()
		delete(b.clients, k)
	}
	return nil
}

func kmsName(u *keystore.URI) (*keystore.KMSName, error) {
	if u == nil || u.Scheme != keystore.SchemeGCPKMS || u.GCPKMS == nil {
		return nil, fmt.Errorf("%w: want a gcpkms:// URI", keystore.ErrBadURI)
	}
	return u.GCPKMS, nil
}

func versionURI(name string) *keystore.URI {
	u, err := keystore.Parse("gcpkms://" + name)
	if err != nil {
		return &keystore.URI{Scheme: keystore.SchemeGCPKMS}
	}
	return u
}

// message is what KMS said, or the error itself when it said nothing.
func message(err error) string {
	var ae *APIError
	if errors.As(err, &ae) && ae.Message != "" {
		return ae.Message
	}
	return err.Error()
}

// mapErr turns Cloud KMS error statuses into keystore sentinels with the
// IAM permission that is missing.
func mapErr(err error, what, name, permission string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("gcpkms: %s %s: %w", what, name, err)
	}
	switch statusOf(err) {
	case "PERMISSION_DENIED":
		return fmt.Errorf("%w: %s %s: the caller needs IAM permission %s (%s)", keystore.ErrPermission, what, name, permission, message(err))
	case "UNAUTHENTICATED":
		return fmt.Errorf("%w: %s %s: no valid Google credentials (run gcloud auth application-default login, or set GOOGLE_APPLICATION_CREDENTIALS; on GKE check workload identity): %s", keystore.ErrPermission, what, name, message(err))
	case "NOT_FOUND":
		return fmt.Errorf("%w: %s does not exist in Cloud KMS (jwkctl keys list on its key ring shows what is there)", keystore.ErrNotFound, name)
	case "FAILED_PRECONDITION":
		return fmt.Errorf("gcpkms: %s %s: the key version is not enabled (disabled, destroyed or still being generated): %s", what, name, message(err))
	case "ALREADY_EXISTS":
		return fmt.Errorf("%w: %s", keystore.ErrExists, name)
	case "DEADLINE_EXCEEDED":
		return fmt.Errorf("gcpkms: %s %s: %w", what, name, context.DeadlineExceeded)
	case "CANCELLED":
		return fmt.Errorf("gcpkms: %s %s: %w", what, name, context.Canceled)
	}
	return fmt.Errorf("gcpkms: %s %s: %w", what, name, err)
}

// crc32c is the CRC32C (Castagnoli) Cloud KMS checks integrity with. The
// table is made on first use (MakeTable caches it), not at every start.
func crc32c(b []byte) int64 {
	return int64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// Open opens a key version. Asymmetric KMS keys have no primary version,
// so the URI must name one.
func (b *Backend) Open(ctx context.Context, u *keystore.URI, opts keystore.Options) (keystore.Key, error) {
	n, err := kmsName(u)
	if err != nil {
		return nil, err
	}
	if n.VersionName() == "" {
		return nil, fmt.Errorf("%w: name a key version: %s/cryptoKeyVersions/N (asymmetric KMS keys have no primary version; jwkctl keys list shows them)", keystore.ErrBadURI, u)
	}
	c, err := b.client(ctx, opts)
	if err != nil {
		return nil, err
	}
	return openVersion(ctx, c, n.VersionName(), opts.KMSTimeout)
}

// openVersion reads the version's public key (one getPublicKey call) and
// checks its name and CRC32C.
func openVersion(ctx context.Context, c *restClient, name string, timeout time.Duration) (*Key, error) {
	var pk *publicKey
	err := retrying(ctx, timeout, "get public key of", name, "cloudkms.cryptoKeyVersions.viewPublicKey", func(ctx context.Context) (err error) {
		pk, err = c.getPublicKey(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	if pk.Name != name {
		return nil, fmt.Errorf("gcpkms: GetPublicKey answered for %q, not %q", pk.Name, name)
	}
	if pk.PemCrc32c == nil || crc32c([]byte(pk.Pem)) != int64(*pk.PemCrc32c) {
		return nil, fmt.Errorf("gcpkms: the public key of %s failed its CRC32C check (corrupted in transit)", name)
	}
	alg, ok := joseFor[pk.Algorithm]
	if !ok {
		return nil, fmt.Errorf("gcpkms: %s uses %q, which is not a JOSE signing algorithm jwkctl supports", name, pk.Algorithm)
	}
	blk, _ := pem.Decode([]byte(pk.Pem))
	if blk == nil {
		return nil, fmt.Errorf("gcpkms: the public key of %s is not PEM", name)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("gcpkms: the public key of %s: %v", name, err)
	}
	if err := keystore.CheckPublicKey(pub); err != nil {
		return nil, err
	}
	if err := matches(pub, pk.Algorithm); err != nil {
		return nil, fmt.Errorf("gcpkms: the public key of %s: %v", name, err)
	}
	return &Key{c: c, name: name, uri: versionURI(name), pub: pub, algorithm: pk.Algorithm, alg: alg, hash: hashOf(pk.Algorithm), timeout: timeout}, nil
}

// Key is one Cloud KMS key version. Its public key is fetched once; each
// signature is exactly one asymmetricSign call.
type Key struct {
	c         *restClient
	name      string
	uri       *keystore.URI
	pub       crypto.PublicKey
	algorithm algo
	alg       jose.SignatureAlgorithm
	hash      crypto.Hash
	timeout   time.Duration // keystore.Options.KMSTimeout
}

var (
	_ keystore.Key           = (*Key)(nil)
	_ keystore.AlgRestricted = (*Key)(nil)
)

// URI names the key version.
func (k *Key) URI() *keystore.URI { return k.uri }

// Public is the cached public key.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Algs is the one JOSE algorithm the KMS key serves.
func (k *Key) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{k.alg} }

// Sign sends the digest to KMS with its CRC32C and checks every integrity
// field of the answer: the digest arrived intact, the signature did, and
// it came from the version asked.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != k.hash || len(digest) != k.hash.Size() {
		return nil, fmt.Errorf("gcpkms: %s signs %v digests (%s), not %v", k.name, k.hash, k.algorithm, opts.HashFunc())
	}
	// KMS fixes the padding per key: a caller asking for the other one
	// would get a signature of a scheme it did not ask for.
	pss, isPSS := opts.(*rsa.PSSOptions)
	keyPSS := strings.HasPrefix(k.algorithm, "RSA_SIGN_PSS_")
	switch {
	case keyPSS && !isPSS:
		return nil, fmt.Errorf("gcpkms: %s is an RSA-PSS key (%s); it cannot make a PKCS#1 v1.5 signature", k.name, k.algorithm)
	case !keyPSS && isPSS:
		return nil, fmt.Errorf("gcpkms: %s is a %s key; it cannot make an RSA-PSS signature", k.name, k.algorithm)
	case isPSS && pss.SaltLength != k.hash.Size() && pss.SaltLength != rsa.PSSSaltLengthEqualsHash:
		return nil, fmt.Errorf("gcpkms: Cloud KMS signs PSS with a salt as long as the hash, not %d bytes", pss.SaltLength)
	}
	d := &digestJSON{}
	switch k.hash {
	case crypto.SHA256:
		d.Sha256 = digest
	case crypto.SHA384:
		d.Sha384 = digest
	case crypto.SHA512:
		d.Sha512 = digest
	}
	req := &asymmetricSignRequest{Digest: d, DigestCrc32c: crcPtr(digest)}
	var resp *asymmetricSignResponse
	err := retrying(context.Background(), k.timeout, "sign with", k.name, "cloudkms.cryptoKeyVersions.useToSign", func(ctx context.Context) (err error) {
		resp, err = k.c.asymmetricSign(ctx, k.name, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !resp.VerifiedDigestCrc32c:
		return nil, fmt.Errorf("gcpkms: Cloud KMS did not confirm the digest's CRC32C for %s (corrupted in transit)", k.name)
	case resp.Name != k.name:
		return nil, fmt.Errorf("gcpkms: Cloud KMS answered for %q, not %q", resp.Name, k.name)
	case resp.SignatureCrc32c == nil || crc32c(resp.Signature) != int64(*resp.SignatureCrc32c):
		return nil, fmt.Errorf("gcpkms: the signature from %s failed its CRC32C check (corrupted in transit)", k.name)
	}
	return resp.Signature, nil
}

// plan is what Generate will do, checked without changing anything.
type plan struct {
	n      *keystore.KMSName
	want   algo
	level  string // SOFTWARE or HSM
	exists bool   // the crypto key exists: Generate adds a version
}

// check validates a generate request against the URI, the algorithms KMS
// offers and, when the crypto key exists, its version template (KMS fixes
// algorithm and protection level per key).
func (b *Backend) check(ctx context.Context, c *restClient, req keystore.GenerateRequest) (*plan, error) {
	n, err := kmsName(req.URI)
	if err != nil {
		return nil, err
	}
	if n.CryptoKey == "" {
		return nil, fmt.Errorf("%w: name the crypto key: %s/cryptoKeys/NAME", keystore.ErrBadURI, req.URI)
	}
	want, err := algorithmFor(req.Spec)
	if err != nil {
		return nil, err
	}
	p := &plan{n: n, want: want, level: "SOFTWARE"}
	switch strings.ToLower(req.ProtectionLevel) {
	case "", "software":
	case "hsm":
		p.level = "HSM"
	default:
		return nil, fmt.Errorf("gcpkms: protection level must be software or hsm, not %q", req.ProtectionLevel)
	}
	if n.Version != "" {
		if _, err := c.getCryptoKeyVersion(ctx, n.VersionName()); err == nil {
			return nil, fmt.Errorf("%w: %s", keystore.ErrExists, req.URI)
		}
		return nil, fmt.Errorf("%w: KMS numbers versions itself; give the key URI without /cryptoKeyVersions/%s", keystore.ErrBadURI, n.Version)
	}
	key, err := c.getCryptoKey(ctx, n.KeyName())
	switch {
	case err == nil:
		var tmpl cryptoKeyVersionTemplate
		if key.VersionTemplate != nil {
			tmpl = *key.VersionTemplate
		}
		if key.Purpose != "ASYMMETRIC_SIGN" || tmpl.Algorithm != want {
			return nil, fmt.Errorf("gcpkms: %s exists with %s (%s); a new version would have that algorithm, not %s", n.KeyName(), tmpl.Algorithm, key.Purpose, want)
		}
		// An explicit protection level must match the key's: KMS gives a
		// new version the key's own.
		if req.ProtectionLevel != "" && tmpl.ProtectionLevel != p.level {
			return nil, fmt.Errorf("gcpkms: %s exists with protection level %s; a new version would have that, not %s (leave out --protection-level, or use another key)", n.KeyName(), tmpl.ProtectionLevel, p.level)
		}
		p.level, p.exists = tmpl.ProtectionLevel, true
	case statusOf(err) == "NOT_FOUND":
	default:
		return nil, mapErr(err, "look up", n.KeyName(), "cloudkms.cryptoKeys.get")
	}
	return p, nil
}

// CheckGenerate implements keystore.GenerateChecker.
func (b *Backend) CheckGenerate(ctx context.Context, req keystore.GenerateRequest) error {
	c, err := b.client(ctx, req.Options)
	if err != nil {
		return err
	}
	_, err = b.check(ctx, c, req)
	return err
}

// Generate creates a crypto key (or, if the key exists, a new version of
// it, for rotation) and waits until the version is enabled.
func (b *Backend) Generate(ctx context.Context, req keystore.GenerateRequest) (keystore.Key, error) {
	c, err := b.client(ctx, req.Options)
	if err != nil {
		return nil, err
	}
	p, err := b.check(ctx, c, req)
	if err != nil {
		return nil, err
	}
	n, want, level := p.n, p.want, p.level
	log := req.Logger()
	var version *cryptoKeyVersion
	if p.exists {
		log.Info("adding a new version to an existing key", "key", n.KeyName())
		version, err = c.createCryptoKeyVersion(ctx, n.KeyName())
		if err != nil {
			return nil, mapErr(err, "create a version of", n.KeyName(), "cloudkms.cryptoKeyVersions.create")
		}
	} else {
		log.Info("creating crypto key", "key", n.KeyName(), "algorithm", want, "protection", level)
		created, err := c.createCryptoKey(ctx, n.KeyRingName(), n.CryptoKey, &cryptoKey{
			Purpose:         "ASYMMETRIC_SIGN",
			VersionTemplate: &cryptoKeyVersionTemplate{Algorithm: want, ProtectionLevel: level},
		})
		if err != nil {
			return nil, mapErr(err, "create", n.KeyName(), "cloudkms.cryptoKeys.create")
		}
		// Asymmetric keys have no primary version: the one KMS made with
		// the key is version 1.
		version = created.Primary
		if version == nil || version.Name == "" {
			version = &cryptoKeyVersion{Name: n.KeyName() + "/cryptoKeyVersions/1"}
		}
	}
	name := version.Name
	if !strings.HasPrefix(name, n.KeyName()+"/cryptoKeyVersions/") {
		return nil, fmt.Errorf("gcpkms: Cloud KMS created %q, not a version of %s", name, n.KeyName())
	}
	for version.State != "ENABLED" {
		switch version.State {
		case "PENDING_GENERATION", "", "CRYPTO_KEY_VERSION_STATE_UNSPECIFIED":
		default:
			return nil, fmt.Errorf("gcpkms: %s is %s, not ENABLED", name, version.State)
		}
		log.Info("waiting for Cloud KMS to generate the key", "version", name)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("gcpkms: gave up waiting for %s to be generated: %w", name, ctx.Err())
		case <-time.After(PollInterval):
		}
		version, err = c.getCryptoKeyVersion(ctx, name)
		if err != nil {
			return nil, mapErr(err, "check", name, "cloudkms.cryptoKeyVersions.get")
		}
	}
	return openVersion(ctx, c, name, req.KMSTimeout)
}

// List returns the versions of a key, or of every signing key in a key ring.
func (b *Backend) List(ctx context.Context, prefix *keystore.URI, opts keystore.Options) ([]keystore.KeyInfo, error) {
	n, err := kmsName(prefix)
	if err != nil {
		return nil, err
	}
	c, err := b.client(ctx, opts)
	if err != nil {
		return nil, err
	}
	var keys []string
	switch {
	case n.VersionName() != "":
		v, err := c.getCryptoKeyVersion(ctx, n.VersionName())
		if err != nil {
			return nil, mapErr(err, "get", n.VersionName(), "cloudkms.cryptoKeyVersions.get")
		}
		return []keystore.KeyInfo{info(ctx, c, v, opts.KMSTimeout)}, nil
	case n.KeyName() != "":
		keys = []string{n.KeyName()}
	default:
		all, err := c.listCryptoKeys(ctx, n.KeyRingName())
		if err != nil {
			return nil, mapErr(err, "list keys in", n.KeyRingName(), "cloudkms.cryptoKeys.list")
		}
		for _, k := range all {
			if k.Purpose == "ASYMMETRIC_SIGN" {
				keys = append(keys, k.Name)
			}
		}
	}
	var out []keystore.KeyInfo
	for _, key := range keys {
		versions, err := c.listCryptoKeyVersions(ctx, key)
		if err != nil {
			return nil, mapErr(err, "list versions of", key, "cloudkms.cryptoKeyVersions.list")
		}
		for i := range versions {
			out = append(out, info(ctx, c, &versions[i], opts.KMSTimeout))
		}
	}
	return out, nil
}

func info(ctx context.Context, c *restClient, v *cryptoKeyVersion, timeout time.Duration) keystore.KeyInfo {
	state := v.State
	if state == "" {
		state = "CRYPTO_KEY_VERSION_STATE_UNSPECIFIED"
	}
	in := keystore.KeyInfo{URI: versionURI(v.Name), State: state}
	if a, ok := joseFor[v.Algorithm]; ok {
		in.Algs = []jose.SignatureAlgorithm{a}
	}
	if v.State == "ENABLED" {
		k, err := openVersion(ctx, c, v.Name, timeout)
		switch {
		case err == nil:
			in.Public = k.pub
		case errors.Is(err, keystore.ErrPermission):
			// Listing needs only cloudkms.cryptoKeyVersions.list; say why the
			// kid is missing.
			in.State += " (no public key: needs cloudkms.cryptoKeyVersions.viewPublicKey)"
		default:
			in.State += " (public key unreadable: " + err.Error() + ")"
		}
	}
	return in
}

// Delete schedules the key version's destruction (Cloud KMS keeps it
// restorable for the key's destroy-scheduled duration, 30 days by default).
// A version already scheduled for destruction, or destroyed, is an error
// wrapping keystore.ErrNotFound, so a retried delete is not a failure
// (Cloud KMS itself refuses it with FAILED_PRECONDITION).
func (b *Backend) Delete(ctx context.Context, u *keystore.URI, opts keystore.Options) error {
	n, err := kmsName(u)
	if err != nil {
		return err
	}
	if n.VersionName() == "" {
		return fmt.Errorf("%w: name the version to destroy: …/cryptoKeyVersions/N", keystore.ErrBadURI)
	}
	c, err := b.client(ctx, opts)
	if err != nil {
		return err
	}
	_, err = c.destroyCryptoKeyVersion(ctx, n.VersionName())
	if statusOf(err) == "FAILED_PRECONDITION" {
		v, gerr := c.getCryptoKeyVersion(ctx, n.VersionName())
		if gerr != nil {
			return mapErr(gerr, "check", n.VersionName(), "cloudkms.cryptoKeyVersions.get")
		}
		switch st := v.State; st {
		case "DESTROY_SCHEDULED", "DESTROYED":
			return fmt.Errorf("%w: %s is already scheduled for destruction (%s)", keystore.ErrNotFound, n.VersionName(), st)
		default:
			return fmt.Errorf("gcpkms: destroy %s: only an enabled or disabled version can be destroyed, it is %s (%s)", n.VersionName(), st, message(err))
		}
	}
	if err != nil {
		return mapErr(err, "destroy", n.VersionName(), "cloudkms.cryptoKeyVersions.destroy")
	}
	return nil
}

// SetEnabled sets the key version's state to DISABLED or ENABLED. A
// disabled version refuses to sign until it is enabled again; a destroyed
// or destroy-scheduled one cannot be enabled here (restore it first with
// gcloud kms keys versions restore).
func (b *Backend) SetEnabled(ctx context.Context, u *keystore.URI, enabled bool, opts keystore.Options) error {
	n, err := kmsName(u)
	if err != nil {
		return err
	}
	if n.VersionName() == "" {
		return fmt.Errorf("%w: name the version: …/cryptoKeyVersions/N", keystore.ErrBadURI)
	}
	c, err := b.client(ctx, opts)
	if err != nil {
		return err
	}
	state, what := "DISABLED", "disable"
	if enabled {
		state, what = "ENABLED", "enable"
	}
	v, err := c.setState(ctx, n.VersionName(), state)
	if err != nil {
		if statusOf(err) == "FAILED_PRECONDITION" {
			return fmt.Errorf("gcpkms: %s %s: only an enabled or disabled version can be switched (%s)", what, n.VersionName(), message(err))
		}
		return mapErr(err, what, n.VersionName(), "cloudkms.cryptoKeyVersions.update")
	}
	if v.Name != n.VersionName() || v.State != state {
		return fmt.Errorf("gcpkms: %s %s: KMS answered for %s in state %s", what, n.VersionName(), v.Name, v.State)
	}
	return nil
}
