package awskms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/loopback"
	"github.com/jwkctl/jwkctl/keystore"
)

func init() { keystore.Register(New()) }

// Client is the part of the AWS KMS API jwkctl uses; *kms.Client
// satisfies it.
type Client interface {
	GetPublicKey(context.Context, *kms.GetPublicKeyInput, ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
	Sign(context.Context, *kms.SignInput, ...func(*kms.Options)) (*kms.SignOutput, error)
	DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	CreateKey(context.Context, *kms.CreateKeyInput, ...func(*kms.Options)) (*kms.CreateKeyOutput, error)
	CreateAlias(context.Context, *kms.CreateAliasInput, ...func(*kms.Options)) (*kms.CreateAliasOutput, error)
	ListAliases(context.Context, *kms.ListAliasesInput, ...func(*kms.Options)) (*kms.ListAliasesOutput, error)
	DisableKey(context.Context, *kms.DisableKeyInput, ...func(*kms.Options)) (*kms.DisableKeyOutput, error)
	EnableKey(context.Context, *kms.EnableKeyInput, ...func(*kms.Options)) (*kms.EnableKeyOutput, error)
	ScheduleKeyDeletion(context.Context, *kms.ScheduleKeyDeletionInput, ...func(*kms.Options)) (*kms.ScheduleKeyDeletionOutput, error)
}

// Target is where a client talks to: an endpoint override, a region and
// a shared-config profile, each empty for the SDK's default.
type Target struct {
	Endpoint, Region, Profile string
}

// DeletionWindowDays is how long a deleted key stays pending deletion
// (and can be restored with aws kms cancel-key-deletion). It is AWS's
// default and longest window.
const DeletionWindowDays = 30

// cleanupWindowDays is the window for a key Generate made but could not
// name: nobody has used it, so AWS's shortest window.
const cleanupWindowDays = 7

// MaxAttempts is how often the SDK tries a call that AWS throttled or
// that failed in transit before jwkctl reports it.
const MaxAttempts = 3

// Backend talks to AWS KMS, one client per target.
type Backend struct {
	mu      sync.Mutex
	clients map[Target]Client
	keys    map[cacheKey]*Key
	// Dial makes a client for a target; tests may replace it.
	Dial func(ctx context.Context, t Target) (Client, error)
}

type cacheKey struct {
	t   Target
	key string
}

var (
	_ keystore.Backend         = (*Backend)(nil)
	_ keystore.Lister          = (*Backend)(nil)
	_ keystore.Deleter         = (*Backend)(nil)
	_ keystore.Disabler        = (*Backend)(nil)
	_ keystore.GenerateChecker = (*Backend)(nil)
)

// New returns a Backend that loads the AWS SDK's configuration only when
// a key is first used.
func New() *Backend {
	return &Backend{clients: map[Target]Client{}, keys: map[cacheKey]*Key{}, Dial: Dial}
}

// retryBackoff, when set (by tests), replaces the SDK's backoff between
// attempts.
var retryBackoff retry.BackoffDelayer

// Dial builds a KMS client with the SDK's default credential chain, or
// for a loopback endpoint plain http with dummy credentials (a fake).
func Dial(ctx context.Context, t Target) (Client, error) {
	var lo []func(*config.LoadOptions) error
	if t.Region != "" {
		lo = append(lo, config.WithRegion(t.Region))
	}
	if t.Profile != "" {
		lo = append(lo, config.WithSharedConfigProfile(t.Profile))
	}
	endpoint, local, err := endpointURL(t.Endpoint)
	if err != nil {
		return nil, err
	}
	if local {
		lo = append(lo, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("jwkctl-local", "jwkctl-local", "")))
	}
	lo = append(lo, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = MaxAttempts
			if retryBackoff != nil {
				o.Backoff = retryBackoff
			}
		})
	}))
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("awskms: load the AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("awskms: no AWS region: add ?region=eu-north-1 (for example) to the key URI, name the key by ARN, or set AWS_REGION")
	}
	return kms.NewFromConfig(cfg, func(o *kms.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// endpointURL turns --kms-endpoint into a URL: HOST:PORT is https, or
// plain http on loopback; an http:// URL must be loopback.
func endpointURL(ep string) (url string, local bool, err error) {
	if ep == "" {
		return "", false, nil
	}
	scheme, hostport, hasScheme := strings.Cut(ep, "://")
	if !hasScheme {
		scheme, hostport = "", ep
	}
	host := strings.SplitN(hostport, "/", 2)[0]
	local = loopback.HostPort(host)
	switch {
	case scheme == "" && local:
		return "http://" + hostport, true, nil
	case scheme == "":
		return "https://" + hostport, false, nil
	case scheme == "https":
		return ep, local, nil
	case scheme == "http" && local:
		return ep, true, nil
	}
	return "", false, fmt.Errorf("awskms: endpoint %s: plain http only to loopback; use https://", ep)
}

// Scheme is "awskms".
func (b *Backend) Scheme() string { return keystore.SchemeAWSKMS }

func awsName(u *keystore.URI) (*keystore.AWSKMSName, error) {
	if u == nil || u.Scheme != keystore.SchemeAWSKMS || u.AWSKMS == nil {
		return nil, fmt.Errorf("%w: want an awskms:/// URI", keystore.ErrBadURI)
	}
	return u.AWSKMS, nil
}

// oneKey refuses a listing prefix where one key must be named.
func oneKey(u *keystore.URI) (*keystore.AWSKMSName, error) {
	n, err := awsName(u)
	if err != nil {
		return nil, err
	}
	if n.IsAlias() && strings.HasSuffix(n.AliasName(), "/") {
		return nil, fmt.Errorf("%w: %s names no key: give alias/NAME, a key ID or an ARN", keystore.ErrBadURI, u)
	}
	return n, nil
}

func (b *Backend) client(ctx context.Context, n *keystore.AWSKMSName, opts keystore.Options) (Client, Target, error) {
	t := Target{Endpoint: opts.Endpoint, Region: n.Region, Profile: n.Profile}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[t]; ok {
		return c, t, nil
	}
	c, err := b.Dial(ctx, t)
	if err != nil {
		return nil, t, err
	}
	b.clients[t] = c
	return c, t, nil
}

// Open returns the key, asking KMS for its public key once per process.
func (b *Backend) Open(ctx context.Context, u *keystore.URI, opts keystore.Options) (keystore.Key, error) {
	n, err := oneKey(u)
	if err != nil {
		return nil, err
	}
	c, t, err := b.client(ctx, n, opts)
	if err != nil {
		return nil, err
	}
	k, err := b.open(ctx, c, t, n.Key, u)
	if err != nil {
		return nil, err
	}
	// Keys are shared per process; the budget is a process-wide setting
	// (one --kms-timeout), so the last one given holds.
	if opts.KMSTimeout > 0 {
		k.timeout.Store(int64(opts.KMSTimeout))
	}
	return k, nil
}

// open fetches the public key of id (a key ID, ARN or alias) and names
// the key u. Signing goes to the key ARN KMS answered with, so a
// re-pointed alias cannot swap the key under a signer.
func (b *Backend) open(ctx context.Context, c Client, t Target, id string, u *keystore.URI) (*Key, error) {
	ck := cacheKey{t, id}
	b.mu.Lock()
	k, ok := b.keys[ck]
	b.mu.Unlock()
	if ok {
		return k, nil
	}
	out, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
	if err != nil {
		return nil, mapErr(err, "get the public key of", u, "kms:GetPublicKey")
	}
	arn := aws.ToString(out.KeyId)
	if arn == "" {
		return nil, fmt.Errorf("awskms: GetPublicKey for %s named no key", u)
	}
	if out.KeyUsage != types.KeyUsageTypeSignVerify {
		return nil, fmt.Errorf("awskms: %s is a %s key, not SIGN_VERIFY: it cannot sign (create a signing key with jwkctl keys generate)", u, out.KeyUsage)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("awskms: the public key of %s: %v", u, err)
	}
	if err := keystore.CheckPublicKey(pub); err != nil {
		return nil, fmt.Errorf("awskms: %s: %w", u, err)
	}
	if err := matchesSpec(pub, out.KeySpec); err != nil {
		return nil, fmt.Errorf("awskms: %s: %v", u, err)
	}
	algs := algsOf(out.SigningAlgorithms)
	if len(algs) == 0 {
		return nil, fmt.Errorf("awskms: %s signs with %v, none of them a JOSE algorithm jwkctl supports", u, out.SigningAlgorithms)
	}
	k = &Key{c: c, arn: arn, uri: u, pub: pub, algs: algs, specs: out.SigningAlgorithms}
	b.mu.Lock()
	b.keys[ck] = k
	b.mu.Unlock()
	return k, nil
}

// matchesSpec checks that the public key is what KMS says the key is.
func matchesSpec(pub crypto.PublicKey, spec types.KeySpec) error {
	want := map[types.KeySpec]string{
		types.KeySpecRsa2048: "RSA-2048", types.KeySpecRsa3072: "RSA-3072", types.KeySpecRsa4096: "RSA-4096",
		types.KeySpecEccNistP256: "P-256", types.KeySpecEccNistP384: "P-384", types.KeySpecEccNistP521: "P-521",
	}[spec]
	if want == "" {
		return fmt.Errorf("key spec %s is not one jwkctl signs with (RSA_2048/3072/4096, ECC_NIST_P256/P384/P521)", spec)
	}
	got := ""
	switch p := pub.(type) {
	case *rsa.PublicKey:
		got = fmt.Sprintf("RSA-%d", p.N.BitLen())
	case *ecdsa.PublicKey:
		got = p.Curve.Params().Name
	}
	if got != want {
		return fmt.Errorf("KMS says %s but the public key is %s", spec, got)
	}
	return nil
}

// forget drops cached keys with this ARN (deleted keys).
func (b *Backend) forget(arn string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ck, k := range b.keys {
		if k.arn == arn {
			delete(b.keys, ck)
		}
	}
}

// Key is one AWS KMS key. Its public key is fetched once; each signature
// is exactly one Sign call.
type Key struct {
	// timeout bounds one Sign (Options.KMSTimeout; 0: 30 s).
	timeout atomic.Int64
	c       Client
	arn     string
	uri     *keystore.URI
	pub     crypto.PublicKey
	algs    []jose.SignatureAlgorithm
	specs   []types.SigningAlgorithmSpec
}

var (
	_ keystore.Key           = (*Key)(nil)
	_ keystore.AlgRestricted = (*Key)(nil)
)

// URI names the key as it was opened (an alias stays an alias).
func (k *Key) URI() *keystore.URI { return k.uri }

// ARN is the key's ARN, which signing uses.
func (k *Key) ARN() string { return k.arn }

// Public is the cached public key.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Algs are the JOSE algorithms of the key's KMS signing algorithms.
func (k *Key) Algs() []jose.SignatureAlgorithm { return k.algs }

// Sign sends the digest to KMS (MessageType DIGEST) and returns what KMS
// signs: PKCS#1 v1.5 or PSS (salt as long as the hash) for RSA, ASN.1 DER
// for ECDSA, as crypto.Signer promises.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	h := opts.HashFunc()
	if h == 0 || len(digest) != h.Size() {
		return nil, fmt.Errorf("awskms: %s signs SHA-256, SHA-384 or SHA-512 digests, not %v of %d bytes", k.uri, h, len(digest))
	}
	_, isRSA := k.pub.(*rsa.PublicKey)
	pss, isPSS := opts.(*rsa.PSSOptions)
	if isPSS && pss.SaltLength != h.Size() && pss.SaltLength != rsa.PSSSaltLengthEqualsHash {
		return nil, fmt.Errorf("awskms: AWS KMS signs PSS with a salt as long as the hash, not %d bytes", pss.SaltLength)
	}
	alg, ok := signingAlgFor(isRSA, isPSS, h)
	if !ok || !slices.Contains(k.specs, alg) {
		return nil, fmt.Errorf("awskms: %s cannot sign with %s (it offers %v)", k.uri, alg, k.specs)
	}
	timeout := time.Duration(k.timeout.Load())
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := k.c.Sign(ctx, &kms.SignInput{
		KeyId:            aws.String(k.arn),
		Message:          digest,
		MessageType:      types.MessageTypeDigest,
		SigningAlgorithm: alg,
	})
	if err != nil {
		return nil, mapErr(err, "sign with", k.uri, "kms:Sign")
	}
	switch {
	case aws.ToString(out.KeyId) != k.arn:
		return nil, fmt.Errorf("awskms: KMS answered for %q, not %q", aws.ToString(out.KeyId), k.arn)
	case out.SigningAlgorithm != alg:
		return nil, fmt.Errorf("awskms: KMS signed with %s, not %s", out.SigningAlgorithm, alg)
	case len(out.Signature) == 0:
		return nil, fmt.Errorf("awskms: KMS returned no signature for %s", k.uri)
	}
	return out.Signature, nil
}

// describe returns a key's metadata (any name: alias, ID or ARN).
func describe(ctx context.Context, c Client, n *keystore.AWSKMSName, u *keystore.URI) (*types.KeyMetadata, error) {
	out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(n.Key)})
	if err != nil {
		return nil, mapErr(err, "describe", u, "kms:DescribeKey")
	}
	if out.KeyMetadata == nil || aws.ToString(out.KeyMetadata.Arn) == "" {
		return nil, fmt.Errorf("awskms: DescribeKey for %s named no key", u)
	}
	return out.KeyMetadata, nil
}

