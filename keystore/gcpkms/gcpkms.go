package gcpkms

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"time"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/go-jose/go-jose/v4"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jwkctl/jwkctl/internal/loopback"
	"github.com/jwkctl/jwkctl/keystore"
)

func init() { keystore.Register(New()) }

// Client is the part of the Cloud KMS API jwkctl uses; *kms.KeyManagementClient
// satisfies it.
type Client interface {
	GetPublicKey(context.Context, *kmspb.GetPublicKeyRequest, ...gax.CallOption) (*kmspb.PublicKey, error)
	AsymmetricSign(context.Context, *kmspb.AsymmetricSignRequest, ...gax.CallOption) (*kmspb.AsymmetricSignResponse, error)
	GetCryptoKey(context.Context, *kmspb.GetCryptoKeyRequest, ...gax.CallOption) (*kmspb.CryptoKey, error)
	CreateCryptoKey(context.Context, *kmspb.CreateCryptoKeyRequest, ...gax.CallOption) (*kmspb.CryptoKey, error)
	CreateCryptoKeyVersion(context.Context, *kmspb.CreateCryptoKeyVersionRequest, ...gax.CallOption) (*kmspb.CryptoKeyVersion, error)
	GetCryptoKeyVersion(context.Context, *kmspb.GetCryptoKeyVersionRequest, ...gax.CallOption) (*kmspb.CryptoKeyVersion, error)
	ListCryptoKeys(context.Context, *kmspb.ListCryptoKeysRequest, ...gax.CallOption) *kms.CryptoKeyIterator
	ListCryptoKeyVersions(context.Context, *kmspb.ListCryptoKeyVersionsRequest, ...gax.CallOption) *kms.CryptoKeyVersionIterator
	DestroyCryptoKeyVersion(context.Context, *kmspb.DestroyCryptoKeyVersionRequest, ...gax.CallOption) (*kmspb.CryptoKeyVersion, error)
	UpdateCryptoKeyVersion(context.Context, *kmspb.UpdateCryptoKeyVersionRequest, ...gax.CallOption) (*kmspb.CryptoKeyVersion, error)
	Close() error
}

// PollInterval is how often Generate asks whether a new version has left
// PENDING_GENERATION. Tests shorten it.
var PollInterval = time.Second

// Backend talks to Cloud KMS, one client per endpoint.
type Backend struct {
	mu      sync.Mutex
	clients map[string]Client
	// Dial makes a client for an endpoint ("" = Google's); tests may
	// replace it.
	Dial func(ctx context.Context, endpoint string) (Client, error)
}

var (
	_ keystore.Backend         = (*Backend)(nil)
	_ keystore.Lister          = (*Backend)(nil)
	_ keystore.Deleter         = (*Backend)(nil)
	_ keystore.Disabler        = (*Backend)(nil)
	_ keystore.GenerateChecker = (*Backend)(nil)
	_ io.Closer                = (*Backend)(nil)
)

// New returns a Backend that dials Cloud KMS with Application Default
// Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, workload identity),
// or a loopback endpoint without TLS or credentials (a fake).
func New() *Backend { return &Backend{clients: map[string]Client{}, Dial: dial} }

func dial(ctx context.Context, endpoint string) (Client, error) {
	var opts []option.ClientOption
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
		if loopback.HostPort(endpoint) {
			opts = append(opts, option.WithoutAuthentication(),
				option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		}
	}
	c, err := kms.NewKeyManagementClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcpkms: connect to Cloud KMS: %v (are Application Default Credentials set up? gcloud auth application-default login, or GOOGLE_APPLICATION_CREDENTIALS)", err)
	}
	return c, nil
}

// Scheme is "gcpkms".
func (b *Backend) Scheme() string { return keystore.SchemeGCPKMS }

func (b *Backend) client(ctx context.Context, opts keystore.Options) (Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[opts.Endpoint]; ok {
		return c, nil
	}
	c, err := b.Dial(ctx, opts.Endpoint)
	if err != nil {
		return nil, err
	}
	b.clients[opts.Endpoint] = c
	return c, nil
}

// Close closes the clients.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for k, c := range b.clients {
		errs = append(errs, c.Close())
		delete(b.clients, k)
	}
	return errors.Join(errs...)
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

