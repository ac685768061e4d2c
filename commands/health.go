package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/token"
)

func healthCommand() *cli.Command {
	return &cli.Command{
		Name:  "health",
		Usage: "ask a running agent (jwkctl serve) whether it is up: for readiness probes and monitoring",
		Description: "Asks the agent's /healthz and exits 0 when it answers. With --profile (repeatable), it\n" +
			"also needs the agent to serve each named profile, and prints the kid each signs with; that\n" +
			"takes a caller the agent trusts (its Unix socket, or --agent-secret-file for a TCP agent).\n" +
			"It never gets a token, so a probe costs the STS and the key nothing.\n\n" +
			"Example (a Kubernetes exec readiness probe):\n" +
			"   jwkctl health --agent unix:/var/run/jwkctl/jwkctl.sock --profile helseid-prod",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "agent", Usage: "the agent's `ADDR` (unix:/path.sock, or 127.0.0.1:PORT on loopback only)", Required: true, EnvVars: env("agent")},
			&cli.PathFlag{Name: "agent-secret-file", Usage: "bearer secret `FILE` of a TCP agent (its --secret-file); needed with --profile", EnvVars: env("agent-secret-file")},
			&cli.StringSliceFlag{Name: "profile", Usage: "`NAME` of a profile the agent must serve (repeatable)", EnvVars: env("profile")},
			&cli.DurationFlag{Name: "timeout", Usage: "give up after `DURATION`", Value: 3 * time.Second, EnvVars: env("health-timeout")},
		},
		Action: runHealth,
	}
}

func runHealth(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("health takes no arguments, got %q", c.Args().First()), ExitUsage)
	}
	addr := c.String("agent")
	src := &token.AgentSource{Addr: addr, SecretFile: c.Path("agent-secret-file")}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	h, err := src.Health(ctx)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("the agent at %s did not answer within %v", addr, c.Duration("timeout"))
	case err != nil:
		return err
	case h.Status != "ok":
		return fmt.Errorf("the agent at %s says %q, not ok", addr, h.Status)
	}
	want := splitSpaces(c.StringSlice("profile"))
	if len(want) == 0 {
		_, err := fmt.Fprintf(c.App.Writer, "ok: the agent at %s answers\n", addr)
		return err
	}
	if len(h.Profiles) == 0 {
		if c.Path("agent-secret-file") == "" {
			return fmt.Errorf("the agent at %s names its profiles only to callers it trusts: give --agent-secret-file FILE (its --secret-file)", addr)
		}
		return fmt.Errorf("the agent at %s serves no profiles", addr)
	}
	for _, p := range want {
		if !slices.Contains(h.Profiles, p) {
			return fmt.Errorf("the agent at %s does not serve profile %s (it serves: %v)", addr, p, h.Profiles)
		}
	}
	for _, p := range want {
		kid := h.SigningKeys[p]
		if kid == "" {
			kid = "unknown (an older agent)"
		}
		if _, err := fmt.Fprintf(c.App.Writer, "ok: the agent at %s serves %s with kid %s\n", addr, p, kid); err != nil {
			return err
		}
	}
	return nil
}
