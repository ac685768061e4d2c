//go:build !jwkctl_no_awskms

package commands

// The AWS KMS backend and its fake (jwkctl dev aws-kms). Build with -tags
// jwkctl_no_awskms to leave them out: see docs/performance.md.
import (
	"net"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/keystore/awskms"
	"github.com/jwkctl/jwkctl/keystore/awskms/fakeawskms"
)

func init() {
	devAWSKMS = devAWSKMSCommand
	awsDeletionWindowDays = awskms.DeletionWindowDays
}

func devAWSKMSCommand() *cli.Command {
	return devFakeKMS{
		name: "aws-kms", service: "AWS KMS", notOf: "Amazon's", listen: "127.0.0.1:9011", envName: "dev-aws-kms-listen",
		key:   "'awskms:///alias/helseid?region=eu-north-1'",
		serve: serveOn(func(ln net.Listener) func() { return fakeawskms.New().Serve(ln) }),
	}.command()
}
