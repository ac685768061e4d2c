//go:build !jwkctl_no_azurekv

package commands

// The Azure Key Vault backend and its fake (jwkctl dev azure-kv). Build
// with -tags jwkctl_no_azurekv to leave them out: see docs/performance.md.
import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"

	"github.com/urfave/cli/v2"

	_ "github.com/jwkctl/jwkctl/keystore/azurekv"
	"github.com/jwkctl/jwkctl/keystore/azurekv/fakeazkv"
)

func init() { devAzureKV = devAzureKVCommand }

func devAzureKVCommand() *cli.Command {
	return devFakeKMS{
		name: "azure-kv", service: "Azure Key Vault", notOf: "Microsoft's", listen: "127.0.0.1:9012", envName: "dev-azure-kv-listen",
		key: "azurekv://demo.vault.azure.net/keys/helseid", https: true,
		help: ".\n" +
			"It speaks https with its own test CA, made afresh at each start and written to --ca-out; jwkctl\n" +
			"trusts it through SSL_CERT_FILE (Go honours that on Linux and the BSDs; on macOS and Windows Go\n" +
			"uses the system's trust store, so there the fake serves tests, not the CLI)",
		serveArgs: " --ca-out /tmp/fake-vault-ca.pem", env: "SSL_CERT_FILE=/tmp/fake-vault-ca.pem ",
		flags: []cli.Flag{
			&cli.PathFlag{Name: "ca-out", Usage: "write the fake's test CA certificate to `FILE`, which must not exist (default: a new file in the temporary directory); removed when the fake stops", EnvVars: env("dev-azure-kv-ca-out")},
		},
		serve: func(c *cli.Context, ln net.Listener) (func(), error) {
			s, err := fakeazkv.Serve(ln)
			if err != nil {
				return nil, err
			}
			path, err := writeCA(c.Path("ca-out"), s.CAPEM())
			if err != nil {
				s.Close()
				return nil, err
			}
			fmt.Fprintf(c.App.ErrWriter, "its test CA certificate is in %s: run jwkctl with SSL_CERT_FILE=%s\n", path, path)
			return func() { s.Close(); os.Remove(path) }, nil
		},
	}.command()
}

// writeCA writes the fake's CA certificate to path, which must not exist
// (an existing file is never overwritten), or to a new temporary file,
// and returns the file's name.
func writeCA(path string, pem []byte) (string, error) {
	var f *os.File
	var err error
	if path == "" {
		f, err = os.CreateTemp("", "jwkctl-dev-azure-kv-ca-*.pem")
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("--ca-out %s: the file exists; name a new one (it is not overwritten)", path)
		}
	}
	if err != nil {
		return "", fmt.Errorf("--ca-out: %w", err)
	}
	_, werr := f.Write(pem)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("--ca-out: %w", werr)
	}
	return f.Name(), nil
}