// plan is what Generate will do, checked without changing anything.
type plan struct {
	alias string
	spec  types.KeySpec
}

// check validates a generate request: an alias that is free, a key spec
// KMS has.
func (b *Backend) check(ctx context.Context, c Client, req keystore.GenerateRequest) (*plan, error) {
	n, err := awsName(req.URI)
	if err != nil {
		return nil, err
	}
	alias := n.AliasName()
	if alias == "" || strings.HasSuffix(alias, "/") {
		return nil, fmt.Errorf("%w: name the new key by an alias, awskms:///alias/NAME?region=… (AWS KMS picks key IDs itself)", keystore.ErrBadURI)
	}
	if strings.HasPrefix(alias, "alias/aws/") {
		return nil, fmt.Errorf("%w: aliases under alias/aws/ are reserved for AWS managed keys", keystore.ErrBadURI)
	}
	if req.ProtectionLevel != "" {
		return nil, fmt.Errorf("awskms: --protection-level is for Cloud KMS; AWS KMS keeps every key in its own HSMs")
	}
	spec, err := specFor(req.Spec)
	if err != nil {
		return nil, err
	}
	md, err := describe(ctx, c, n, req.URI)
	switch {
	case err == nil:
		state := string(md.KeyState)
		if md.KeyState == types.KeyStatePendingDeletion && md.DeletionDate != nil {
			state += " until " + md.DeletionDate.UTC().Format(time.DateOnly)
		}
		return nil, fmt.Errorf("%w: %s already names key %s (%s); jwkctl never reuses an alias: pick another", keystore.ErrExists, req.URI, aws.ToString(md.KeyId), state)
	case errors.Is(err, keystore.ErrNotFound):
	default:
		return nil, err
	}
	return &plan{alias: alias, spec: spec}, nil
}

