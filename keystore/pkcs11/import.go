//go:build cgo

package pkcs11

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"

	"github.com/jwkctl/jwkctl/keystore"
)

var _ keystore.Importer = (*Backend)(nil)

var curveOIDs = map[elliptic.Curve]asn1.ObjectIdentifier{
	elliptic.P256(): {1, 2, 840, 10045, 3, 1, 7},
	elliptic.P384(): {1, 3, 132, 0, 34},
	elliptic.P521(): {1, 3, 132, 0, 35},
}

// Import stores an existing private key (for example one downloaded from
// Selvbetjening) in the token as sensitive and non-extractable, so it can
// no longer be read out. The source file should be deleted afterwards.
func (b *Backend) Import(ctx context.Context, req keystore.ImportRequest) (keystore.Key, error) {
	t, err := resolve(req.URI, req.Options, true)
	if err != nil {
		return nil, err
	}
	c, id, err := b.prepareNew(t, "the imported key") // logs the application in
	if err != nil {
		return nil, err
	}
	pubT, privT, err := templates(req.Private, id, t.object)
	if err != nil {
		return nil, err
	}
	unlock, err := reserve(ctx, t, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	handles, err := createObjects(t, pubT, privT)
	if err != nil {
		return nil, err
	}
	if err := checkSole(t, id); err != nil {
		if derr := destroyObjects(t, handles); derr != nil {
			return nil, fmt.Errorf("%w; removing the key just imported failed too: %v", err, derr)
		}
		return nil, err
	}
	made := t
	made.id, made.hasID = id, true
	s, err := find(c, made)
	if err != nil {
		return nil, err
	}
	return b.newKey(t, c, s, keyURI(req.URI, t.object, id)), nil
}

func templates(priv any, id []byte, label string) (pub, prv []*pkcs11.Attribute, err error) {
	common := func(class uint) []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}
	}
	// A signing key only, as Generate makes it.
	pub = append(common(pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	)
	prv = append(common(pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	)
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if len(k.Primes) != 2 {
			return nil, nil, errors.New("pkcs11: multi-prime RSA keys cannot be imported")
		}
		k.Precompute()
		e := big.NewInt(int64(k.E)).Bytes()
		pub = append(pub,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, e))
		prv = append(prv,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, e),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE_EXPONENT, k.D.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PRIME_1, k.Primes[0].Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PRIME_2, k.Primes[1].Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_1, k.Precomputed.Dp.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_2, k.Precomputed.Dq.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_COEFFICIENT, k.Precomputed.Qinv.Bytes()))
	case *ecdsa.PrivateKey:
		oid, ok := curveOIDs[k.Curve]
		if !ok {
			return nil, nil, fmt.Errorf("pkcs11: unsupported curve %s", k.Curve.Params().Name)
		}
		params, err := asn1.Marshal(oid)
		if err != nil {
			return nil, nil, err
		}
		point, err := k.PublicKey.Bytes()
		if err != nil {
			return nil, nil, err
		}
		// CKA_EC_POINT is the DER encoding of the point as an OCTET STRING.
		derPoint, err := asn1.Marshal(point)
		if err != nil {
			return nil, nil, err
		}
		scalar, err := k.Bytes()
		if err != nil {
			return nil, nil, err
		}
		pub = append(pub,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, derPoint))
		prv = append(prv,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, scalar))
	default:
		return nil, nil, fmt.Errorf("pkcs11: cannot import a %T", priv)
	}
	return pub, prv, nil
}

// createObjects writes the two halves in one session of their own and
// returns their handles. The application is already logged in through
// the crypto11 context, so the session is authorised.
func createObjects(t target, pub, prv []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	var handles []pkcs11.ObjectHandle
	err := withSession(t, true, func(p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		privH, err := p.CreateObject(sh, prv)
		if err != nil {
			return fmt.Errorf("pkcs11: import the private key into %s: %v", t.tokenName(), err)
		}
		pubH, err := p.CreateObject(sh, pub)
		if err != nil {
			_ = p.DestroyObject(sh, privH)
			return fmt.Errorf("pkcs11: import the public key into %s: %v", t.tokenName(), err)
		}
		handles = []pkcs11.ObjectHandle{privH, pubH}
		return nil
	})
	return handles, err
}

// destroyObjects removes token objects this process made.
func destroyObjects(t target, handles []pkcs11.ObjectHandle) error {
	return withSession(t, true, func(p *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		var errs []error
		for _, h := range handles {
			if err := p.DestroyObject(sh, h); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}
