package commands

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/rotation"
	"github.com/jwkctl/jwkctl/signer"
)

// Exit codes of keys expiry, as Nagios-style monitors read them.
const (
	expiryOK       = 0
	expiryWarning  = 1
	expiryCritical = 2
)

func keysExpiryCommand() *cli.Command {
	return &cli.Command{
		Name:  "expiry",
		Usage: "show the keys registered for a profile's client in Selvbetjening and when they expire",
		Description: "Asks the Selvbetjening client-secret API (authenticated with the profile's current key) for\n" +
			"the registered keys. The first line of output is OK, WARNING or CRITICAL for the profile's\n" +
			"current key, and the exit code is 0, 1 or 2 accordingly, for cron and Nagios-style monitors.\n\n" +
			"Example:\n   jwkctl keys expiry --profile helseid-prod --warn 30d --critical 7d",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Usage: "profile `NAME`", Required: true, EnvVars: env("profile")},
			&cli.PathFlag{Name: "config", Usage: "profiles `FILE`", EnvVars: env("config")},
			&cli.StringFlag{Name: "warn", Usage: "warn when the current key expires within `DURATION` (e.g. 30d, 720h)", Value: "30d"},
			&cli.StringFlag{Name: "critical", Usage: "critical within `DURATION`", Value: "7d"},
			&cli.StringFlag{Name: "kms-endpoint", Usage: "Cloud KMS API `HOST:PORT`", EnvVars: env("kms-endpoint")},
			outputFlag(),
		},
		Action: runKeysExpiry,
	}
}

// parseDays reads "30d" or any time.ParseDuration string.
func parseDays(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func runKeysExpiry(c *cli.Context) error {
	warn, err := parseDays(c.String("warn"))
	if err != nil {
		return cli.Exit("--warn: "+err.Error(), ExitUsage)
	}
	crit, err := parseDays(c.String("critical"))
	if err != nil {
		return cli.Exit("--critical: "+err.Error(), ExitUsage)
	}
	path := c.Path("config")
	if path == "" {
		if path, err = profile.DefaultPath(); err != nil {
			return err
		}
	}
	f, err := profile.Load(path)
	if err != nil {
		return err
	}
	p, err := f.Get(c.String("profile"))
	if err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("%w %q", profile.ErrNotFound, c.String("profile"))
	}
	opts := profile.ClientOptions{Backend: keystore.Options{Endpoint: c.String("kms-endpoint"), Log: stderrLogger(c)}}
	cur, err := profile.OpenSigner(c.Context, p, p.Key, p.Alg, opts)
	if err != nil {
		return err
	}
	currentKid, _ := signer.Thumbprint(cur.Key().Public())
	sb, err := rotation.ProfileClient(c.Context, p, opts, nil)
	if err != nil {
		return err
	}
	keys, err := sb.List(c.Context)
	if err != nil {
		return err
	}
	now := time.Now()
	code, status := expiryCritical, fmt.Sprintf("CRITICAL: the profile's key %s is not registered for client %s", currentKid, p.ClientID)
	type row struct {
		Kid        string     `json:"kid"`
		Thumbprint string     `json:"jwk_thumbprint"`
		Expiration *time.Time `json:"expiration,omitempty"`
		DaysLeft   *int       `json:"days_left,omitempty"`
		Origin     string     `json:"origin,omitempty"`
		Current    bool       `json:"current"`
	}
	var rows []row
	for _, k := range keys {
		r := row{Kid: k.Kid, Thumbprint: k.JWKThumbprint, Expiration: k.Expiration, Origin: k.Origin,
			Current: k.JWKThumbprint == currentKid || k.Kid == currentKid}
		if k.Expiration != nil {
			d := int(k.Expiration.Sub(now).Hours() / 24)
			r.DaysLeft = &d
		}
		if r.Current {
			code, status = expiryStatus(k.Expiration, now, warn, crit, c.String("profile"))
		}
		rows = append(rows, r)
	}
	if c.String("output") == "json" {
		if err := writeJSON(c.App.Writer, map[string]any{"status": status, "code": code, "keys": rows}); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(c.App.Writer, status)
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KID\tEXPIRES\tDAYS LEFT\tORIGIN\tCURRENT")
		for _, r := range rows {
			exp, days := "-", "-"
			if r.Expiration != nil {
				exp, days = r.Expiration.Format(time.DateOnly), strconv.Itoa(*r.DaysLeft)
			}
			cur := ""
			if r.Current {
				cur = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", dash(r.Thumbprint), exp, days, dash(r.Origin), cur)
		}
		tw.Flush()
	}
	if code != expiryOK {
		return cli.Exit("", code)
	}
	return nil
}

// expiryStatus grades the current key's registration.
func expiryStatus(exp *time.Time, now time.Time, warn, crit time.Duration, profileName string) (int, string) {
	if exp == nil {
		return expiryOK, "OK: the current key is registered with no expiry"
	}
	left := exp.Sub(now)
	days := int(left.Hours() / 24)
	switch {
	case left <= crit:
		return expiryCritical, fmt.Sprintf("CRITICAL: the current key expires in %d days (%s); rotate now: jwkctl rotate run --profile %s", days, exp.Format(time.DateOnly), profileName)
	case left <= warn:
		return expiryWarning, fmt.Sprintf("WARNING: the current key expires in %d days (%s); plan a rotation", days, exp.Format(time.DateOnly))
	}
	return expiryOK, fmt.Sprintf("OK: the current key expires in %d days (%s)", days, exp.Format(time.DateOnly))
}
