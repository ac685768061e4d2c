// Package fakekms is an in-process Cloud KMS for tests and demos: a gRPC
// KeyManagementService with real keys and real signatures, kept in memory.
// It can be told to misbehave — corrupt a CRC32C, answer for the wrong
// key, keep a version pending, fail with a status code — so every
// integrity check in the client is proven to fire.
package fakekms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Faults make the server misbehave; the zero value behaves.
type Faults struct {
	CorruptPEMCRC       bool       // GetPublicKey: wrong pem_crc32c
	CorruptSignatureCRC bool       // AsymmetricSign: wrong signature_crc32c
	OmitPEMCRC          bool       // GetPublicKey: no pem_crc32c
	OmitSignatureCRC    bool       // AsymmetricSign: no signature_crc32c
	UnverifiedDigest    bool       // AsymmetricSign: verified_digest_crc32c = false
	WrongName           bool       // both: answer with another version's name
	FailWith            codes.Code // every call fails with this code (0 = OK)
	// PendingPolls is how many GetCryptoKeyVersion calls a new version
	// stays PENDING_GENERATION for.
	PendingPolls int
}

// Server is the fake KMS.
type Server struct {
	kmspb.UnimplementedKeyManagementServiceServer

	mu       sync.Mutex
	faults   Faults
	keys     map[string]*cryptoKey
	signRPCs atomic.Int64
	allRPCs  atomic.Int64
}

type cryptoKey struct {
	pb       *kmspb.CryptoKey
	versions []*version
}

type version struct {
	pb      *kmspb.CryptoKeyVersion
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
	g := grpc.NewServer()
	kmspb.RegisterKeyManagementServiceServer(g, s)
	go func() { _ = g.Serve(ln) }()
	return g.Stop
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

func (s *Server) enter() (Faults, error) {
	s.allRPCs.Add(1)
	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	if f.FailWith != codes.OK {
		return f, status.Errorf(f.FailWith, "fakekms: injected %v", f.FailWith)
	}
	return f, nil
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) *wrapperspb.Int64Value {
	return wrapperspb.Int64(int64(crc32.Checksum(b, crcTable)))
}

func (s *Server) version(name string) (*version, error) {
	i := strings.Index(name, "/cryptoKeyVersions/")
	if i < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "not a version name: %s", name)
	}
	k, ok := s.keys[name[:i]]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%s not found", name)
	}
	for _, v := range k.versions {
		if v.pb.Name == name {
			return v, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "%s not found", name)
}

func generate(a kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm) (crypto.Signer, error) {
	n := a.String()
	switch {
	case strings.HasPrefix(n, "RSA_SIGN_"):
		bits := 2048
		fmt.Sscanf(strings.Split(n, "_")[3], "%d", &bits)
		return rsa.GenerateKey(rand.Reader, bits)
	case n == "EC_SIGN_P256_SHA256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case n == "EC_SIGN_P384_SHA384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	return nil, status.Errorf(codes.InvalidArgument, "fakekms: algorithm %s not supported", n)
}

func (s *Server) newVersion(k *cryptoKey, pending int) (*version, error) {
	a := k.pb.GetVersionTemplate().GetAlgorithm()
	priv, err := generate(a)
	if err != nil {
		return nil, err
	}
	state := kmspb.CryptoKeyVersion_ENABLED
	if pending > 0 {
		state = kmspb.CryptoKeyVersion_PENDING_GENERATION
	}
	v := &version{priv: priv, pending: pending, pb: &kmspb.CryptoKeyVersion{
		Name:            fmt.Sprintf("%s/cryptoKeyVersions/%d", k.pb.Name, len(k.versions)+1),
		State:           state,
		Algorithm:       a,
		ProtectionLevel: k.pb.GetVersionTemplate().GetProtectionLevel(),
	}}
	k.versions = append(k.versions, v)
	return v, nil
}

// CreateCryptoKey makes the key and its first version.
func (s *Server) CreateCryptoKey(_ context.Context, r *kmspb.CreateCryptoKeyRequest) (*kmspb.CryptoKey, error) {
	f, err := s.enter()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := r.GetParent() + "/cryptoKeys/" + r.GetCryptoKeyId()
	if _, ok := s.keys[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "%s exists", name)
	}
	if r.GetCryptoKey().GetPurpose() != kmspb.CryptoKey_ASYMMETRIC_SIGN {
		return nil, status.Errorf(codes.InvalidArgument, "fakekms: only ASYMMETRIC_SIGN keys")
	}
	pb := &kmspb.CryptoKey{Name: name, Purpose: kmspb.CryptoKey_ASYMMETRIC_SIGN, VersionTemplate: r.GetCryptoKey().GetVersionTemplate()}
	k := &cryptoKey{pb: pb}
	if _, err := s.newVersion(k, f.PendingPolls); err != nil {
		return nil, err
	}
	s.keys[name] = k
	return clone(pb), nil
}

