package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/file"
)

// envPrefix names every flag's environment variable: --client-id is
// JWKCTL_CLIENT_ID.
const envPrefix = "JWKCTL_"

// env returns the environment variable name for a flag name.
func env(flag string) []string {
	return []string{envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

// keyFlag is --key URI.
func keyFlag(required bool) *cli.StringFlag {
	return &cli.StringFlag{
		Name:     "key",
		Usage:    "key `URI`: file:path.json, pkcs11:token=…;object=…, gcpkms://projects/…, awskms:///alias/NAME?region=…, azurekv://VAULT.vault.azure.net/keys/NAME",
		EnvVars:  env("key"),
		Required: required,
	}
}

// backendFlags are the options of keystore.Options. Secrets come from a file
// or the environment, never from the command line.
func backendFlags() []cli.Flag {
	return []cli.Flag{
		&cli.PathFlag{
			Name:    "passphrase-file",
			Usage:   "read the passphrase that encrypts a file key from `FILE` (or set JWKCTL_PASSPHRASE)",
			EnvVars: env("passphrase-file"),
		},
		&cli.StringFlag{
			Name:    "kms-endpoint",
			Usage:   "Cloud KMS or AWS KMS API `ENDPOINT` (default: the cloud's own; a loopback address is spoken to without TLS, for fakes and local-kms); for azurekv: keys, a loopback https address that stands in for the vault (a test fake)",
			EnvVars: env("kms-endpoint"),
		},
		kmsTimeoutFlag(),
	}
}

// kmsTimeoutFlag is --kms-timeout, keystore.Options.KMSTimeout.
func kmsTimeoutFlag() *cli.DurationFlag {
	return &cli.DurationFlag{
		Name:        "kms-timeout",
		Usage:       "give up on a KMS operation that has not succeeded within `DURATION`, retries included (Cloud KMS: reading a public key and signing; AWS KMS and Azure Key Vault: signing)",
		DefaultText: "30s",
		EnvVars:     env("kms-timeout"),
		Action: func(_ *cli.Context, d time.Duration) error {
			if d < 0 {
				return fmt.Errorf("--kms-timeout must not be negative, not %v", d)
			}
			return nil
		},
	}
}

func outputFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:    "output",
		Aliases: []string{"o"},
		Usage:   "output `FORMAT`: text or json",
		Value:   "text",
		EnvVars: env("output"),
		Action: func(_ *cli.Context, v string) error {
			if v != "text" && v != "json" {
				return fmt.Errorf("--output must be text or json, not %q", v)
			}
			return nil
		},
	}
}

// backendOptions turns the backend flags into keystore.Options.
func backendOptions(c *cli.Context) (keystore.Options, error) {
	opts := keystore.Options{
		Endpoint:   c.String("kms-endpoint"),
		KMSTimeout: c.Duration("kms-timeout"),
		Log:        stderrLogger(c),
	}
	pass, err := passphrase(c)
	if err != nil {
		return opts, err
	}
	opts.Passphrase = pass
	return opts, nil
}

// passphrase reads --passphrase-file, else JWKCTL_PASSPHRASE, else nil.
func passphrase(c *cli.Context) ([]byte, error) {
	if f := c.Path("passphrase-file"); f != "" {
		return file.ReadPassphraseFile(f)
	}
	if p, ok := os.LookupEnv(envPrefix + "PASSPHRASE"); ok {
		if p == "" {
			return nil, fmt.Errorf("JWKCTL_PASSPHRASE is set but empty")
		}
		return []byte(p), nil
	}
	return nil, nil
}

// parseKeyURI reads --key and parses it.
func parseKeyURI(c *cli.Context) (*keystore.URI, error) {
	s := c.String("key")
	if s == "" {
		return nil, cli.Exit("no key given: use --key URI (or JWKCTL_KEY)", ExitUsage)
	}
	return keystore.Parse(s)
}

// openKey opens the key named by --key with the backend flags.
func openKey(c *cli.Context) (keystore.Key, error) {
	s := c.String("key")
	if s == "" {
		return nil, cli.Exit("no key given: use --key URI (or JWKCTL_KEY)", ExitUsage)
	}
	opts, err := backendOptions(c)
	if err != nil {
		return nil, err
	}
	return keystore.Open(c.Context, s, opts)
}

// stderrLogger logs warnings (and with --verbose, progress) to stderr.
func stderrLogger(c *cli.Context) *slog.Logger {
	level := slog.LevelWarn
	if verbose(c) {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// writeJSON prints v as indented JSON on stdout.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// lines splits the values of a repeatable flag whose values may hold
// commas and spaces (headers, client specs) on newlines only: that is how
// several go into one environment variable (JWKCTL_HEADER="A: 1
// B: 2"). Empty lines are dropped.
func lines(values []string) []string {
	var out []string
	for _, v := range values {
		for _, l := range strings.Split(v, "\n") {
			if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
	}
	return out
}
