package keystore

import "errors"

// Sentinel errors. Backends wrap them with context (fmt.Errorf("…: %w", err))
// so callers can test with errors.Is and users still read a clear sentence.
var (
	// ErrNotFound: the URI names no key.
	ErrNotFound = errors.New("keystore: key not found")
	// ErrExists: Generate or Import was asked to create a key that is
	// already there. The existing key is left untouched.
	ErrExists = errors.New("keystore: key already exists")
	// ErrBadURI: the key URI could not be parsed or lacks a required part.
	ErrBadURI = errors.New("keystore: invalid key URI")
	// ErrBackendUnavailable: no backend for the URI's scheme is built into
	// this binary (or it was built without cgo).
	ErrBackendUnavailable = errors.New("keystore: backend not available")
	// ErrUnsupported: the backend cannot do the operation (for example list
	// or import).
	ErrUnsupported = errors.New("keystore: operation not supported by this backend")
	// ErrPassphrase: the passphrase is missing or wrong.
	ErrPassphrase = errors.New("keystore: wrong or missing passphrase")
	// ErrInsecure: a key file is readable by others, or a similar unsafe
	// condition the user must fix first.
	ErrInsecure = errors.New("keystore: insecure key storage")
	// ErrWeakKey: the key is too small or of an unsupported type.
	ErrWeakKey = errors.New("keystore: key too weak or unsupported")
	// ErrPIN: the PIN is missing, wrong or locked.
	ErrPIN = errors.New("keystore: PIN incorrect, missing or locked")
	// ErrPermission: the backend refused the operation (KMS IAM).
	ErrPermission = errors.New("keystore: permission denied")
)
