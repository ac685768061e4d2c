package keystore

import (
	"errors"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// ErrMalformedSignature is returned for an ECDSA signature that is neither
// valid ASN.1 nor in range for the curve.
var ErrMalformedSignature = errors.New("malformed ECDSA signature")

// ECDSAConcat turns an ASN.1 DER ECDSA signature into r‖s, each left-padded
// to size bytes (the curve's coordinate size), as JWS (RFC 7518 §3.4) and
// PKCS#11 write it.
func ECDSAConcat(der []byte, size int) ([]byte, error) {
	var r, s big.Int
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() {
		return nil, ErrMalformedSignature
	}
	if r.Sign() <= 0 || s.Sign() <= 0 || r.BitLen() > 8*size || s.BitLen() > 8*size {
		return nil, ErrMalformedSignature
	}
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out, nil
}

// ECDSADER turns r‖s (each size bytes) into the ASN.1 DER form
// crypto.Signer returns.
func ECDSADER(concat []byte) ([]byte, error) {
	if len(concat) == 0 || len(concat)%2 != 0 {
		return nil, ErrMalformedSignature
	}
	n := len(concat) / 2
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(concat[:n]))
		b.AddASN1BigInt(new(big.Int).SetBytes(concat[n:]))
	})
	return b.Bytes()
}
