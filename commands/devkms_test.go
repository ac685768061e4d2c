package commands

import (
	"strings"
	"testing"
)

// The fakes hold keys anyone connecting could use: they never listen off
// loopback.
func TestDevKMSFakesListenOnLoopbackOnly(t *testing.T) {
	for name, service := range map[string]string{"kms": "Cloud KMS", "aws-kms": "AWS KMS"} {
		_, errOut, code := runCLI(t, "dev", name, "--listen", "192.0.2.1:9010")
		if code != 1 || !strings.Contains(errOut, "the fake "+service+" listens on loopback only") {
			t.Errorf("dev %s --listen 192.0.2.1:9010: exit %d, %q", name, code, errOut)
		}
	}
}
