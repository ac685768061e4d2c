package rotation_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
	_ "github.com/jwkctl/jwkctl/keystore/awskms"
	"github.com/jwkctl/jwkctl/keystore/awskms/fakeawskms"
	"github.com/jwkctl/jwkctl/rotation"
)

const awsKey = "awskms:///alias/helseid?region=eu-north-1"

func startAWSKMS(t *testing.T) (*fakeawskms.Server, keystore.Options) {
	t.Helper()
	kms, addr, stop, err := fakeawskms.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return kms, keystore.Options{Endpoint: addr}
}

// newProcess makes the next runner see AWS KMS as a new process would:
// the same fake under another spelling of its endpoint, so no key opened
// so far is cached.
func (f *fixture) newProcess(t *testing.T, endpoint string) {
	t.Helper()
	pf, _ := profile.Load(f.config)
	pf.Profiles["prod"].KMSEndpoint = endpoint
	if err := pf.Save(f.config); err != nil {
		t.Fatal(err)
	}
}

// The new AWS KMS key is born beside the old one under a dated alias; a
// crash after CreateAlias resumes by adopting that key, not making a
// second; a crash right after the retire (disable or delete) resumes to
// retired although KMS no longer gives the old key's public key.
func TestAWSKMSRotationResumes(t *testing.T) {
	for _, disable := range []bool{true, false} {
		t.Run(map[bool]string{true: "disable", false: "delete"}[disable], func(t *testing.T) {
			kms, opts := startAWSKMS(t)
			f := newFixture(t, awsKey, jose.ES256, 0, opts)
			crashAt := rotation.Generated
			crashing := f.runner(func(s rotation.Step, after bool) error {
				if s == crashAt && after {
					return errCrash
				}
				return nil
			})
			crashing.DisableOld = disable
			j, err := crashing.Plan(context.Background(), rotation.PlanRequest{Overlap: 0, OverlapSet: true})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(j.NewKey, "awskms:///alias/helseid-20") || !strings.HasSuffix(j.NewKey, "?region=eu-north-1") {
				t.Fatalf("derived new key %s", j.NewKey)
			}
			if _, err := crashing.Run(context.Background(), rotation.Retired, true); !errors.Is(err, errCrash) {
				t.Fatalf("crash after generate: %v", err)
			}
			f.newProcess(t, "http://"+opts.Endpoint)
			crashAt = rotation.Retired
			if _, err := crashing.Run(context.Background(), rotation.Retired, true); !errors.Is(err, errCrash) {
				t.Fatalf("crash after retire: %v", err)
			}
			if n := len(kms.Keys()); n != 2 {
				t.Fatalf("%d keys in KMS, want 2 (the new one made once, adopted on resume)", n)
			}
			f.newProcess(t, "http://localhost:"+strings.Split(opts.Endpoint, ":")[1])
			r := f.runner(nil)
			r.DisableOld = disable
			j, err = r.Run(context.Background(), rotation.Retired, true)
			if err != nil || j.Step != rotation.Retired {
				t.Fatalf("resume after a crash inside retire: %v", err)
			}
			want := map[bool]string{true: "Disabled", false: "PendingDeletion"}[disable]
			infos, err := keystore.List(context.Background(), awsKey, keystore.Options{Endpoint: "http://localhost:" + strings.Split(opts.Endpoint, ":")[1]})
			if err != nil || len(infos) != 2 || !strings.HasPrefix(infos[0].State, want) || infos[1].State != "Enabled" {
				t.Fatalf("keys after the rotation: %v %+v, want the old one %s and the new one Enabled", err, infos, want)
			}
			if err := f.tokenWith(t, j.NewKey); err != nil {
				t.Fatalf("token with the new AWS KMS key: %v", err)
			}
		})
	}
}

// A current key named by key ID has no alias to name the next one after.
func TestAWSKMSRotationNeedsAnAlias(t *testing.T) {
	kms, opts := startAWSKMS(t)
	f := newFixture(t, awsKey, jose.ES256, 0, opts)
	arn := kms.Keys()[0]
	pf, _ := profile.Load(f.config)
	pf.Profiles["prod"].Key = "awskms:///" + arn
	if err := pf.Save(f.config); err != nil {
		t.Fatal(err)
	}
	_, err := f.runner(nil).Plan(context.Background(), rotation.PlanRequest{})
	if err == nil || !strings.Contains(err.Error(), "give --new-key awskms:///alias/NAME") {
		t.Fatalf("plan from a key ARN: %v", err)
	}
	if _, err := f.runner(nil).Plan(context.Background(), rotation.PlanRequest{NewKey: awsKey}); !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("plan onto an alias in use: %v", err)
	}
	if _, err := f.runner(nil).Plan(context.Background(), rotation.PlanRequest{NewKey: "awskms:///alias/helseid-next?region=eu-north-1"}); err != nil {
		t.Fatalf("plan with --new-key: %v", err)
	}
}