// mapErr turns gRPC status errors into keystore sentinels with the IAM
// permission that is missing.
func mapErr(err error, what, name, permission string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("gcpkms: %s %s: %w", what, name, err)
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.PermissionDenied:
		return fmt.Errorf("%w: %s %s: the caller needs IAM permission %s (%s)", keystore.ErrPermission, what, name, permission, st.Message())
	case codes.Unauthenticated:
		return fmt.Errorf("%w: %s %s: no valid Google credentials (run gcloud auth application-default login, or set GOOGLE_APPLICATION_CREDENTIALS; on GKE check workload identity): %s", keystore.ErrPermission, what, name, st.Message())
	case codes.NotFound:
		return fmt.Errorf("%w: %s does not exist in Cloud KMS (jwkctl keys list on its key ring shows what is there)", keystore.ErrNotFound, name)
	case codes.FailedPrecondition:
		return fmt.Errorf("gcpkms: %s %s: the key version is not enabled (disabled, destroyed or still being generated): %s", what, name, st.Message())
	case codes.AlreadyExists:
		return fmt.Errorf("%w: %s", keystore.ErrExists, name)
	case codes.DeadlineExceeded:
		return fmt.Errorf("gcpkms: %s %s: %w", what, name, context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("gcpkms: %s %s: %w", what, name, context.Canceled)
	}
	return fmt.Errorf("gcpkms: %s %s: %w", what, name, err)
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) int64 { return int64(crc32.Checksum(b, crcTable)) }

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

