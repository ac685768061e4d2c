package commands

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/token"
)

// HelseID's issuers, for help texts and docs.
const (
	helseIDTest = "https://helseid-sts.test.nhn.no"
	helseIDProd = "https://helseid-sts.nhn.no"
)

// profileFlags are --profile and --config.
func profileFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Usage: "take the client settings from profile `NAME` in the config file (flags override it)", EnvVars: env("profile")},
		&cli.PathFlag{Name: "config", Usage: "profiles `FILE` (default $JWKCTL_CONFIG, else ~/.config/jwkctl/config.yaml)"},
	}
}

// clientFlags describe the OAuth client: who it is, where it gets tokens,
// what it asks for.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "client-id", Usage: "the client's `ID` (Selvbetjening shows it)", EnvVars: env("client-id")},
		&cli.StringFlag{Name: "issuer", Usage: "authorization server `URL`; the token endpoint is found by discovery (HelseID test: " + helseIDTest + ", production: " + helseIDProd + ")", EnvVars: env("issuer")},
		&cli.StringFlag{Name: "token-endpoint", Usage: "token endpoint `URL`, skipping discovery", EnvVars: env("token-endpoint")},
		&cli.StringFlag{Name: "audience", Usage: "the assertion's aud, a `URI` (default: the issuer, else the token endpoint)", EnvVars: env("audience")},
		&cli.StringSliceFlag{Name: "scope", Usage: "`SCOPES` to ask for, space separated or repeated", EnvVars: env("scope")},
		&cli.StringSliceFlag{Name: "resource", Usage: "resource indicator `URI` (RFC 8707), repeated or space separated", EnvVars: env("resource")},
		&cli.BoolFlag{Name: "dpop", Usage: "ask for a DPoP-bound token (RFC 9449); proofs are signed with --dpop-key, else --key. On by default for HelseID's issuers; --dpop=false turns it off", EnvVars: env("dpop")},
		&cli.StringFlag{Name: "dpop-key", Usage: "key `URI` for DPoP proofs (implies --dpop)", EnvVars: env("dpop-key")},
		&cli.StringFlag{Name: "parent-org", Usage: "multi-tenant client: the parent organisation `ORGNR` it acts for (HelseID assertion_details)", EnvVars: env("parent-org")},
		&cli.StringFlag{Name: "child-org", Usage: "the child organisation (underenhet) `ORGNR`; alone, for a single-tenant client", EnvVars: env("child-org")},
		&cli.StringFlag{Name: "sfm-journal-id", Usage: "SFM journal `ID`, sent as the nhn:sfm:journal-id assertion detail", EnvVars: env("sfm-journal-id")},
		&cli.PathFlag{Name: "assertion-details", Usage: "JSON `FILE` of further assertion_details: one object with a \"type\" (such as nhn:tillitsrammeverk:parameters), or an array of them", EnvVars: env("assertion-details")},
		&cli.StringFlag{Name: "alg", Usage: "signature `ALG` (default: PS256 for RSA, ES256/384/512 for EC, the KMS key's own)", EnvVars: env("alg")},
		kidFlag(),
	}
}

// kidFlag is --kid: the kid a key is registered under, when that is not
// its RFC 7638 thumbprint and the key cannot record it.
func kidFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "kid", Usage: "sign with this `KID` in the header: the one the key is registered under in Selvbetjening, when that is not its RFC 7638 thumbprint (default: the key file's kid, else the thumbprint)", EnvVars: env("kid")}
}

// tokenFlags are every flag a command that gets tokens needs: the key,
// its backend, the profile and the client. quickstart, serve and rotate
// can reuse them with tokenSourceFromFlags.
func tokenFlags() []cli.Flag {
	fl := []cli.Flag{keyFlag(false)}
	fl = append(fl, backendFlags()...)
	fl = append(fl, profileFlags()...)
	return append(fl, clientFlags()...)
}

