package commands

import (
	"encoding/json"
	"fmt"
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
			"with a DPoP proof when --dpop is given. Prints the token response as JSON, or the\n" +
			"access token alone with --raw. Settings come from --profile NAME and the flags.\n\n" +
			"   jwkctl token --key file:client.json --client-id my-client \\\n" +
			"     --issuer " + helseIDTest + " --scope nhn:cp-api/access-v2-dpop --dpop",
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

// runTokenFromAgent asks a running agent instead of signing here.
func runTokenFromAgent(c *cli.Context, addr string) error {
	if c.String("profile") == "" {
		return fmt.Errorf("--agent needs --profile NAME (the agent's profile)")
	}
	src := &token.AgentSource{Addr: addr, Profile: c.String("profile"), Scopes: splitSpaces(c.StringSlice("scope"))}
	if f := c.Path("agent-secret-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("agent secret: %w", err)
		}
		src.Secret = strings.TrimSpace(string(b))
	}
	t, err := src.Fetch(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("raw") {
		_, err := fmt.Fprintln(c.App.Writer, t.AccessToken)
		return err
	}
	return writeJSON(c.App.Writer, t)
}
