package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/keystore"
	// The backends always built in. The cloud ones are in backend_*.go,
	// each behind a jwkctl_no_* build tag that leaves it (and its SDK's
	// start-up cost) out of a lean build.
	_ "github.com/jwkctl/jwkctl/keystore/file"
	_ "github.com/jwkctl/jwkctl/keystore/pkcs11"
)

// App builds the jwkctl command line.
func App() *cli.App {
	app := &cli.App{
		Name:    "jwkctl",
		Usage:   "generate, export, sign with and rotate an OAuth client's signing key",
		Version: appVersion(),
		Description: "jwkctl keeps a private_key_jwt client's key in a file, a PKCS#11 HSM, Cloud KMS, AWS KMS or\n" +
			"Azure Key Vault, exports its public JWK for NHN Selvbetjening, signs client assertions and DPoP\n" +
			"proofs, and gets access tokens from HelseID or any OAuth 2.0 server.\n\n" +
			"Keys are named by URI: file:keys/client.json, pkcs11:token=…;object=…, gcpkms://projects/…,\n" +
			"awskms:///alias/NAME?region=…, azurekv://VAULT.vault.azure.net/keys/NAME.",
		EnableBashCompletion: true,
		// Repeatable flags take one value each: commas are legal inside
		// resource URIs, scope tokens and header values, so they never
		// split one (scopes and resources may be space-separated).
		DisableSliceFlagSeparator: true,
		HideHelpCommand:           true,
		Flags: []cli.Flag{
			verboseFlag(),
		},
		Commands: []*cli.Command{
			initCommand(),
			keysCommand(),
			assertionCommand(),
			tokenCommand(),
			callCommand(),
			devCommand(),
			quickstartCommand(),
			serveCommand(),
			healthCommand(),
			rotateCommand(),
			completionCommand(),
		},
		// Errors are printed once, by Main, as one line.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return cli.Exit(fmt.Sprintf("unknown command %q (see jwkctl --help)", c.Args().First()), ExitUsage)
			}
			return cli.ShowAppHelp(c)
		},
	}
	quietUsage(app.Commands)
	return app
}

func verboseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print progress and details on stderr", EnvVars: env("verbose")}
}

// verbose reports whether -v was given before or after the command name.
func verbose(c *cli.Context) bool {
	for _, cc := range c.Lineage() {
		if cc.Bool("verbose") {
			return true
		}
	}
	return false
}

func hasFlag(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

// ExitUsage is the exit code for a mistake on the command line.
const ExitUsage = 2

func usageError(_ *cli.Context, err error, _ bool) error {
	return cli.Exit(err.Error()+" (see --help)", ExitUsage)
}

// quietUsage makes flag mistakes one line with exit code 2. Left alone,
// urfave/cli prints the whole help text to stdout, which carries data only,
// for an unknown or a missing required flag.
func quietUsage(cmds []*cli.Command) {
	for _, cmd := range cmds {
		// A command may have its own (keys expiry: exit 3, UNKNOWN).
		onUsage := cmd.OnUsageError
		if onUsage == nil {
			onUsage = usageError
			cmd.OnUsageError = onUsage
		}
		if len(cmd.Subcommands) > 0 && cmd.Action == nil {
			cmd.Action = func(c *cli.Context) error {
				if c.Args().Present() {
					return cli.Exit(fmt.Sprintf("unknown command %q (see %s --help)", c.Args().First(), c.Command.HelpName), ExitUsage)
				}
				return cli.ShowSubcommandHelp(c)
			}
		}
		var required []cli.Flag
		for _, f := range cmd.Flags {
			if unrequire(f) {
				required = append(required, f)
			}
		}
		// A leaf command without ArgsUsage takes flags only: a stray word
		// ("keys generate --bits 2048 ES256") is a mistake, not something
		// to ignore.
		flagsOnly := cmd.Action != nil && len(cmd.Subcommands) == 0 && cmd.ArgsUsage == ""
		// -v works after the command name too ("jwkctl call -v URL"),
		// not only before it.
		if !hasFlag(cmd, "verbose") { // also between a group and its subcommand: jwkctl keys -v list
			cmd.Flags = append(cmd.Flags, verboseFlag())
		}
		if len(required) > 0 || flagsOnly {
			before := cmd.Before
			cmd.Before = func(c *cli.Context) error {
				if flagsOnly && c.Args().Present() {
					return onUsage(c, fmt.Errorf("%s takes no arguments, got %q (every value goes with its flag, and flags after an argument are not read)", strings.TrimPrefix(c.Command.HelpName, c.App.Name+" "), c.Args().First()), true)
				}
				for _, f := range required {
					name := f.Names()[0]
					if !c.IsSet(name) {
						hint := ""
						if ev, ok := f.(interface{ GetEnvVars() []string }); ok && len(ev.GetEnvVars()) > 0 {
							hint = " (or " + ev.GetEnvVars()[0] + ")"
						}
						return cli.Exit(fmt.Sprintf("missing --%s%s; see %s --help", name, hint, c.Command.HelpName), ExitUsage)
					}
				}
				if before != nil {
					return before(c)
				}
				return nil
			}
		}
		quietUsage(cmd.Subcommands)
	}
}

// unrequire clears a flag's Required mark and reports whether it was set.
func unrequire(f cli.Flag) bool {
	switch f := f.(type) {
	case *cli.StringFlag:
		r := f.Required
		f.Required = false
		return r
	case *cli.PathFlag:
		r := f.Required
		f.Required = false
		return r
	case *cli.StringSliceFlag:
		r := f.Required
		f.Required = false
		return r
	case *cli.IntFlag:
		r := f.Required
		f.Required = false
		return r
	case *cli.DurationFlag:
		r := f.Required
		f.Required = false
		return r
	case *cli.BoolFlag:
		r := f.Required
		f.Required = false
		return r
	}
	return false
}

// Main runs app and returns the process exit code. Every error becomes one
// line "jwkctl: …" on stderr; stdout carries data only.
func Main(app *cli.App, args []string) int {
	return MainContext(context.Background(), app, args)
}

// MainContext is Main with a context that cancels long-running commands
// (jwkctl serve, jwkctl dev …).
func MainContext(ctx context.Context, app *cli.App, args []string) int {
	if app.Writer == nil {
		app.Writer = os.Stdout
	}
	if app.ErrWriter == nil {
		app.ErrWriter = os.Stderr
	}
	err := app.RunContext(ctx, args)
	if cerr := keystore.CloseAll(); err == nil && cerr != nil {
		err = cerr
	}
	return report(app.ErrWriter, err)
}

func report(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	code := 1
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
		if code == 0 {
			return 0
		}
	}
	msg := strings.TrimSpace(printable(err.Error()))
	if msg != "" {
		// One line: a wrapped multi-line error is folded, never cut.
		msg = strings.Join(strings.Fields(msg), " ")
		fmt.Fprintln(w, "jwkctl: "+strings.TrimPrefix(msg, "jwkctl: "))
	}
	return code
}

func init() {
	// -v is --verbose; urfave/cli's version flag would claim it too and
	// every run would panic with "flag redefined: v".
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
	// "jwkctl v0.3.1 (rev …)", not urfave/cli's "jwkctl version …".
	cli.VersionPrinter = printVersion
}

// printable replaces control characters (a server's escape sequences,
// line breaks) with spaces, so text from elsewhere cannot drive the
// terminal or forge lines of output.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