// CheckGenerate implements keystore.GenerateChecker.
func (b *Backend) CheckGenerate(ctx context.Context, req keystore.GenerateRequest) error {
	n, err := awsName(req.URI)
	if err != nil {
		return err
	}
	c, _, err := b.client(ctx, n, req.Options)
	if err != nil {
		return err
	}
	_, err = b.check(ctx, c, req)
	return err
}

// Generate creates a SIGN_VERIFY key and names it with the alias. If the
// alias cannot be made, the new key is scheduled for deletion again, so
// nothing unnamed is left behind.
func (b *Backend) Generate(ctx context.Context, req keystore.GenerateRequest) (keystore.Key, error) {
	n, err := awsName(req.URI)
	if err != nil {
		return nil, err
	}
	c, t, err := b.client(ctx, n, req.Options)
	if err != nil {
		return nil, err
	}
	p, err := b.check(ctx, c, req)
	if err != nil {
		return nil, err
	}
	log := req.Logger()
	log.Info("creating AWS KMS key", "alias", p.alias, "spec", string(p.spec))
	created, err := c.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:     p.spec,
		KeyUsage:    types.KeyUsageTypeSignVerify,
		Description: aws.String(fmt.Sprintf("jwkctl: OAuth client signing key %s (%s)", p.alias, req.Spec.Alg)),
		Tags: []types.Tag{
			{TagKey: aws.String("created-by"), TagValue: aws.String("jwkctl")},
			{TagKey: aws.String("jwkctl-alias"), TagValue: aws.String(p.alias)},
			{TagKey: aws.String("jwkctl-alg"), TagValue: aws.String(string(req.Spec.Alg))},
		},
	})
	if err != nil {
		return nil, mapErr(err, "create a key for", req.URI, "kms:CreateKey and kms:TagResource")
	}
	if created.KeyMetadata == nil || aws.ToString(created.KeyMetadata.Arn) == "" {
		return nil, fmt.Errorf("awskms: CreateKey for %s named no key", req.URI)
	}
	arn := aws.ToString(created.KeyMetadata.Arn)
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(p.alias), TargetKeyId: aws.String(arn)}); err != nil {
		cause := mapErr(err, "name the new key", req.URI, "kms:CreateAlias")
		// A cancelled context must not stop the clean-up.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, serr := c.ScheduleKeyDeletion(cctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(cleanupWindowDays)}); serr != nil {
			return nil, fmt.Errorf("%w; the key %s made for it could not be scheduled for deletion either (%v): run aws kms schedule-key-deletion --key-id %s", cause, arn, mapErr(serr, "schedule deletion of", req.URI, "kms:ScheduleKeyDeletion"), arn)
		}
		return nil, fmt.Errorf("%w; the key %s made for it was scheduled for deletion in %d days, so nothing is left behind", cause, arn, cleanupWindowDays)
	}
	k, err := b.open(ctx, c, t, arn, req.URI)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.keys[cacheKey{t, n.Key}] = k
	b.mu.Unlock()
	return k, nil
}

