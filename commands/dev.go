package commands

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/inputfile"
)

func devCommand() *cli.Command {
	return &cli.Command{
		Name:        "dev",
		Usage:       "local stand-ins for development and demos (not for production)",
		Subcommands: devSubcommands(),
	}
}

// The fakes of the cloud KMSes, set by backend_*.go when the backend is
// built in; and how long AWS KMS keeps a deleted key.
var (
	devKMS, devAWSKMS     func() *cli.Command
	devAzureKV            func() *cli.Command
	awsDeletionWindowDays int
)

func devSubcommands() []*cli.Command {
	cmds := []*cli.Command{devSTSCommand()}
	for _, f := range []func() *cli.Command{devKMS, devAWSKMS, devAzureKV} {
		if f != nil {
			cmds = append(cmds, f())
		}
	}
	return cmds
}

func devSTSCommand() *cli.Command {
	return &cli.Command{
		Name:  "sts",
		Usage: "serve a HelseID-like dev STS on loopback, with clients registered from public JWK files",
		Description: "A small token service for local development: discovery, JWKS, a token endpoint for\n" +
			"client_credentials with private_key_jwt, DPoP with nonces, and a demo API at\n" +
			devsts.DemoAPIPath + "{herId} that needs scope " + devsts.DemoScope + ", and a fake of Selvbetjening's\n" +
			"client-secret API at " + devsts.SelvbetjeningPath + " (scope " + devsts.SelvbetjeningScope + ") for trying key rotation.\n" +
			"Not for production.\n\n" +
			"Example:\n" +
			"   jwkctl keys public --key file:keys/demo.json > demo.jwk\n" +
			"   jwkctl dev sts --listen 127.0.0.1:8443 --client 'demo=demo.jwk:" + devsts.DemoScope + "'",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Usage: "loopback `ADDR` to listen on", Value: "127.0.0.1:8080", EnvVars: env("dev-sts-listen")},
			&cli.StringSliceFlag{Name: "client", Usage: "register a client: `ID=PUBLIC_JWK_FILE[:SCOPES]` (file holds a JWK or JWKS; scopes space separated); repeatable (in JWKCTL_DEV_STS_CLIENT, one per line)", EnvVars: env("dev-sts-client")},
			&cli.BoolFlag{Name: "no-nonce", Usage: "do not require DPoP nonces (HelseID does)", EnvVars: env("no-nonce")},
			&cli.BoolFlag{Name: "require-dpop", Usage: "refuse token requests without DPoP", EnvVars: env("require-dpop")},
			&cli.DurationFlag{Name: "token-lifetime", Usage: "access token lifetime `DURATION`", Value: 5 * time.Minute, EnvVars: env("token-lifetime")},
			&cli.DurationFlag{Name: "key-lifetime", Usage: "how long (`DURATION`) a registered client key stays valid; short ones let you try jwkctl keys expiry", Value: devsts.KeyLifetime, EnvVars: env("key-lifetime")},
		},
		Action: runDevSTS,
	}
}

func runDevSTS(c *cli.Context) error {
	addr := c.String("listen")
	if !devsts.IsLoopback(addr) {
		return fmt.Errorf("--listen %s: the dev STS listens on loopback only (e.g. 127.0.0.1:8080)", addr)
	}
	type reg struct {
		id     string
		keys   []jose.JSONWebKey
		scopes []string
	}
	var regs []reg
	for _, spec := range lines(c.StringSlice("client")) {
		id, keys, scopes, err := parseClientSpec(spec)
		if err != nil {
			return err
		}
		regs = append(regs, reg{id, keys, scopes})
	}
	if len(regs) == 0 {
		return cli.Exit("no clients: add --client ID=PUBLIC_JWK_FILE[:SCOPES] (see jwkctl dev sts --help)", ExitUsage)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	sts, stop, err := devsts.Serve(ln, devsts.Config{
		NoNonce:       c.Bool("no-nonce"),
		RequireDPoP:   c.Bool("require-dpop"),
		TokenLifetime: c.Duration("token-lifetime"),
		KeyLifetime:   c.Duration("key-lifetime"),
		Logger:        stderrLogger(c),
	})
	if err != nil {
		return err
	}
	defer stop()
	sts.EnableSelvbetjening()
	for _, r := range regs {
		if err := sts.RegisterClient(r.id, r.keys, r.scopes); err != nil {
			return err
		}
		fmt.Fprintf(c.App.ErrWriter, "registered client %s with %d key(s), scopes %q\n", r.id, len(r.keys), strings.Join(r.scopes, " "))
	}
	fmt.Fprintf(c.App.ErrWriter, "dev STS (NOT for production) listening; issuer %s\n", sts.Issuer())
	ctx, cancel := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	<-ctx.Done()
	fmt.Fprintln(c.App.ErrWriter, "dev STS stopped")
	return nil
}

// parseClientSpec reads ID=FILE[:SCOPES]. Scopes hold colons themselves
// (nhn:cp-api/…), so the first colon after the file name starts them.
func parseClientSpec(spec string) (id string, keys []jose.JSONWebKey, scopes []string, err error) {
	id, rest, ok := strings.Cut(spec, "=")
	if !ok || id == "" || rest == "" {
		return "", nil, nil, fmt.Errorf("--client %q: want ID=PUBLIC_JWK_FILE[:SCOPES]", spec)
	}
	file, scopeList, _ := strings.Cut(rest, ":")
	data, err := inputfile.Read(file, inputfile.MaxKey, "a public JWK or JWKS file")
	if err != nil {
		return "", nil, nil, fmt.Errorf("--client %s: %w", id, err)
	}
	var set jose.JSONWebKeySet
	if json.Unmarshal(data, &set) == nil && len(set.Keys) > 0 {
		keys = set.Keys
	} else {
		var k jose.JSONWebKey
		if err := json.Unmarshal(data, &k); err != nil {
			return "", nil, nil, fmt.Errorf("--client %s: %s holds no JWK or JWKS", id, file)
		}
		keys = []jose.JSONWebKey{k}
	}
	for _, k := range keys {
		if !k.IsPublic() {
			return "", nil, nil, fmt.Errorf("--client %s: %s holds a private key; register the public JWK (jwkctl keys public)", id, file)
		}
	}
	scopes = strings.FieldsFunc(scopeList, func(r rune) bool { return r == ' ' || r == ',' })
	return id, keys, scopes, nil
}
