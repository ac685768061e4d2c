package commands

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/signer"
)

func assertionCommand() *cli.Command {
	return &cli.Command{
		Name:  "assertion",
		Usage: "sign one RFC 7523 client assertion (private_key_jwt) and print it",
		Description: "Prints a compact JWS with the HelseID profile: typ client-authentication+jwt, iss = sub =\n" +
			"client id, aud, iat, nbf, exp (default 10 s later) and a random jti. Most users want\n" +
			"`jwkctl token`, which signs a fresh assertion for every request; this command is for\n" +
			"debugging and for tools that send the assertion themselves.\n\n" +
			"Example:\n   jwkctl assertion --key file:keys/client.json --client-id my-client --audience https://helseid-sts.test.nhn.no",
		Flags: append([]cli.Flag{
			keyFlag(true),
			&cli.StringFlag{Name: "client-id", Usage: "client `ID` (iss and sub)", Required: true, EnvVars: env("client-id")},
			&cli.StringFlag{Name: "audience", Usage: "`AUD`: for HelseID the issuer URI, e.g. https://helseid-sts.test.nhn.no", Required: true, EnvVars: env("audience")},
			algFlag("JOSE `ALG` (default: PS256 for RSA keys, the curve's ES alg for EC keys)"),
			kidFlag(),
			&cli.DurationFlag{Name: "lifetime", Usage: "`DURATION` from iat to exp", Value: assertion.DefaultLifetime, EnvVars: env("lifetime")},
			&cli.BoolFlag{Name: "force-lifetime", Usage: "allow a lifetime over 60s", EnvVars: env("force-lifetime")},
			&cli.StringFlag{Name: "typ", Usage: "JWT `TYP` header", Value: assertion.TypHelseID, EnvVars: env("typ")},
			&cli.StringFlag{Name: "parent-org", Usage: "multi-tenant client: the parent organisation `ORGNR` (assertion_details)", EnvVars: env("parent-org")},
			&cli.StringFlag{Name: "child-org", Usage: "the child organisation `ORGNR` (assertion_details)", EnvVars: env("child-org")},
			&cli.StringFlag{Name: "sfm-journal-id", Usage: "SFM journal `ID`, sent as the nhn:sfm:journal-id assertion detail", EnvVars: env("sfm-journal-id")},
			&cli.PathFlag{Name: "assertion-details", Usage: "JSON `FILE` of further assertion_details: one object with a \"type\", or an array of them", EnvVars: env("assertion-details")},
		}, backendFlags()...),
		Action: runAssertion,
	}
}

func runAssertion(c *cli.Context) error {
	// The details first: a bad file is found before an HSM or KMS is asked.
	details, err := assertion.OrgDetails(c.String("parent-org"), c.String("child-org"))
	if err != nil {
		return err
	}
	details = append(details, assertion.SFMJournal(c.String("sfm-journal-id"))...)
	more, err := detailsOf(c, &profile.Profile{AssertionDetailsFile: c.Path("assertion-details")})
	if err != nil {
		return err
	}
	details = append(details, more...)
	key, err := openKey(c)
	if err != nil {
		return err
	}
	alg, err := keyAlg(c, key)
	if err != nil {
		return err
	}
	s, err := signer.New(key, alg)
	if err != nil {
		return err
	}
	if s, err = s.WithKeyID(c.String("kid")); err != nil {
		return err
	}
	lifetime := c.Duration("lifetime")
	if lifetime%time.Second != 0 {
		return cli.Exit(fmt.Sprintf("--lifetime must be whole seconds, not %v", lifetime), ExitUsage)
	}
	if lifetime > assertion.MaxLifetime && !c.Bool("force-lifetime") {
		return cli.Exit(fmt.Sprintf("--lifetime %v is longer than %v (HelseID's limit), so a leaked assertion would stay usable; add --force-lifetime if the server really needs it", lifetime, assertion.MaxLifetime), ExitUsage)
	}
	ac, err := assertion.NewClient(s, assertion.Config{
		ClientID: c.String("client-id"),
		Audience: c.String("audience"),
		Lifetime: lifetime,
		Force:    c.Bool("force-lifetime"),
		Typ:      c.String("typ"),
		Details:  details,
	})
	if err != nil {
		return err
	}
	jwt, err := ac.Sign()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.App.Writer, jwt)
	return err
}