// List returns the signing keys whose alias starts with the URI's alias
// (awskms:///alias/ lists them all), or the one key a key ID or ARN names.
func (b *Backend) List(ctx context.Context, prefix *keystore.URI, opts keystore.Options) ([]keystore.KeyInfo, error) {
	n, err := awsName(prefix)
	if err != nil {
		return nil, err
	}
	c, t, err := b.client(ctx, n, opts)
	if err != nil {
		return nil, err
	}
	if !n.IsAlias() {
		md, err := describe(ctx, c, n, prefix)
		if err != nil {
			return nil, err
		}
		return []keystore.KeyInfo{b.info(ctx, c, t, prefix, md)}, nil
	}
	want := n.AliasName()
	var out []keystore.KeyInfo
	in := &kms.ListAliasesInput{}
	for {
		page, err := c.ListAliases(ctx, in)
		if err != nil {
			return nil, mapErr(err, "list aliases for", prefix, "kms:ListAliases")
		}
		for _, a := range page.Aliases {
			name := aws.ToString(a.AliasName)
			if !strings.HasPrefix(name, want) || strings.HasPrefix(name, "alias/aws/") || a.TargetKeyId == nil {
				continue
			}
			u, err := n.WithKey(name)
			if err != nil {
				continue
			}
			md, err := describe(ctx, c, u.AWSKMS, u)
			if err != nil {
				out = append(out, keystore.KeyInfo{URI: u, State: "(unreadable: " + err.Error() + ")"})
				continue
			}
			if md.KeyUsage != types.KeyUsageTypeSignVerify {
				continue
			}
			out = append(out, b.info(ctx, c, t, u, md))
		}
		if !page.Truncated || aws.ToString(page.NextMarker) == "" {
			return out, nil
		}
		in.Marker = page.NextMarker
	}
}

