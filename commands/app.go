package commands

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/keystore"
	// The backends built into the binary. A new backend is one more line.
	_ "github.com/jwkctl/jwkctl/keystore/file"
)

// Version is set at build time with -ldflags "-X …commands.Version=…".
var Version = "dev"

// App builds the jwkctl command line.
func App() *cli.App {
	return &cli.App{
		Name:    "jwkctl",
		Usage:   "generate, export, sign with and rotate an OAuth client's signing key",
		Version: Version,
		Description: "jwkctl keeps a private_key_jwt client's key in a file, a PKCS#11 HSM or Cloud KMS,\n" +
			"exports its public JWK for NHN Selvbetjening, signs client assertions and DPoP proofs,\n" +
			"and gets access tokens from HelseID or any OAuth 2.0 server.\n\n" +
			"Keys are named by URI: file:keys/client.json, pkcs11:token=…;object=…, gcpkms://projects/….",
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print progress and details on stderr", EnvVars: env("verbose")},
		},
		Commands: []*cli.Command{
			keysCommand(),
			assertionCommand(),
			tokenCommand(),
			callCommand(),
		},
		// Errors are printed once, by Main, as one line.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// Main runs app and returns the process exit code. Every error becomes one
// line "jwkctl: …" on stderr; stdout carries data only.
func Main(app *cli.App, args []string) int {
	if app.Writer == nil {
		app.Writer = os.Stdout
	}
	if app.ErrWriter == nil {
		app.ErrWriter = os.Stderr
	}
	err := app.Run(args)
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
	msg := strings.TrimSpace(err.Error())
	if msg != "" {
		// One line: a wrapped multi-line error is folded, never cut.
		msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ")), " ")
		fmt.Fprintln(w, "jwkctl: "+strings.TrimPrefix(msg, "jwkctl: "))
	}
	return code
}

func init() {
	// -v is --verbose; urfave/cli's version flag would claim it too and
	// every run would panic with "flag redefined: v".
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
}
