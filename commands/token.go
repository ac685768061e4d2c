package commands

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/token"
)

func tokenCommand() *cli.Command {
	flags := tokenFlags()
	flags = append(flags,
		&cli.BoolFlag{Name: "raw", Usage: "print only the access token", EnvVars: env("raw")},
		&cli.BoolFlag{Name: "cache", Usage: "reuse a token cached on disk until shortly before it expires (files are 0600)", EnvVars: env("cache")},
		&cli.PathFlag{Name: "cache-dir", Usage: "token cache `DIR` (default $XDG_CACHE_HOME/jwkctl/tokens)", EnvVars: env("cache-dir")},
		&cli.StringFlag{Name: "agent", Usage: "get the token for --profile from the jwkctl serve agent at `ADDR` (unix:/path.sock, or 127.0.0.1:PORT on loopback only)", EnvVars: env("agent")},
		&cli.PathFlag{Name: "agent-secret-file", Usage: "bearer secret `FILE` of a TCP agent", EnvVars: env("agent-secret-file")},
	)
	return &cli.Command{
		Name:  "token",
		Usage: "get an access token with the key (client credentials, private_key_jwt)",
		Description: "Signs a fresh client assertion with the key and exchanges it at the token endpoint,\n" +
			"with a DPoP proof with --dpop (the default for HelseID's issuers; --dpop=false turns it\n" +
			"off). Prints the token response as JSON, or the access token alone with --raw.\n" +
			"Settings come from --profile NAME and the flags.\n\n" +
			"   jwkctl token --key file:client.json --client-id my-client \\\n" +
			"     --issuer " + helseIDTest + " --scope nhn:cp-api/access-v2-dpop",
		Flags:  flags,
		Action: runToken,
	}
}

func runToken(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("token takes no arguments, got %q (scopes go in --scope)", c.Args().First())
	}
	if addr := c.String("agent"); addr != "" {
		return runTokenFromAgent(c, addr)
	}
	var opts []token.SourceOption
	if c.Bool("cache") || c.IsSet("cache-dir") {
		dir := c.Path("cache-dir")
		if dir == "" {
			var err error
			if dir, err = token.DefaultCacheDir(); err != nil {
				return err
			}
		}
		opts = append(opts, token.WithCache(token.FileCache{Dir: dir}))
	}
	src, _, err := tokenSourceFromFlags(c, opts...)
	if err != nil {
		return err
	}
	resp, err := src.Response(c.Context)
	if err != nil {
		return err
	}
	log := stderrLogger(c)
	log.Debug("got a token", slog.String("client_id", src.Client().ClientID()), slog.String("kid", src.Client().KeyID()),
		slog.String("token_type", resp.TokenType), slog.String("scope", resp.Scope), slog.String("expires", expiresText(resp.Expiry)))
	if c.Bool("raw") {
		_, err := fmt.Fprintln(c.App.Writer, resp.AccessToken)
		return err
	}
	return writeJSON(c.App.Writer, json.RawMessage(resp.Raw))
}

func expiresText(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.Format(time.RFC3339)
}

// agentFlags are the token flags that go with --agent: the agent's
// profile decides the key, the client and the rest.
var agentFlags = map[string]bool{"agent": true, "agent-secret-file": true, "profile": true, "scope": true, "raw": true, "help": true, "verbose": true}

// runTokenFromAgent asks a running agent instead of signing here.
func runTokenFromAgent(c *cli.Context, addr string) error {
	if err := refuseNonAgentFlags(c); err != nil {
		return err
	}
	if c.String("profile") == "" {
		return cli.Exit("--agent needs --profile NAME (the agent's profile)", ExitUsage)
	}
	src := &token.AgentSource{Addr: addr, Profile: c.String("profile"), Scopes: splitSpaces(c.StringSlice("scope"))}
	secretFile := c.Path("agent-secret-file")
	if secretFile != "" {
		b, err := token.ReadAgentSecret(secretFile)
		if errors.Is(err, token.ErrNotAgentSecret) {
			return cli.Exit("--agent-secret-file "+err.Error(), ExitUsage)
		}
		if err != nil {
			return fmt.Errorf("--agent-secret-file: %w", err)
		}
		src.Secret = b
	}
	t, err := src.Fetch(c.Context)
	if errors.Is(err, token.ErrAgentUnauthorized) {
		if secretFile == "" {
			return fmt.Errorf("the agent at %s wants its bearer secret: give --agent-secret-file FILE (or JWKCTL_AGENT_SECRET_FILE), the file the agent wrote (its --secret-file)", addr)
		}
		return fmt.Errorf("the agent at %s refused the secret in %s: is it the agent's --secret-file? The agent writes a new secret at every start", addr, secretFile)
	}
	if err != nil {
		return err
	}
	if c.Bool("raw") {
		_, err := fmt.Fprintln(c.App.Writer, t.AccessToken)
		return err
	}
	return writeJSON(c.App.Writer, t)
}

// refuseNonAgentFlags is a usage error for every flag on the command line
// that --agent would ignore. The same settings from the environment
// (JWKCTL_KEY, …) are ignored, as a shell may well export them for other
// commands; --verbose names them.
func refuseNonAgentFlags(c *cli.Context) error {
	given := commandLineFlags(c)
	var refused, fromEnv []string
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if agentFlags[name] || !c.IsSet(name) {
			continue
		}
		if given[name] {
			refused = append(refused, "--"+name)
		} else if e := envSource(f); e != "" {
			fromEnv = append(fromEnv, e)
		}
	}
	if len(fromEnv) > 0 {
		stderrLogger(c).Debug("ignored with --agent: the agent's profile decides", "env", strings.Join(fromEnv, ","))
	}
	if len(refused) == 0 {
		return nil
	}
	verb := "does"
	if len(refused) > 1 {
		verb = "do"
	}
	return cli.Exit(fmt.Sprintf("%s %s not go with --agent: the agent's profile decides the key and the client settings; with --agent give only --profile, --scope, --raw and --agent-secret-file", strings.Join(refused, ", "), verb), ExitUsage)
}

// commandLineFlags names (by their first name) the flags given on the
// command line, as opposed to the environment, which c.IsSet does not
// tell apart: it parses the command's own arguments again. If that fails,
// every flag set without its environment variable counts.
func commandLineFlags(c *cli.Context) map[string]bool {
	given := map[string]bool{}
	primary := map[string]string{}
	fs := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range c.Command.Flags {
		names := f.Names()
		for _, n := range names {
			primary[n] = names[0]
			if _, ok := f.(*cli.BoolFlag); ok {
				fs.Bool(n, false, "")
			} else {
				fs.Var(new(anyValue), n, "")
			}
		}
	}
	var args []string
	if lin := c.Lineage(); len(lin) > 1 {
		args = lin[1].Args().Tail() // the parent's arguments: "token" and what follows
	}
	if fs.Parse(args) != nil {
		for _, f := range c.Command.Flags {
			name := f.Names()[0]
			if !c.IsSet(name) {
				continue
			}
			given[name] = envSource(f) == ""
		}
		return given
	}
	fs.Visit(func(f *flag.Flag) { given[primary[f.Name]] = true })
	return given
}

// envSource names the environment variable that sets f, if any.
func envSource(f cli.Flag) string {
	if ev, ok := f.(interface{ GetEnvVars() []string }); ok {
		for _, e := range ev.GetEnvVars() {
			if _, ok := os.LookupEnv(e); ok {
				return e
			}
		}
	}
	return ""
}

// anyValue takes any value of a flag, for commandLineFlags.
type anyValue struct{}

func (*anyValue) String() string   { return "" }
func (*anyValue) Set(string) error { return nil }
