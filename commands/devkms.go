package commands

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/devsts"
)

// devFakeKMS is a `jwkctl dev` command serving an in-memory fake of a
// cloud KMS on loopback until interrupted.
type devFakeKMS struct {
	name, service, notOf string // command name; "AWS KMS"; whose it is not
	listen, envName      string // default --listen and its env var's flag name
	key                  string // an example key URI for the help
	https                bool   // the fake speaks TLS (--kms-endpoint https://ADDR)
	help                 string // more help, before the example
	serveArgs, env       string // in the example: more flags for the fake; env for jwkctl
	flags                []cli.Flag
	// serve serves the fake on ln until stop is called.
	serve func(c *cli.Context, ln net.Listener) (stop func(), err error)
}

func (f devFakeKMS) command() *cli.Command {
	endpoint := func(addr string) string {
		if f.https {
			return "https://" + addr
		}
		return addr
	}
	return &cli.Command{
		Name:  f.name,
		Usage: "serve an in-memory fake of " + f.service + " on loopback, for demos and tests",
		Description: "Keys live in memory and vanish when it stops. Point jwkctl at it with --kms-endpoint" + f.help + ":\n\n" +
			"   jwkctl dev " + f.name + " --listen " + f.listen + f.serveArgs + " &\n" +
			"   " + f.env + "jwkctl keys generate --kms-endpoint " + endpoint(f.listen) + " --alg ES256 \\\n" +
			"     --key " + f.key,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Usage: "loopback `ADDR` to listen on", Value: f.listen, EnvVars: env(f.envName)},
		}, f.flags...),
		Action: func(c *cli.Context) error {
			addr := c.String("listen")
			if !devsts.IsLoopback(addr) {
				return fmt.Errorf("--listen %s: the fake %s listens on loopback only", addr, f.service)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			stop, err := f.serve(c, ln)
			if err != nil {
				ln.Close()
				return err
			}
			defer stop()
			fmt.Fprintf(c.App.ErrWriter, "fake %s (in memory, NOT %s) listening; use --kms-endpoint %s\n", f.service, f.notOf, endpoint(ln.Addr().String()))
			ctx, cancel := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer cancel()
			<-ctx.Done()
			return nil
		},
	}
}

// serveOn adapts a fake's Serve(ln) (stop func()) to devFakeKMS.serve.
func serveOn(serve func(net.Listener) func()) func(*cli.Context, net.Listener) (func(), error) {
	return func(_ *cli.Context, ln net.Listener) (func(), error) { return serve(ln), nil }
}
