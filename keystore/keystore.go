package keystore

import (
	"context"
	"crypto"
	"io"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Key is a private key held by a backend. Signing goes through the embedded
// crypto.Signer; the private half never leaves the backend (for the file
// backend, it never leaves this process).
type Key interface {
	crypto.Signer
	// URI names the key; printing it never reveals a PIN.
	URI() *URI
}

// AlgRestricted is implemented by keys whose backend fixes the signature
// algorithm (Cloud KMS fixes hash and padding per key). The signer refuses
// any other algorithm for such a key.
type AlgRestricted interface {
	Algs() []jose.SignatureAlgorithm
}

// AlgRecorder is implemented by keys that record the JOSE algorithm they
// were generated or registered for (a key file's "alg" member). When no
// algorithm is given, jwkctl signs with the recorded one, so signatures
// match the JWK that was uploaded.
type AlgRecorder interface {
	RecordedAlg() jose.SignatureAlgorithm
}

// KidRecorder is implemented by keys that record the kid they sign with
// (a key file's "kid" member). jwkctl names a key by its RFC 7638
// thumbprint and writes that kid into the files it makes; a key imported
// with its registered kid kept (keys import --keep-kid) records that one,
// so assertions carry the kid Selvbetjening knows the key by.
type KidRecorder interface {
	RecordedKid() string
}

// ConcatSigner is implemented by keys whose backend produces ECDSA
// signatures as fixed-size r‖s, the form JWS uses (PKCS#11's CKM_ECDSA
// does). SignConcat returns exactly that form for an ECDSA key, so the
// signer package can skip a DER round trip; Sign still returns ASN.1 DER,
// as crypto.Signer requires.
type ConcatSigner interface {
	SignConcat(digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

// Backend is one key store: a file directory, a PKCS#11 token, a KMS.
// Backends register themselves with Register in init().
type Backend interface {
	// Scheme is the URI scheme this backend serves ("file", "pkcs11", "gcpkms", "awskms").
	Scheme() string
	// Generate creates a new keypair inside the backend. It never replaces an
	// existing key: if req.URI names one, it returns an error wrapping ErrExists.
	Generate(ctx context.Context, req GenerateRequest) (Key, error)
	// Open returns the key named by uri, or an error wrapping ErrNotFound.
	Open(ctx context.Context, uri *URI, opts Options) (Key, error)
}

// Importer is implemented by backends that can take in an existing private
// key (for example one downloaded from Selvbetjening as a private JWK).
type Importer interface {
	Import(ctx context.Context, req ImportRequest) (Key, error)
}

// Lister is implemented by backends that can enumerate their keys.
type Lister interface {
	// List returns the keys under prefix (a directory, a token, a key ring).
	List(ctx context.Context, prefix *URI, opts Options) ([]KeyInfo, error)
}

// Deleter is implemented by backends that can remove (or, for KMS, destroy)
// a key. Callers must have asked the user for confirmation first.
type Deleter interface {
	Delete(ctx context.Context, uri *URI, opts Options) error
}

// GenerateChecker is implemented by backends that can tell, without
// creating anything, whether Generate would refuse a request (the name is
// taken, the backend has no such algorithm, an existing KMS key has
// another template). Plans check with it before they are recorded.
type GenerateChecker interface {
	CheckGenerate(ctx context.Context, req GenerateRequest) error
}

// Disabler is implemented by backends that can switch a key off without
// destroying it, and on again: Cloud KMS sets the version's state to
// DISABLED, PKCS#11 sets CKA_SIGN to false on the private key. A disabled
// key refuses to sign; enabling it undoes that. Callers must have asked
// the user for confirmation before disabling.
type Disabler interface {
	SetEnabled(ctx context.Context, uri *URI, enabled bool, opts Options) error
}

// Options are the settings that are not part of a key's name.
type Options struct {
	// Passphrase encrypts a file key at rest (Generate, Import) or decrypts
	// it (Open). Nil means a plaintext key file.
	Passphrase []byte
	// Endpoint overrides a cloud backend's API endpoint (gcpkms, awskms). A loopback
	// endpoint is dialled without TLS and without credentials (for fakes).
	// azurekv: only a loopback https address, sent a fixed test token.
	Endpoint string
	// ProtectionLevel is where a new Cloud KMS or Key Vault key lives:
	// "software" (default) or "hsm".
	ProtectionLevel string
	// KMSTimeout is how long one KMS operation may take, retries
	// included: reading a public key and signing on Cloud KMS, signing on
	// AWS KMS and Azure Key Vault. Zero means 30 s.
	KMSTimeout time.Duration
	// Log receives warnings and progress. Nil discards them. Never given a
	// secret.
	Log *slog.Logger
}

// Logger returns o.Log, or a logger that discards everything.
func (o Options) Logger() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// GenerateRequest asks a backend for a new keypair.
type GenerateRequest struct {
	URI  *URI
	Spec KeySpec
	Options
}

// ImportRequest asks a backend to store an existing private key.
type ImportRequest struct {
	URI *URI
	// Private is an *rsa.PrivateKey or *ecdsa.PrivateKey, already validated
	// with CheckPrivateKey.
	Private crypto.Signer
	// Alg is the JOSE algorithm the key is meant for, if known.
	Alg jose.SignatureAlgorithm
	// Kid is the kid to record with the key instead of its RFC 7638
	// thumbprint, for a key already registered under another kid.
	// Backends that cannot record one (their keys are no KidRecorder)
	// ignore it; the caller then keeps it in the profile.
	Kid string
	Options
}

// KeyInfo describes one key found by List.
type KeyInfo struct {
	URI    *URI
	Public crypto.PublicKey
	// Algs are the algorithms the key is restricted to, if the backend fixes
	// them; empty means any algorithm that fits the key type.
	Algs []jose.SignatureAlgorithm
	// State is the backend's word for the key's state (KMS: ENABLED,
	// DISABLED, …); empty when the backend has none.
	State string
	// Kid is the kid the key records for itself (see KidRecorder), which
	// it signs with instead of its RFC 7638 thumbprint; empty when it
	// records none.
	Kid string
}
