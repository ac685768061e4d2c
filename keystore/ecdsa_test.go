package keystore_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"math/big"
	"testing"

	"github.com/jwkctl/jwkctl/keystore"
)

func TestECDSAConcatDERRoundTrip(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha512.Sum384([]byte("x"))
	for range 50 { // r or s with leading zero bytes turn up now and then
		der, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		cat, err := keystore.ECDSAConcat(der, 48)
		if err != nil {
			t.Fatal(err)
		}
		if len(cat) != 96 {
			t.Fatalf("r‖s is %d bytes, want 96", len(cat))
		}
		if !ecdsa.Verify(&k.PublicKey, digest[:], new(big.Int).SetBytes(cat[:48]), new(big.Int).SetBytes(cat[48:])) {
			t.Fatal("r‖s does not verify")
		}
		back, err := keystore.ECDSADER(cat)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(&k.PublicKey, digest[:], back) {
			t.Fatal("DER from r‖s does not verify")
		}
	}
	for _, bad := range [][]byte{nil, {0x30, 0x00}, {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01}, make([]byte, 96)} {
		if _, err := keystore.ECDSAConcat(bad, 48); !errors.Is(err, keystore.ErrMalformedSignature) {
			t.Errorf("ECDSAConcat(%x) = %v, want ErrMalformedSignature", bad, err)
		}
	}
	if _, err := keystore.ECDSADER([]byte{1, 2, 3}); !errors.Is(err, keystore.ErrMalformedSignature) {
		t.Errorf("ECDSADER of odd length: %v", err)
	}
}