func (b *Backend) info(ctx context.Context, c Client, t Target, u *keystore.URI, md *types.KeyMetadata) keystore.KeyInfo {
	in := keystore.KeyInfo{URI: u, State: string(md.KeyState), Algs: algsOf(md.SigningAlgorithms)}
	switch {
	case md.KeyState == types.KeyStatePendingDeletion && md.DeletionDate != nil:
		in.State += " (deleted " + md.DeletionDate.UTC().Format(time.DateOnly) + ")"
	case md.KeyUsage != types.KeyUsageTypeSignVerify:
		in.State += " (" + string(md.KeyUsage) + ", not a signing key)"
	case md.KeyState == types.KeyStateEnabled:
		k, err := b.open(ctx, c, t, u.AWSKMS.Key, u)
		switch {
		case err == nil:
			in.Public = k.pub
		case errors.Is(err, keystore.ErrPermission):
			in.State += " (no public key: needs kms:GetPublicKey)"
		default:
			in.State += " (public key unreadable: " + err.Error() + ")"
		}
	}
	return in
}

// Delete schedules the key's deletion after DeletionWindowDays, during
// which aws kms cancel-key-deletion restores it. A key already pending
// deletion is an error wrapping keystore.ErrNotFound, so a retried delete
// is not a failure.
func (b *Backend) Delete(ctx context.Context, u *keystore.URI, opts keystore.Options) error {
	c, md, err := b.metadata(ctx, u, opts)
	if err != nil {
		return err
	}
	arn := aws.ToString(md.Arn)
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(DeletionWindowDays)})
	if err != nil {
		return mapErr(err, "schedule deletion of", u, "kms:ScheduleKeyDeletion")
	}
	b.forget(arn)
	return nil
}