func openVersion(ctx context.Context, c Client, name string, timeout time.Duration) (*Key, error) {
	var pk *kmspb.PublicKey
	err := retrying(ctx, timeout, "get public key of", name, "cloudkms.cryptoKeyVersions.viewPublicKey", func(ctx context.Context, opts ...gax.CallOption) (err error) {
		pk, err = c.GetPublicKey(ctx, &kmspb.GetPublicKeyRequest{Name: name}, opts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	if pk.GetName() != name {
		return nil, fmt.Errorf("gcpkms: GetPublicKey answered for %q, not %q", pk.GetName(), name)
	}
	if pk.GetPemCrc32C() == nil || crc32c([]byte(pk.GetPem())) != pk.GetPemCrc32C().GetValue() {
		return nil, fmt.Errorf("gcpkms: the public key of %s failed its CRC32C check (corrupted in transit)", name)
	}
	alg, ok := joseFor[pk.GetAlgorithm()]
	if !ok {
		return nil, fmt.Errorf("gcpkms: %s uses %s, which is not a JOSE signing algorithm jwkctl supports", name, pk.GetAlgorithm())
	}
	blk, _ := pem.Decode([]byte(pk.GetPem()))
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
	return &Key{c: c, name: name, uri: versionURI(name), pub: pub, algorithm: pk.GetAlgorithm(), alg: alg, hash: hashOf(pk.GetAlgorithm()), timeout: timeout}, nil
}

// Key is one Cloud KMS key version. Its public key is fetched once; each
// signature is exactly one AsymmetricSign call.
type Key struct {
	c         Client
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
	keyPSS := strings.HasPrefix(k.algorithm.String(), "RSA_SIGN_PSS_")
	switch {
	case keyPSS && !isPSS:
		return nil, fmt.Errorf("gcpkms: %s is an RSA-PSS key (%s); it cannot make a PKCS#1 v1.5 signature", k.name, k.algorithm)
	case !keyPSS && isPSS:
		return nil, fmt.Errorf("gcpkms: %s is a %s key; it cannot make an RSA-PSS signature", k.name, k.algorithm)
	case isPSS && pss.SaltLength != k.hash.Size() && pss.SaltLength != rsa.PSSSaltLengthEqualsHash:
		return nil, fmt.Errorf("gcpkms: Cloud KMS signs PSS with a salt as long as the hash, not %d bytes", pss.SaltLength)
	}
	d := &kmspb.Digest{}
	switch k.hash {
	case crypto.SHA256:
		d.Digest = &kmspb.Digest_Sha256{Sha256: digest}
	case crypto.SHA384:
		d.Digest = &kmspb.Digest_Sha384{Sha384: digest}
	case crypto.SHA512:
		d.Digest = &kmspb.Digest_Sha512{Sha512: digest}
	}
	var resp *kmspb.AsymmetricSignResponse
	err := retrying(context.Background(), k.timeout, "sign with", k.name, "cloudkms.cryptoKeyVersions.useToSign", func(ctx context.Context, opts ...gax.CallOption) (err error) {
		resp, err = k.c.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{
			Name:         k.name,
			Digest:       d,
			DigestCrc32C: wrapperspb.Int64(crc32c(digest)),
		}, opts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !resp.GetVerifiedDigestCrc32C():
		return nil, fmt.Errorf("gcpkms: Cloud KMS did not confirm the digest's CRC32C for %s (corrupted in transit)", k.name)
	case resp.GetName() != k.name:
		return nil, fmt.Errorf("gcpkms: Cloud KMS answered for %q, not %q", resp.GetName(), k.name)
	case resp.GetSignatureCrc32C() == nil || crc32c(resp.GetSignature()) != resp.GetSignatureCrc32C().GetValue():
		return nil, fmt.Errorf("gcpkms: the signature from %s failed its CRC32C check (corrupted in transit)", k.name)
	}
	return resp.GetSignature(), nil
}

// plan is what Generate will do, checked without changing anything.
type plan struct {
	n      *keystore.KMSName
	want   kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm
	level  kmspb.ProtectionLevel
	exists bool // the crypto key exists: Generate adds a version
}

// check validates a generate request against the URI, the algorithms KMS
// offers and, when the crypto key exists, its version template (KMS fixes
// algorithm and protection level per key).
func (b *Backend) check(ctx context.Context, c Client, req keystore.GenerateRequest) (*plan, error) {
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
	p := &plan{n: n, want: want, level: kmspb.ProtectionLevel_SOFTWARE}
	switch strings.ToLower(req.ProtectionLevel) {
	case "", "software":
	case "hsm":
		p.level = kmspb.ProtectionLevel_HSM
	default:
		return nil, fmt.Errorf("gcpkms: protection level must be software or hsm, not %q", req.ProtectionLevel)
	}
	if n.Version != "" {
		if _, err := c.GetCryptoKeyVersion(ctx, &kmspb.GetCryptoKeyVersionRequest{Name: n.VersionName()}); err == nil {
			return nil, fmt.Errorf("%w: %s", keystore.ErrExists, req.URI)
		}
		return nil, fmt.Errorf("%w: KMS numbers versions itself; give the key URI without /cryptoKeyVersions/%s", keystore.ErrBadURI, n.Version)
	}
	key, err := c.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: n.KeyName()})
	switch {
	case err == nil:
		tmpl := key.GetVersionTemplate()
		if key.GetPurpose() != kmspb.CryptoKey_ASYMMETRIC_SIGN || tmpl.GetAlgorithm() != want {
			return nil, fmt.Errorf("gcpkms: %s exists with %s (%s); a new version would have that algorithm, not %s", n.KeyName(), tmpl.GetAlgorithm(), key.GetPurpose(), want)
		}
		// An explicit protection level must match the key's: KMS gives a
		// new version the key's own.
		if req.ProtectionLevel != "" && tmpl.GetProtectionLevel() != p.level {
			return nil, fmt.Errorf("gcpkms: %s exists with protection level %s; a new version would have that, not %s (leave out --protection-level, or use another key)", n.KeyName(), tmpl.GetProtectionLevel(), p.level)
		}
		p.level, p.exists = tmpl.GetProtectionLevel(), true
	case status.Code(err) == codes.NotFound:
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
	var version *kmspb.CryptoKeyVersion
	if p.exists {
		log.Info("adding a new version to an existing key", "key", n.KeyName())
		version, err = c.CreateCryptoKeyVersion(ctx, &kmspb.CreateCryptoKeyVersionRequest{Parent: n.KeyName()})
		if err != nil {
			return nil, mapErr(err, "create a version of", n.KeyName(), "cloudkms.cryptoKeyVersions.create")
		}
	} else {
		log.Info("creating crypto key", "key", n.KeyName(), "algorithm", want.String(), "protection", level.String())
		created, err := c.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{
			Parent:      n.KeyRingName(),
			CryptoKeyId: n.CryptoKey,
			CryptoKey: &kmspb.CryptoKey{
				Purpose:         kmspb.CryptoKey_ASYMMETRIC_SIGN,
				VersionTemplate: &kmspb.CryptoKeyVersionTemplate{Algorithm: want, ProtectionLevel: level},
			},
		})
		if err != nil {
			return nil, mapErr(err, "create", n.KeyName(), "cloudkms.cryptoKeys.create")
		}
		version = created.GetPrimary()
		if version == nil || version.GetName() == "" {
			version = &kmspb.CryptoKeyVersion{Name: n.KeyName() + "/cryptoKeyVersions/1"}
		}
	}
	name := version.GetName()
	for version.GetState() != kmspb.CryptoKeyVersion_ENABLED {
		switch version.GetState() {
		case kmspb.CryptoKeyVersion_PENDING_GENERATION, kmspb.CryptoKeyVersion_CRYPTO_KEY_VERSION_STATE_UNSPECIFIED:
		default:
			return nil, fmt.Errorf("gcpkms: %s is %s, not ENABLED", name, version.GetState())
		}
		log.Info("waiting for Cloud KMS to generate the key", "version", name)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("gcpkms: gave up waiting for %s to be generated: %w", name, ctx.Err())
		case <-time.After(PollInterval):
		}
		version, err = c.GetCryptoKeyVersion(ctx, &kmspb.GetCryptoKeyVersionRequest{Name: name})
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
		v, err := c.GetCryptoKeyVersion(ctx, &kmspb.GetCryptoKeyVersionRequest{Name: n.VersionName()})
		if err != nil {
			return nil, mapErr(err, "get", n.VersionName(), "cloudkms.cryptoKeyVersions.get")
		}
		return []keystore.KeyInfo{info(ctx, c, v, opts.KMSTimeout)}, nil
	case n.KeyName() != "":
		keys = []string{n.KeyName()}
	default:
		it := c.ListCryptoKeys(ctx, &kmspb.ListCryptoKeysRequest{Parent: n.KeyRingName()})
		for {
			k, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				return nil, mapErr(err, "list keys in", n.KeyRingName(), "cloudkms.cryptoKeys.list")
			}
			if k.GetPurpose() == kmspb.CryptoKey_ASYMMETRIC_SIGN {
				keys = append(keys, k.GetName())
			}
		}
	}
	var out []keystore.KeyInfo
	for _, key := range keys {
		it := c.ListCryptoKeyVersions(ctx, &kmspb.ListCryptoKeyVersionsRequest{Parent: key})
		for {
			v, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				return nil, mapErr(err, "list versions of", key, "cloudkms.cryptoKeyVersions.list")
			}
			out = append(out, info(ctx, c, v, opts.KMSTimeout))
		}
	}
	return out, nil
}

