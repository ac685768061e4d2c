// Package pkcs11 keeps keys in a PKCS#11 HSM (Thales Luna, Entrust nShield,
// Utimaco, YubiHSM, SoftHSM2, cloud HSMs) through crypto11. Keys are
// generated inside the token as sensitive and non-extractable, and every
// signature is made by the token; the private key never leaves it.
//
// Keys are named by RFC 7512 URIs; the PIN comes from a file or an
// environment variable, never from the command line:
//
//	pkcs11:token=jwkctl;object=helseid-2026?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:JWKCTL_PKCS11_PIN
//
// The package needs cgo; without it a stub backend explains how to rebuild.
package pkcs11