// metadata describes the key u names and refuses what jwkctl must not
// change: a key pending deletion (ErrNotFound) or one that is not a
// signing key.
func (b *Backend) metadata(ctx context.Context, u *keystore.URI, opts keystore.Options) (Client, *types.KeyMetadata, error) {
	n, err := oneKey(u)
	if err != nil {
		return nil, nil, err
	}
	c, _, err := b.client(ctx, n, opts)
	if err != nil {
		return nil, nil, err
	}
	md, err := describe(ctx, c, n, u)
	if err != nil {
		return nil, nil, err
	}
	if md.KeyState == types.KeyStatePendingDeletion {
		when := ""
		if md.DeletionDate != nil {
			when = " on " + md.DeletionDate.UTC().Format(time.DateOnly)
		}
		return nil, nil, fmt.Errorf("%w: %s is already scheduled for deletion%s (aws kms cancel-key-deletion --key-id %s restores it)", keystore.ErrNotFound, u, when, aws.ToString(md.KeyId))
	}
	if md.KeyUsage != types.KeyUsageTypeSignVerify {
		return nil, nil, fmt.Errorf("awskms: %s is a %s key, not a signing key; jwkctl leaves it alone", u, md.KeyUsage)
	}
	return c, md, nil
}

// SetEnabled disables or enables the key. A disabled key refuses to sign
// (and to give its public key) until enabled again.
func (b *Backend) SetEnabled(ctx context.Context, u *keystore.URI, enabled bool, opts keystore.Options) error {
	c, md, err := b.metadata(ctx, u, opts)
	if err != nil {
		return err
	}
	arn := aws.String(aws.ToString(md.Arn))
	if enabled {
		_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: arn})
		return mapErr(err, "enable", u, "kms:EnableKey")
	}
	_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: arn})
	return mapErr(err, "disable", u, "kms:DisableKey")
}

