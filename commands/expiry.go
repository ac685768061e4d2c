package commands

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/rotation"
	"github.com/jwkctl/jwkctl/token"
)

// Exit codes of keys expiry, as Nagios-style monitors read them.
const (
	expiryOK       = 0
	expiryWarning  = 1
	expiryCritical = 2
	// expiryUnknown is every error: the check could not be made.
	expiryUnknown = 3
)

func keysExpiryCommand() *cli.Command {
	// An --output mistake is an error of this command too: UNKNOWN.
	output := outputFlag()
	if check := output.Action; check != nil {
		output.Action = func(c *cli.Context, v string) error { return unknown(check(c, v)) }
	}
	return &cli.Command{
		Name:  "expiry",
		Usage: "show the keys registered for a profile's client in Selvbetjening and when they expire",
		Description: "Asks the Selvbetjening client-secret API (authenticated with the profile's current key) for\n" +
			"the registered keys. The first line of output is OK, WARNING or CRITICAL for the profile's\n" +
			"current key, and the exit code is 0, 1 or 2 accordingly, for cron and Nagios-style monitors.\n" +
			"Any error (a missing --profile, a bad --warn, a key that does not open, HelseID or\n" +
			"Selvbetjening unreachable) exits 3, UNKNOWN, with one line \"jwkctl: …\" on stderr.\n\n" +
			"Example:\n   jwkctl keys expiry --profile helseid-prod --warn 30d --critical 7d",
		Flags: append([]cli.Flag{
			// Not Required: a missing profile must exit 3, not the usage code 2.
			&cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Usage: "profile `NAME` (default: the config file's default profile)", EnvVars: env("profile")},
			&cli.PathFlag{Name: "config", Usage: "profiles `FILE`", EnvVars: env("config")},
			&cli.StringFlag{Name: "warn", Usage: "warn when the current key expires within `DURATION` (e.g. 30d, 720h)", Value: "30d", EnvVars: env("warn")},
			&cli.StringFlag{Name: "critical", Usage: "critical within `DURATION`", Value: "7d", EnvVars: env("critical")},
			output,
		}, backendFlags()...),
		// A mistyped flag or a stray argument is an error too: UNKNOWN.
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return unknown(fmt.Errorf("%w (see --help)", err)) },
		Action: func(c *cli.Context) error {
			code, err := runKeysExpiry(c)
			if err != nil {
				return unknown(err)
			}
			if code != expiryOK {
				return cli.Exit("", code)
			}
			return nil
		},
	}
}

// unknownError is an error of keys expiry: exit code 3 (UNKNOWN), so a
// monitor does not read it as WARNING (1) or CRITICAL (2).
type unknownError struct{ err error }

func (e unknownError) Error() string { return e.err.Error() }
func (e unknownError) Unwrap() error { return e.err }
func (e unknownError) ExitCode() int { return expiryUnknown }

func unknown(err error) error {
	if err == nil {
		return nil
	}
	return unknownError{err}
}

// hintedError replaces the hint of a wrapped error with one that fits
// keys expiry, which takes its server settings from the profile.
type hintedError struct {
	msg string
	err error
}

func (e hintedError) Error() string { return e.msg }
func (e hintedError) Unwrap() error { return e.err }

