//go:build !jwkctl_no_gcpkms

package commands

// The Cloud KMS backend and its fake (jwkctl dev kms). Build with -tags
// jwkctl_no_gcpkms to leave them out: see docs/performance.md.
import (
	"net"

	"github.com/urfave/cli/v2"

	_ "github.com/jwkctl/jwkctl/keystore/gcpkms"
	"github.com/jwkctl/jwkctl/keystore/gcpkms/fakekms"
)

func init() {
	devKMS = devKMSCommand
}

func devKMSCommand() *cli.Command {
	return devFakeKMS{
		name: "kms", service: "Cloud KMS", notOf: "Google's", listen: "127.0.0.1:9010", envName: "dev-kms-listen",
		key:   "gcpkms://projects/demo/locations/europe-north1/keyRings/jwkctl/cryptoKeys/helseid",
		serve: serveOn(func(ln net.Listener) func() { return fakekms.New().Serve(ln) }),
	}.command()
}
