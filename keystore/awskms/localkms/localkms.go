// Package localkms finds the independent AWS KMS emulator
// (github.com/nsmithuk/local-kms) that .ci/run starts, for tests that
// check jwkctl against an implementation of KMS it did not write.
//
// JWKCTL_TEST_LOCALKMS is its endpoint (http://127.0.0.1:PORT); tests
// skip without it, and fail when JWKCTL_REQUIRE_LOCALKMS=1 says it must
// be there. Its keys live in the region JWKCTL_TEST_LOCALKMS_REGION
// (default eu-north-1), which must be the KMS_REGION it was started with.
package localkms

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"testing"
	"time"
)

// Endpoint returns local-kms's endpoint and region, or skips the test.
func Endpoint(t testing.TB) (endpoint, region string) {
	t.Helper()
	ep := os.Getenv("JWKCTL_TEST_LOCALKMS")
	required := os.Getenv("JWKCTL_REQUIRE_LOCALKMS") == "1"
	if ep == "" {
		if required {
			t.Fatal("JWKCTL_REQUIRE_LOCALKMS=1 but JWKCTL_TEST_LOCALKMS does not name local-kms's endpoint")
		}
		t.Skip("local-kms not configured: set JWKCTL_TEST_LOCALKMS=http://127.0.0.1:PORT (see .ci/run) to test against it")
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		t.Fatalf("JWKCTL_TEST_LOCALKMS=%q is not a URL like http://127.0.0.1:PORT", ep)
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		if required {
			t.Fatalf("local-kms at %s cannot be reached: %v", ep, err)
		}
		t.Skipf("local-kms at %s cannot be reached: %v", ep, err)
	}
	c.Close()
	region = os.Getenv("JWKCTL_TEST_LOCALKMS_REGION")
	if region == "" {
		region = "eu-north-1"
	}
	return ep, region
}

// Unique returns name with a random suffix: local-kms keeps its aliases
// for as long as its data directory lives, and aliases are never reused.
func Unique(name string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return name + "-" + hex.EncodeToString(b)
}
