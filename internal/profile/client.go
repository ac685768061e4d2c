package profile

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/inputfile"
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
	// Before the key is opened: a bad file is found before an HSM or KMS
	// is asked.
	details, err := p.AssertionDetails()
	if err != nil {
		return nil, err
	}
	s, err := OpenSigner(ctx, p, p.Key, p.Alg, o)
	if err != nil {
		return nil, err
	}
	cfg := token.Config{
		Issuer: p.Issuer, TokenEndpoint: p.TokenEndpoint, Audience: p.Audience, ClientID: p.ClientID,
		Signer: s, DPoP: p.WantsDPoP(), Scopes: p.Scopes, Resources: p.Resources,
		ParentOrg: p.ParentOrg, ChildOrg: p.ChildOrg, SFMJournalID: p.SFMJournalID, Details: details, Logger: o.Logger,
	}
	if p.DPoPKey != "" {
		if cfg.DPoPSigner, err = OpenSigner(ctx, p, p.DPoPKey, "", o); err != nil {
			return nil, fmt.Errorf("profile: DPoP key: %w", err)
		}
	}
	return token.NewClient(cfg)
}

// WantsDPoP tells whether p's tokens are DPoP-bound: as its dpop entry
// says, else when it names a DPoP key or a HelseID issuer (which, like
// NorskHelsenett's HelseID.Library, gets a proof by default).
func (p *Profile) WantsDPoP() bool {
	if p.DPoP != nil {
		return *p.DPoP
	}
	return p.DPoPKey != "" || token.DPoPByDefault(p.Issuer)
}

// AssertionDetails reads p's assertion_details_file (nil when there is
// none). The error names the file and what is wrong with it, never its
// content.
func (p *Profile) AssertionDetails() ([]any, error) {
	if p.AssertionDetailsFile == "" {
		return nil, nil
	}
	b, err := inputfile.Read(p.AssertionDetailsFile, inputfile.MaxConfig, "a JSON file of assertion details")
	if err != nil {
		return nil, err
	}
	d, err := assertion.ParseDetails(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.AssertionDetailsFile, err)
	}
	return d, nil
}
