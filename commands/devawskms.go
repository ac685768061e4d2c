package commands

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/keystore/awskms/fakeawskms"
)

func devAWSKMSCommand() *cli.Command {
	return &cli.Command{
		Name:  "aws-kms",
		Usage: "serve an in-memory fake of AWS KMS on loopback, for demos and tests",
		Description: "Keys live in memory and vanish when it stops. Point jwkctl at it with --kms-endpoint:\n\n" +
			"   jwkctl dev aws-kms --listen 127.0.0.1:9011 &\n" +
			"   jwkctl keys generate --kms-endpoint 127.0.0.1:9011 --alg ES256 \\\n" +
			"     --key 'awskms:///alias/helseid?region=eu-north-1'",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Usage: "loopback `ADDR` to listen on", Value: "127.0.0.1:9011", EnvVars: env("dev-aws-kms-listen")},
		},
		Action: func(c *cli.Context) error {
			addr := c.String("listen")
			if !devsts.IsLoopback(addr) {
				return fmt.Errorf("--listen %s: the fake AWS KMS listens on loopback only", addr)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			stop := fakeawskms.New().Serve(ln)
			defer stop()
			fmt.Fprintf(c.App.ErrWriter, "fake AWS KMS (in memory, NOT Amazon's) listening; use --kms-endpoint %s\n", ln.Addr())
			ctx, cancel := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer cancel()
			<-ctx.Done()
			return nil
		},
	}
}
