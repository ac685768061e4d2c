package profile

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/file"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/token"
)

// ClientOptions tune NewClient.
type ClientOptions struct {
	// Backend is the base for opening keys; the profile's passphrase file
	// and KMS endpoint are laid on top.
	Backend keystore.Options
	// Wrap, if set, wraps each opened key (for example to count signatures).
	Wrap   func(keystore.Key) keystore.Key
	Logger *slog.Logger
}

// OpenSigner opens uri with p's backend settings and makes a signer for
// alg (empty: the key's own default). For p's own key (uri is p.Key) the
// signer carries p's kid entry, when it has one.
func OpenSigner(ctx context.Context, p *Profile, uri, alg string, o ClientOptions) (*signer.Signer, error) {
	opts := o.Backend
	if p.KMSEndpoint != "" {
		opts.Endpoint = p.KMSEndpoint
	}
	if p.PassphraseFile != "" {
		b, err := file.ReadPassphraseFile(p.PassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		opts.Passphrase = b
	}
	key, err := keystore.Open(ctx, uri, opts)
	if err != nil {
		return nil, err
	}
	if o.Wrap != nil {
		key = o.Wrap(key)
	}
	var a jose.SignatureAlgorithm
	if alg != "" {
		if a, err = signer.ParseAlg(alg); err != nil {
			return nil, err
		}
	} else if a, err = signer.DefaultAlg(key); err != nil {
		return nil, err
	}
	s, err := signer.New(key, a)
	if err != nil {
		return nil, err
	}
	if uri == p.Key && p.Kid != "" {
		return s.WithKeyID(p.Kid)
	}
	return s, nil
}

// NewClient opens p's key (and DPoP key) and builds its token client.
func NewClient(ctx context.Context, p *Profile, o ClientOptions) (*token.Client, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	s, err := OpenSigner(ctx, p, p.Key, p.Alg, o)
	if err != nil {
		return nil, err
	}
	cfg := token.Config{
		Issuer: p.Issuer, TokenEndpoint: p.TokenEndpoint, Audience: p.Audience, ClientID: p.ClientID,
		Signer: s, DPoP: p.DPoP || p.DPoPKey != "", Scopes: p.Scopes, Resources: p.Resources,
		ParentOrg: p.ParentOrg, ChildOrg: p.ChildOrg, Logger: o.Logger,
	}
	if p.DPoPKey != "" {
		if cfg.DPoPSigner, err = OpenSigner(ctx, p, p.DPoPKey, "", o); err != nil {
			return nil, fmt.Errorf("profile: DPoP key: %w", err)
		}
	}
	return token.NewClient(cfg)
}