func info(ctx context.Context, c Client, v *kmspb.CryptoKeyVersion, timeout time.Duration) keystore.KeyInfo {
	in := keystore.KeyInfo{URI: versionURI(v.GetName()), State: v.GetState().String()}
	if a, ok := joseFor[v.GetAlgorithm()]; ok {
		in.Algs = []jose.SignatureAlgorithm{a}
	}
	if v.GetState() == kmspb.CryptoKeyVersion_ENABLED {
		k, err := openVersion(ctx, c, v.GetName(), timeout)
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
	_, err = c.DestroyCryptoKeyVersion(ctx, &kmspb.DestroyCryptoKeyVersionRequest{Name: n.VersionName()})
	if status.Code(err) == codes.FailedPrecondition {
		v, gerr := c.GetCryptoKeyVersion(ctx, &kmspb.GetCryptoKeyVersionRequest{Name: n.VersionName()})
		if gerr != nil {
			return mapErr(gerr, "check", n.VersionName(), "cloudkms.cryptoKeyVersions.get")
		}
		switch st := v.GetState(); st {
		case kmspb.CryptoKeyVersion_DESTROY_SCHEDULED, kmspb.CryptoKeyVersion_DESTROYED:
			return fmt.Errorf("%w: %s is already scheduled for destruction (%s)", keystore.ErrNotFound, n.VersionName(), st)
		default:
			return fmt.Errorf("gcpkms: destroy %s: only an enabled or disabled version can be destroyed, it is %s (%s)", n.VersionName(), st, status.Convert(err).Message())
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
	state, what := kmspb.CryptoKeyVersion_DISABLED, "disable"
	if enabled {
		state, what = kmspb.CryptoKeyVersion_ENABLED, "enable"
	}
	v, err := c.UpdateCryptoKeyVersion(ctx, &kmspb.UpdateCryptoKeyVersionRequest{
		CryptoKeyVersion: &kmspb.CryptoKeyVersion{Name: n.VersionName(), State: state},
		UpdateMask:       &fieldmaskpb.FieldMask{Paths: []string{"state"}},
	})
	if err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			return fmt.Errorf("gcpkms: %s %s: only an enabled or disabled version can be switched (%s)", what, n.VersionName(), status.Convert(err).Message())
		}
		return mapErr(err, what, n.VersionName(), "cloudkms.cryptoKeyVersions.update")
	}
	if v.GetName() != n.VersionName() || v.GetState() != state {
		return fmt.Errorf("gcpkms: %s %s: KMS answered for %s in state %s", what, n.VersionName(), v.GetName(), v.GetState())
	}
	return nil
}