// CreateCryptoKeyVersion adds a version.
func (s *Server) CreateCryptoKeyVersion(_ context.Context, r *kmspb.CreateCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	f, err := s.enter()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[r.GetParent()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%s not found", r.GetParent())
	}
	v, err := s.newVersion(k, f.PendingPolls)
	if err != nil {
		return nil, err
	}
	return clone(v.pb), nil
}

// GetCryptoKey returns a key.
func (s *Server) GetCryptoKey(_ context.Context, r *kmspb.GetCryptoKeyRequest) (*kmspb.CryptoKey, error) {
	if _, err := s.enter(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[r.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%s not found", r.GetName())
	}
	return clone(k.pb), nil
}

// GetCryptoKeyVersion returns a version; a pending one advances one poll.
func (s *Server) GetCryptoKeyVersion(_ context.Context, r *kmspb.GetCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	if _, err := s.enter(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.version(r.GetName())
	if err != nil {
		return nil, err
	}
	if v.pending > 0 {
		v.pending--
		if v.pending == 0 {
			v.pb.State = kmspb.CryptoKeyVersion_ENABLED
		}
	}
	return clone(v.pb), nil
}

// ListCryptoKeys lists the keys of a key ring (one page).
func (s *Server) ListCryptoKeys(_ context.Context, r *kmspb.ListCryptoKeysRequest) (*kmspb.ListCryptoKeysResponse, error) {
	if _, err := s.enter(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*kmspb.CryptoKey
	for name, k := range s.keys {
		if strings.HasPrefix(name, r.GetParent()+"/cryptoKeys/") {
			out = append(out, clone(k.pb))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return &kmspb.ListCryptoKeysResponse{CryptoKeys: out, TotalSize: int32(len(out))}, nil
}

// ListCryptoKeyVersions lists a key's versions (one page).
func (s *Server) ListCryptoKeyVersions(_ context.Context, r *kmspb.ListCryptoKeyVersionsRequest) (*kmspb.ListCryptoKeyVersionsResponse, error) {
	if _, err := s.enter(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[r.GetParent()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%s not found", r.GetParent())
	}
	var out []*kmspb.CryptoKeyVersion
	for _, v := range k.versions {
		out = append(out, clone(v.pb))
	}
	return &kmspb.ListCryptoKeyVersionsResponse{CryptoKeyVersions: out, TotalSize: int32(len(out))}, nil
}

// GetPublicKey returns the PEM public key with its CRC32C.
func (s *Server) GetPublicKey(_ context.Context, r *kmspb.GetPublicKeyRequest) (*kmspb.PublicKey, error) {
	f, err := s.enter()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.version(r.GetName())
	if err != nil {
		return nil, err
	}
	if v.pb.State != kmspb.CryptoKeyVersion_ENABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is %s", v.pb.Name, v.pb.State)
	}
	der, err := x509.MarshalPKIXPublicKey(v.priv.Public())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	p := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	out := &kmspb.PublicKey{Pem: p, PemCrc32C: crc([]byte(p)), Algorithm: v.pb.Algorithm, Name: v.pb.Name, ProtectionLevel: v.pb.ProtectionLevel}
	if f.CorruptPEMCRC {
		out.PemCrc32C = wrapperspb.Int64(out.PemCrc32C.Value + 1)
	}
	if f.OmitPEMCRC {
		out.PemCrc32C = nil
	}
	if f.WrongName {
		out.Name += "0"
	}
	return out, nil
}

// AsymmetricSign signs a digest, checking its CRC32C as KMS does.
func (s *Server) AsymmetricSign(_ context.Context, r *kmspb.AsymmetricSignRequest) (*kmspb.AsymmetricSignResponse, error) {
	s.signRPCs.Add(1)
	f, err := s.enter()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	v, err := s.version(r.GetName())
	var pb *kmspb.CryptoKeyVersion
	if err == nil {
		pb = clone(v.pb) // read under the lock; Update may change the state
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if pb.State != kmspb.CryptoKeyVersion_ENABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is %s", pb.Name, pb.State)
	}
	var digest []byte
	var h crypto.Hash
	switch d := r.GetDigest().GetDigest().(type) {
	case *kmspb.Digest_Sha256:
		digest, h = d.Sha256, crypto.SHA256
	case *kmspb.Digest_Sha384:
		digest, h = d.Sha384, crypto.SHA384
	case *kmspb.Digest_Sha512:
		digest, h = d.Sha512, crypto.SHA512
	default:
		return nil, status.Error(codes.InvalidArgument, "fakekms: digest required")
	}
	if c := r.GetDigestCrc32C(); c != nil && c.Value != crc(digest).Value {
		return nil, status.Error(codes.InvalidArgument, "fakekms: digest_crc32c mismatch")
	}
	var opts crypto.SignerOpts = h
	if strings.HasPrefix(pb.Algorithm.String(), "RSA_SIGN_PSS_") {
		opts = &rsa.PSSOptions{SaltLength: h.Size(), Hash: h}
	}
	if !strings.HasSuffix(pb.Algorithm.String(), "_"+strings.ReplaceAll(h.String(), "-", "")) {
		return nil, status.Errorf(codes.InvalidArgument, "fakekms: %s does not sign %v digests", pb.Algorithm, h)
	}
	sig, err := v.priv.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	out := &kmspb.AsymmetricSignResponse{Signature: sig, SignatureCrc32C: crc(sig), VerifiedDigestCrc32C: r.GetDigestCrc32C() != nil, Name: pb.Name, ProtectionLevel: pb.ProtectionLevel}
	if f.CorruptSignatureCRC {
		out.SignatureCrc32C = wrapperspb.Int64(out.SignatureCrc32C.Value + 1)
	}
	if f.OmitSignatureCRC {
		out.SignatureCrc32C = nil
	}
	if f.UnverifiedDigest {
		out.VerifiedDigestCrc32C = false
	}
	if f.WrongName {
		out.Name += "0"
	}
	return out, nil
}

// DestroyCryptoKeyVersion schedules destruction. As in Cloud KMS, only an
// ENABLED or DISABLED version can be destroyed: one already
// DESTROY_SCHEDULED or DESTROYED (or still being generated) is refused
// with FAILED_PRECONDITION.
func (s *Server) DestroyCryptoKeyVersion(_ context.Context, r *kmspb.DestroyCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	if _, err := s.enter(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.version(r.GetName())
	if err != nil {
		return nil, err
	}
	if st := v.pb.State; st != kmspb.CryptoKeyVersion_ENABLED && st != kmspb.CryptoKeyVersion_DISABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is not in state ENABLED or DISABLED (it is %s)", v.pb.Name, st)
	}
	v.pb.State = kmspb.CryptoKeyVersion_DESTROY_SCHEDULED
	return clone(v.pb), nil
}

// UpdateCryptoKeyVersion switches a version between ENABLED and DISABLED,
// the only update KMS allows on a version's state.
func (s *Server) UpdateCryptoKeyVersion(_ context.Context, r *kmspb.UpdateCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	if _, err := s.enter(); err != nil {
		return nil, err
	}
	if paths := r.GetUpdateMask().GetPaths(); len(paths) != 1 || paths[0] != "state" {
		return nil, status.Errorf(codes.InvalidArgument, "fakekms: only update_mask [state] is supported, got %v", paths)
	}
	want := r.GetCryptoKeyVersion().GetState()
	if want != kmspb.CryptoKeyVersion_ENABLED && want != kmspb.CryptoKeyVersion_DISABLED {
		return nil, status.Errorf(codes.InvalidArgument, "state can only be set to ENABLED or DISABLED, not %s", want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.version(r.GetCryptoKeyVersion().GetName())
	if err != nil {
		return nil, err
	}
	if st := v.pb.State; st != kmspb.CryptoKeyVersion_ENABLED && st != kmspb.CryptoKeyVersion_DISABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is %s", v.pb.Name, st)
	}
	v.pb.State = want
	return clone(v.pb), nil
}

// clone copies a message before the lock is released: gRPC marshals the
// answer afterwards, while other calls may change the original.
func clone[M proto.Message](m M) M { return proto.Clone(m).(M) }
