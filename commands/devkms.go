package commands

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/keystore/gcpkms/fakekms"
)

func devKMSCommand() *cli.Command {
	return &cli.Command{
		Name:  "kms",
		Usage: "serve an in-memory fake of Cloud KMS on loopback, for demos and tests",
		Description: "Keys live in memory and vanish when it stops. Point jwkctl at it with --kms-endpoint:\n\n" +
			"   jwkctl dev kms --listen 127.0.0.1:9010 &\n" +
			"   jwkctl keys generate --kms-endpoint 127.0.0.1:9010 --alg ES256 \\\n" +
			"     --key gcpkms://projects/demo/locations/europe-north1/keyRings/jwkctl/cryptoKeys/helseid",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Usage: "loopback `ADDR` to listen on", Value: "127.0.0.1:9010", EnvVars: env("dev-kms-listen")},
		},
		Action: func(c *cli.Context) error {
			addr := c.String("listen")
			if !devsts.IsLoopback(addr) {
				return fmt.Errorf("--listen %s: the fake KMS listens on loopback only", addr)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			stop := fakekms.New().Serve(ln)
			defer stop()
			fmt.Fprintf(c.App.ErrWriter, "fake Cloud KMS (in memory, NOT Google's) listening; use --kms-endpoint %s\n", ln.Addr())
			ctx, cancel := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer cancel()
			<-ctx.Done()
			return nil
		},
	}
}