// resolveProfile loads the named (or default) profile and lays the flags
// that were set on top of it. With no profile and no config file it
// returns the flags alone.
func resolveProfile(c *cli.Context) (*profile.Profile, error) {
	path := c.Path("config")
	if path == "" {
		var err error
		if path, err = profile.DefaultPath(); err != nil && c.String("profile") != "" {
			return nil, err
		}
	}
	p := &profile.Profile{}
	if path != "" {
		f, err := profile.Load(path)
		switch {
		case errors.Is(err, fs.ErrNotExist) && c.String("profile") == "" && !c.IsSet("config"):
			// No config file and none asked for: flags only.
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%w (create it, or pass --config FILE)", err)
		case err != nil:
			return nil, err
		default:
			got, err := f.Get(c.String("profile"))
			if err != nil {
				return nil, err
			}
			if got != nil {
				p = got.Clone()
			}
		}
	}
	str := func(flag string, dst *string) {
		if c.IsSet(flag) {
			*dst = c.String(flag)
		}
	}
	str("key", &p.Key)
	str("client-id", &p.ClientID)
	str("issuer", &p.Issuer)
	str("token-endpoint", &p.TokenEndpoint)
	str("audience", &p.Audience)
	str("dpop-key", &p.DPoPKey)
	str("parent-org", &p.ParentOrg)
	str("child-org", &p.ChildOrg)
	str("sfm-journal-id", &p.SFMJournalID)
	str("alg", &p.Alg)
	str("kid", &p.Kid)
	str("kms-endpoint", &p.KMSEndpoint)
	if c.IsSet("passphrase-file") {
		p.PassphraseFile = c.Path("passphrase-file")
	}
	if c.IsSet("assertion-details") {
		p.AssertionDetailsFile = c.Path("assertion-details")
	}
	if c.IsSet("dpop") {
		p.DPoP = new(c.Bool("dpop"))
	}
	if c.IsSet("scope") {
		p.Scopes = splitSpaces(c.StringSlice("scope"))
	}
	if c.IsSet("resource") {
		p.Resources = splitSpaces(c.StringSlice("resource")) // URIs hold no spaces
	}
	if p.DPoPKey != "" && p.DPoP == nil {
		p.DPoP = new(true)
	}
	// Missing settings are command-line mistakes: exit 2.
	if p.Key == "" {
		return nil, cli.Exit("no key given: use --key URI, JWKCTL_KEY or a profile with a key entry", ExitUsage)
	}
	if p.ClientID == "" {
		return nil, cli.Exit("no client id: use --client-id, JWKCTL_CLIENT_ID or a profile with a client_id entry", ExitUsage)
	}
	if p.Issuer == "" && p.TokenEndpoint == "" {
		return nil, cli.Exit(fmt.Sprintf("no authorization server: use --issuer (HelseID test: %s) or --token-endpoint", helseIDTest), ExitUsage)
	}
	return p, nil
}

// splitSpaces turns ["a b", "c"] into ["a", "b", "c"].
func splitSpaces(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.Fields(s)...)
	}
	return out
}

// openSigner opens a key URI with the backend settings of p and makes a
// signer for alg (empty: the key's default).
func openSigner(c *cli.Context, p *profile.Profile, uri, alg string) (*signer.Signer, error) {
	// A --passphrase-file flag or JWKCTL_PASSPHRASE wins over the profile's.
	opts, err := backendOptions(c)
	if err != nil {
		return nil, err
	}
	q := p
	if opts.Passphrase != nil {
		q = p.Clone()
		q.PassphraseFile = ""
	}
	return profile.OpenSigner(c.Context, q, uri, alg, profile.ClientOptions{Backend: opts})
}

// tokenClientFromFlags builds a token.Client from the profile and flags.
func tokenClientFromFlags(c *cli.Context) (*token.Client, *profile.Profile, error) {
	p, err := resolveProfile(c)
	if err != nil {
		return nil, nil, err
	}
	// Before the key is opened: a bad file is found before an HSM or KMS
	// is asked.
	details, err := detailsOf(c, p)
	if err != nil {
		return nil, nil, err
	}
	s, err := openSigner(c, p, p.Key, p.Alg)
	if err != nil {
		return nil, nil, err
	}
	cfg := token.Config{
		Issuer:        p.Issuer,
		TokenEndpoint: p.TokenEndpoint,
		Audience:      p.Audience,
		ClientID:      p.ClientID,
		Signer:        s,
		DPoP:          p.WantsDPoP(),
		Scopes:        p.Scopes,
		Resources:     p.Resources,
		ParentOrg:     p.ParentOrg,
		ChildOrg:      p.ChildOrg,
		SFMJournalID:  p.SFMJournalID,
		Details:       details,
		Logger:        stderrLogger(c),
	}

	if p.DPoPKey != "" {
		// The DPoP key picks its own algorithm: --alg is for the client key.
		if cfg.DPoPSigner, err = openSigner(c, p, p.DPoPKey, ""); err != nil {
			return nil, nil, fmt.Errorf("DPoP key: %w", err)
		}
	}
	tc, err := token.NewClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	return tc, p, nil
}

// tokenSourceFromFlags is the one-call setup for commands that need
// tokens: profile + flags → key → signer → client → caching source.
func tokenSourceFromFlags(c *cli.Context, opts ...token.SourceOption) (*token.Source, *profile.Profile, error) {
	tc, p, err := tokenClientFromFlags(c)
	if err != nil {
		return nil, nil, err
	}
	return token.NewSource(tc, opts...), p, nil
}

// detailsOf reads the assertion details file of p; a bad one is a usage
// error naming where it was given (--assertion-details or the profile).
func detailsOf(c *cli.Context, p *profile.Profile) ([]any, error) {
	d, err := p.AssertionDetails()
	if err == nil {
		return d, nil
	}
	if c.IsSet("assertion-details") {
		return nil, cli.Exit("--assertion-details: "+err.Error(), ExitUsage)
	}
	return nil, fmt.Errorf("the profile's assertion_details_file: %w", err)
}
