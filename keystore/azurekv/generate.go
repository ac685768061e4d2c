package azurekv

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/jwkctl/jwkctl/keystore"
)

// Tags on keys jwkctl creates: who made it, and for which JOSE algorithm
// (an RSA key in Key Vault can sign with any RSA algorithm; the tag picks
// the one that matches the uploaded JWK).
const (
	tagCreatedBy = "created-by"
	tagAlg       = "jwkctl-alg"
)

// check validates a generate request without creating anything: a key
// name without a version, a spec Key Vault offers at the protection level
// asked, and a name that is free.
func (b *Backend) check(ctx context.Context, req keystore.GenerateRequest) (*vault, azkeys.CreateKeyParameters, error) {
	v, err := b.open(req.URI, req.Options)
	if err != nil {
		return nil, azkeys.CreateKeyParameters{}, err
	}
	switch {
	case v.n.Key == "":
		return nil, azkeys.CreateKeyParameters{}, fmt.Errorf("%w: name the key: %s/NAME", keystore.ErrBadURI, v.n.KeyURI())
	case v.n.Version != "":
		return nil, azkeys.CreateKeyParameters{}, fmt.Errorf("%w: Key Vault names versions itself; give the key URI without a version (%s)", keystore.ErrBadURI, v.n.KeyURI())
	}
	params, err := createParams(req.Spec, req.ProtectionLevel, v.hsm)
	if err != nil {
		return nil, azkeys.CreateKeyParameters{}, err
	}
	// CreateKey on a taken name would add a version to that key, and the
	// key's current version would change under whoever uses it: refuse.
	_, err = v.c.GetKey(ctx, v.n.Key, "", nil)
	switch {
	case err == nil:
		return nil, azkeys.CreateKeyParameters{}, fmt.Errorf("%w: %s (jwkctl never adds a version to an existing key; choose another name)", keystore.ErrExists, v.n.KeyURI())
	case statusOf(err) == http.StatusNotFound:
		return v, params, nil
	case isDisabled(err):
		return nil, azkeys.CreateKeyParameters{}, fmt.Errorf("%w: %s (disabled; jwkctl never adds a version to an existing key; choose another name)", keystore.ErrExists, v.n.KeyURI())
	}
	return nil, azkeys.CreateKeyParameters{}, v.mapErr(err, "look up", v.n.Key, "", opRead)
}

// createParams is the CreateKey request for a spec: a non-exportable key
// that may only sign and verify.
func createParams(spec keystore.KeySpec, level string, managedHSM bool) (azkeys.CreateKeyParameters, error) {
	hsm := managedHSM
	switch strings.ToLower(level) {
	case "":
	case "software":
		if managedHSM {
			return azkeys.CreateKeyParameters{}, fmt.Errorf("azurekv: Managed HSM keys are always HSM keys; leave out --protection-level or say hsm")
		}
	case "hsm":
		hsm = true
	default:
		return azkeys.CreateKeyParameters{}, fmt.Errorf("azurekv: protection level must be software or hsm, not %q", level)
	}
	p := azkeys.CreateKeyParameters{
		KeyOps:        []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationSign), to.Ptr(azkeys.KeyOperationVerify)},
		KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(true), Exportable: to.Ptr(false)},
		Tags:          map[string]*string{tagCreatedBy: to.Ptr("jwkctl"), tagAlg: to.Ptr(string(spec.Alg))},
	}
	switch spec.Type {
	case keystore.RSA:
		switch spec.Bits {
		case 2048, 3072, 4096:
		default:
			return azkeys.CreateKeyParameters{}, fmt.Errorf("azurekv: Key Vault makes RSA keys of 2048, 3072 or 4096 bits, not %d", spec.Bits)
		}
		p.Kty, p.KeySize = to.Ptr(azkeys.KeyTypeRSA), to.Ptr(int32(spec.Bits))
		if hsm {
			p.Kty = to.Ptr(azkeys.KeyTypeRSAHSM)
		}
	case keystore.EC:
		if spec.Curve == nil {
			return azkeys.CreateKeyParameters{}, fmt.Errorf("azurekv: an EC key spec needs a curve")
		}
		crv := azkeys.CurveName(spec.Curve.Params().Name)
		switch crv {
		case azkeys.CurveNameP256, azkeys.CurveNameP384, azkeys.CurveNameP521:
		default:
			return azkeys.CreateKeyParameters{}, fmt.Errorf("azurekv: jwkctl makes EC keys on P-256, P-384 or P-521, not %s", crv)
		}
		p.Kty, p.Curve = to.Ptr(azkeys.KeyTypeEC), to.Ptr(crv)
		if hsm {
			p.Kty = to.Ptr(azkeys.KeyTypeECHSM)
		}
	default:
		return azkeys.CreateKeyParameters{}, fmt.Errorf("azurekv: unsupported key type %q", spec.Type)
	}
	return p, nil
}

// CheckGenerate implements keystore.GenerateChecker.
func (b *Backend) CheckGenerate(ctx context.Context, req keystore.GenerateRequest) error {
	_, _, err := b.check(ctx, req)
	return err
}

// Generate creates a new key (never a new version of an existing one) and
// returns it pinned to the version Key Vault made.
func (b *Backend) Generate(ctx context.Context, req keystore.GenerateRequest) (keystore.Key, error) {
	v, params, err := b.check(ctx, req)
	if err != nil {
		return nil, err
	}
	req.Logger().Info("creating key in Azure Key Vault", "key", v.n.KeyURI(), "kty", string(*params.Kty))
	resp, err := v.c.CreateKey(ctx, v.n.Key, params, nil)
	if err != nil {
		return nil, v.mapErr(err, "create", v.n.Key, "", opCreate)
	}
	return v.keyFrom(resp.KeyBundle, v.n.Key, "")
}