// profileHints rewords the token client's flag hints (--issuer,
// --token-endpoint, which keys expiry does not have) to the profile's
// entries, and says where the Selvbetjening URL comes from.
func profileHints(err error, name, path string) error {
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("profile %s in %s", name, path)
	msg := strings.NewReplacer(
		"(check --issuer, or give --token-endpoint)", "(check issuer, or set token_endpoint, in "+where+")",
		"(give --token-endpoint)", "(set token_endpoint in "+where+")",
		"(check --issuer)", "(check issuer in "+where+")",
		"(is --issuer or --token-endpoint right?)", "(are issuer and token_endpoint in "+where+" right?)",
	).Replace(err.Error())
	var pe *rotation.ProblemError
	var te *token.Error
	switch {
	case errors.Is(err, token.ErrInvalidScope):
		// HelseID gave no token for the client-secret API.
		msg += " (the client needs the scope " + rotation.Scope + " in HelseID to ask Selvbetjening about its keys; add it to the client in Selvbetjening)"
	case strings.HasPrefix(msg, "selvbetjening: ") && !errors.As(err, &pe) && !errors.As(err, &te) && !errors.Is(err, token.ErrDiscovery) && !strings.Contains(msg, where):
		// No answer from the client-secret API itself.
		msg += " (is Selvbetjening reachable? its URL is selvbetjening_url in " + where + ", else the one matching the issuer)"
	}
	if msg == err.Error() {
		return err
	}
	return hintedError{msg: msg, err: err}
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

// runKeysExpiry checks the profile's key and returns the exit code for
// its status; an error means the check could not be made (UNKNOWN).
func runKeysExpiry(c *cli.Context) (int, error) {
	name := c.String("profile")
	warn, err := parseDays(c.String("warn"))
	if err != nil {
		return 0, fmt.Errorf("--warn: %w", err)
	}
	crit, err := parseDays(c.String("critical"))
	if err != nil {
		return 0, fmt.Errorf("--critical: %w", err)
	}
	path := c.Path("config")
	if path == "" {
		if path, err = profile.DefaultPath(); err != nil {
			return 0, err
		}
	}
	f, err := profile.Load(path)
	if err != nil {
		return 0, err
	}
	p, err := f.Get(name) // "": the config's default profile
	if err != nil {
		return 0, err
	}
	if p == nil {
		return 0, fmt.Errorf("missing --profile (or JWKCTL_PROFILE), and %s names no default profile; see %s --help", path, c.Command.HelpName)
	}
	if name == "" {
		name = f.Default
	}
	// --passphrase-file or JWKCTL_PASSPHRASE wins over the profile's
	// passphrase_file, as in the other commands.
	backend, err := backendOptions(c)
	if err != nil {
		return 0, err
	}
	if backend.Passphrase != nil {
		p = p.Clone()
		p.PassphraseFile = ""
	}
	opts := profile.ClientOptions{Backend: backend}
	cur, err := profile.OpenSigner(c.Context, p, p.Key, p.Alg, opts)
	if err != nil {
		return 0, err
	}
	// Selvbetjening lists each key's registered kid and its thumbprint: a
	// key imported with its kid kept matches the first, any key the second.
	currentKid, usedKid := cur.Thumbprint(), cur.KeyID()
	sb, err := rotation.ProfileClient(c.Context, p, opts, nil)
	if err != nil {
		return 0, profileHints(err, name, path)
	}
	keys, err := sb.List(c.Context)
	if err != nil {
		return 0, profileHints(err, name, path)
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
			Current: k.JWKThumbprint == currentKid || k.Kid == currentKid || k.Kid == usedKid}
		if k.Expiration != nil {
			d := daysLeft(k.Expiration.Sub(now))
			r.DaysLeft = &d
		}
		if r.Current {
			code, status = expiryStatus(k.Expiration, now, warn, crit, name)
		}
		rows = append(rows, r)
	}
	if c.String("output") == "json" {
		if err := writeJSON(c.App.Writer, map[string]any{"status": status, "code": code, "keys": rows}); err != nil {
			return 0, err
		}
	} else {
		fmt.Fprintln(c.App.Writer, status)
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KID\tTHUMBPRINT\tEXPIRES\tDAYS LEFT\tORIGIN\tCURRENT")
		for _, r := range rows {
			exp, days := "-", "-"
			if r.Expiration != nil {
				exp, days = r.Expiration.Format(time.DateOnly), strconv.Itoa(*r.DaysLeft)
			}
			cur := ""
			if r.Current {
				cur = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", dash(r.Kid), dash(r.Thumbprint), exp, days, dash(r.Origin), cur)
		}
		tw.Flush()
	}
	return code, nil
}

// expiryStatus grades the current key's registration.
func expiryStatus(exp *time.Time, now time.Time, warn, crit time.Duration, profileName string) (int, string) {
	if exp == nil {
		return expiryOK, "OK: the current key is registered with no expiry"
	}
	left := exp.Sub(now)
	days := daysLeft(left)
	switch {
	case left <= 0:
		return expiryCritical, fmt.Sprintf("CRITICAL: the current key expired on %s; HelseID no longer accepts it: register a new key (jwkctl rotate run --profile %s)", exp.Format(time.DateOnly), profileName)
	case left <= crit:
		return expiryCritical, fmt.Sprintf("CRITICAL: the current key expires in %d days (%s); rotate now: jwkctl rotate run --profile %s", days, exp.Format(time.DateOnly), profileName)
	case left <= warn:
		return expiryWarning, fmt.Sprintf("WARNING: the current key expires in %d days (%s); plan a rotation", days, exp.Format(time.DateOnly))
	}
	return expiryOK, fmt.Sprintf("OK: the current key expires in %d days (%s)", days, exp.Format(time.DateOnly))
}

// daysLeft rounds a time left to whole days, so a key registered for 240
// hours shows 10, not 9, a few seconds later.
func daysLeft(left time.Duration) int {
	return int(math.Round(left.Hours() / 24))
}