// mapErr turns AWS errors into keystore sentinels and one sentence that
// names the IAM action that is missing, the credential chain that was
// tried, or what state the key is in.
func mapErr(err error, what string, u *keystore.URI, action string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("awskms: %s %s: %w", what, u, err)
	}
	region := "the default region"
	if u != nil && u.AWSKMS != nil && u.AWSKMS.Region != "" {
		region = "region " + u.AWSKMS.Region
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		msg := ae.ErrorMessage()
		switch ae.ErrorCode() {
		case "AccessDeniedException":
			return fmt.Errorf("%w: %s %s: the caller needs IAM permission %s (%s)", keystore.ErrPermission, what, u, action, msg)
		case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "InvalidClientTokenId", "IncompleteSignature", "MissingAuthenticationToken":
			return fmt.Errorf("%w: %s %s: AWS rejected the credentials (%s: %s); check AWS_PROFILE / aws sso login, or the instance role", keystore.ErrPermission, what, u, ae.ErrorCode(), msg)
		case "NotFoundException":
			return fmt.Errorf("%w: %s does not exist in AWS KMS in %s of the caller's account (%s)", keystore.ErrNotFound, u, region, msg)
		case "DisabledException":
			return fmt.Errorf("awskms: %s %s: the key is disabled (jwkctl keys enable switches it back on)", what, u)
		case "KMSInvalidStateException":
			if strings.Contains(msg, "pending deletion") || strings.Contains(msg, "PendingDeletion") {
				return fmt.Errorf("%w: %s is scheduled for deletion (aws kms cancel-key-deletion restores it): %s", keystore.ErrNotFound, u, msg)
			}
			return fmt.Errorf("awskms: %s %s: the key is not in a state that allows it: %s", what, u, msg)
		case "InvalidKeyUsageException":
			return fmt.Errorf("awskms: %s %s: not a signing key, or not for this algorithm: %s", what, u, msg)
		case "AlreadyExistsException":
			return fmt.Errorf("%w: %s: %s", keystore.ErrExists, u, msg)
		case "ThrottlingException", "LimitExceededException", "RequestLimitExceeded":
			return fmt.Errorf("awskms: %s %s: AWS KMS throttled the request, still after %d attempts (the Sign quota is per account and region, shared by every caller; see docs/aws-kms.md): %s", what, u, MaxAttempts, msg)
		}
		return fmt.Errorf("awskms: %s %s: %s: %s", what, u, ae.ErrorCode(), msg)
	}
	s := err.Error()
	if strings.Contains(s, "get credentials") || strings.Contains(s, "failed to retrieve credentials") || strings.Contains(s, "failed to refresh cached credentials") {
		return fmt.Errorf("%w: %s %s: no AWS credentials found; the SDK's chain tried the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), the shared config and credentials files (AWS_PROFILE, SSO: aws sso login), web identity (IRSA: AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN), container credentials and EC2 instance metadata (%v)", keystore.ErrPermission, what, u, rootCause(err))
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	if errors.As(err, &dnsErr) || errors.As(err, &opErr) {
		return fmt.Errorf("awskms: %s %s: cannot reach AWS KMS in %s (is the region right? is there a route to KMS?): %v", what, u, region, rootCause(err))
	}
	return fmt.Errorf("awskms: %s %s: %w", what, u, err)
}

// rootCause is the innermost error's text, without the SDK's layers of
// "operation error …, https response error …" around it.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
