package rotation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/file"
	"github.com/jwkctl/jwkctl/keystore/gcpkms"
	"github.com/jwkctl/jwkctl/keystore/gcpkms/fakekms"
	_ "github.com/jwkctl/jwkctl/keystore/pkcs11"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
	"github.com/jwkctl/jwkctl/rotation"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/token"
)

func TestMain(m *testing.M) {
	file.PBES2Count = 1000 // keep encrypted key files fast in tests; production uses 210,000
	os.Exit(softhsmtest.Main(m))
}

type fixture struct {
	sts     *devsts.Server
	dir     string
	config  string
	oldKey  string
	oldKid  string
	journal rotation.Store
}

const clientID = "rotating-client"

// newFixture: a dev STS with the fake Selvbetjening API, a client whose
// current key is at oldKey, and a profile "prod" using it.
func newFixture(t *testing.T, oldKey string, alg jose.SignatureAlgorithm, bits int, backend keystore.Options) *fixture {
	t.Helper()
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	sts.EnableSelvbetjening()
	spec, _ := keystore.SpecFor(alg, bits)
	k, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse(oldKey), Spec: spec, Options: backend})
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := signer.PublicJWK(k.Public(), alg)
	if err := sts.RegisterClient(clientID, []jose.JSONWebKey{jwk}, []string{devsts.DemoScope, devsts.SelvbetjeningScope}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := &fixture{sts: sts, dir: dir, config: filepath.Join(dir, "config.yaml"), oldKey: k.URI().String(), oldKid: jwk.KeyID,
		journal: rotation.Store{Dir: filepath.Join(dir, "journal")}}
	pf := &profile.File{}
	p := &profile.Profile{Issuer: sts.Issuer(), ClientID: clientID, Key: f.oldKey, DPoP: new(true), Scopes: []string{devsts.DemoScope}, KMSEndpoint: backend.Endpoint}
	if err := pf.Set("prod", p); err != nil {
		t.Fatal(err)
	}
	if err := pf.Save(f.config); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) runner(hook func(rotation.Step, bool) error) *rotation.Runner {
	return &rotation.Runner{Store: f.journal, ConfigPath: f.config, Profile: "prod", Hook: hook}
}

func (f *fixture) profileKey(t *testing.T) string {
	t.Helper()
	pf, err := profile.Load(f.config)
	if err != nil {
		t.Fatal(err)
	}
	return pf.Profiles["prod"].Key
}

// tokenWith gets a token for the profile's client with the given key.
func (f *fixture) tokenWith(t *testing.T, key string) error {
	t.Helper()
	pf, _ := profile.Load(f.config)
	p := pf.Profiles["prod"].Clone()
	p.Key, p.Alg = key, ""
	c, err := profile.NewClient(context.Background(), p, profile.ClientOptions{})
	if err != nil {
		return err
	}
	_, err = c.Exchange(context.Background(), token.Request{})
	return err
}

func TestRotateFileToFile(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "keys", "client.json"), jose.ES256, 0, keystore.Options{})
	r := f.runner(nil)
	j, err := r.Plan(context.Background(), rotation.PlanRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(j.NewKey, "file:") || j.NewKey == f.oldKey || j.Alg != "ES256" {
		t.Fatalf("plan %+v", j)
	}
	if _, err := r.Plan(context.Background(), rotation.PlanRequest{}); err == nil || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("second plan: %v", err)
	}
	j, err = r.Run(context.Background(), rotation.Activated, false)
	if err != nil {
		t.Fatal(err)
	}
	if j.Step != rotation.Activated || j.Expiration == nil || j.NewKid == "" {
		t.Fatalf("journal %+v", j)
	}
	if got := f.sts.ClientKeyIDs(clientID); !slices.Contains(got, j.NewKid) || !slices.Contains(got, f.oldKid) || len(got) != 2 {
		t.Fatalf("registered keys %v", got)
	}
	if f.profileKey(t) != j.NewKey {
		t.Fatalf("profile key %s, want %s", f.profileKey(t), j.NewKey)
	}
	if err := f.tokenWith(t, j.NewKey); err != nil {
		t.Fatalf("token with the new key: %v", err)
	}
	// Retiring waits for the overlap unless forced.
	if _, err := r.Run(context.Background(), rotation.Retired, false); !errors.Is(err, rotation.ErrOverlap) {
		t.Fatalf("retire before the overlap: %v", err)
	}
	if _, err := keystore.Open(context.Background(), f.oldKey, keystore.Options{}); err != nil {
		t.Fatalf("old key gone before retirement: %v", err)
	}
	if j, err = r.Run(context.Background(), rotation.Retired, true); err != nil || j.Step != rotation.Retired {
		t.Fatalf("forced retire: %v", err)
	}
	if _, err := keystore.Open(context.Background(), f.oldKey, keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("old key after retirement: %v", err)
	}
	journals, _ := filepath.Glob(filepath.Join(f.journal.Dir, "prod.*.json"))
	if len(journals) != 1 {
		t.Fatalf("journal files %q", journals)
	}
	fi, _ := os.Stat(journals[0])
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %v", fi.Mode().Perm())
	}
}

var errCrash = errors.New("injected crash")

// A crash before or after each side effect, and a cancelled context
// between steps; then resume. Every case ends with exactly one new key,
// exactly one upload, the profile switched, and the old key usable until
// activation.
func TestCrashAndResume(t *testing.T) {
	type point struct {
		step  rotation.Step
		after bool
	}
	var points []point
	for _, s := range []rotation.Step{rotation.Generated, rotation.Uploaded, rotation.Activated} {
		points = append(points, point{s, false}, point{s, true})
	}
	for _, pt := range points {
		t.Run(fmt.Sprintf("%s/after=%v", pt.step, pt.after), func(t *testing.T) {
			keyDir := filepath.Join(t.TempDir(), "keys")
			f := newFixture(t, "file:"+filepath.Join(keyDir, "client.json"), jose.ES256, 0, keystore.Options{})
			crashing := f.runner(func(s rotation.Step, after bool) error {
				if s == pt.step && after == pt.after {
					return errCrash
				}
				return nil
			})
			if _, err := crashing.Plan(context.Background(), rotation.PlanRequest{}); err != nil {
				t.Fatal(err)
			}
			if _, err := crashing.Run(context.Background(), rotation.Activated, false); !errors.Is(err, errCrash) {
				t.Fatalf("crash run: %v", err)
			}
			if !pt.step.Done(rotation.Activated) || !pt.after {
				// Not yet activated (or the profile write may not have
				// happened): the old key still works.
				if err := f.tokenWith(t, f.oldKey); err != nil {
					t.Fatalf("old key after the crash: %v", err)
				}
			}
			j, err := f.runner(nil).Run(context.Background(), rotation.Activated, false)
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			entries, _ := os.ReadDir(keyDir)
			if len(entries) != 2 {
				t.Fatalf("%d key files after resume, want old + one new", len(entries))
			}
			if n := f.sts.SelvbetjeningUploads(); n != 1 {
				t.Fatalf("%d uploads, want 1", n)
			}
			if got := f.sts.ClientKeyIDs(clientID); len(got) != 2 || !slices.Contains(got, j.NewKid) {
				t.Fatalf("registered %v", got)
			}
			if f.profileKey(t) != j.NewKey || j.Step != rotation.Activated {
				t.Fatalf("not activated: %s %s", f.profileKey(t), j.Step)
			}
		})
	}
	t.Run("cancelled between steps", func(t *testing.T) {
		f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		r := f.runner(func(s rotation.Step, after bool) error {
			if s == rotation.Uploaded && after {
				cancel()
			}
			return nil
		})
		r.Plan(context.Background(), rotation.PlanRequest{})
		if j, err := r.Run(ctx, rotation.Activated, false); !errors.Is(err, context.Canceled) || j.Step != rotation.Uploaded {
			t.Fatalf("cancelled run: %v at %s", err, j.Step)
		}
		if _, err := f.runner(nil).Run(context.Background(), rotation.Activated, false); err != nil {
			t.Fatal(err)
		}
		if n := f.sts.SelvbetjeningUploads(); n != 1 {
			t.Fatalf("%d uploads", n)
		}
	})
}

func TestUploadRejected(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   error
		text   string
	}{
		{401, rotation.ErrUnauthorized, "nhn:selvbetjening/client"},
		{403, rotation.ErrForbidden, "grant it"},
		{400, rotation.ErrBadRequest, "Invalid JWK"},
		{503, rotation.ErrServer, "try again later"},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					w.Header().Set("Content-Type", "application/json")
					w.Write([]byte("[]"))
					return
				}
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `{"type":"about:blank","title":"Invalid JWK","status":%d,"detail":"refused"}`, tc.status)
			}))
			defer api.Close()
			r := f.runner(nil)
			if _, err := r.Plan(context.Background(), rotation.PlanRequest{Endpoint: api.URL + "/v1/client-secret"}); err != nil {
				t.Fatal(err)
			}
			j, err := r.Run(context.Background(), rotation.Activated, false)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.text)
			}
			if j.Step != rotation.SelfTested || f.profileKey(t) != f.oldKey {
				t.Fatalf("after a refused upload: step %s, profile key %s", j.Step, f.profileKey(t))
			}
		})
	}
}

func TestRotateIntoSoftHSM(t *testing.T) {
	tok := softhsmtest.Token(t)
	t.Run("file to SoftHSM", func(t *testing.T) {
		f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.PS256, 2048, keystore.Options{})
		r := f.runner(nil)
		if _, err := r.Plan(context.Background(), rotation.PlanRequest{NewKey: tok.URI("rotated-from-file"), Alg: "ES256"}); err != nil {
			t.Fatal(err)
		}
		j, err := r.Run(context.Background(), rotation.Activated, false)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(f.profileKey(t), "pkcs11:") || !strings.Contains(j.NewKey, "object=rotated-from-file") {
			t.Fatalf("profile key %s", f.profileKey(t))
		}
		if err := f.tokenWith(t, j.NewKey); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("SoftHSM to SoftHSM", func(t *testing.T) {
		f := newFixture(t, tok.URI("hsm-current"), jose.ES256, 0, keystore.Options{})
		r := f.runner(nil)
		j, err := r.Plan(context.Background(), rotation.PlanRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(j.NewKey, "object=hsm-current-20") {
			t.Fatalf("derived new key %s", j.NewKey)
		}
		if j, err = r.Run(context.Background(), rotation.Retired, true); err != nil || j.Step != rotation.Retired {
			t.Fatalf("rotate and retire: %v", err)
		}
		if err := f.tokenWith(t, j.NewKey); err != nil {
			t.Fatalf("token with the new HSM key: %v", err)
		}
		if _, err := keystore.Open(context.Background(), f.oldKey, keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("old HSM key after retirement: %v", err)
		}
	})
	t.Run("SoftHSM to SoftHSM, retired by disabling", func(t *testing.T) {
		f := newFixture(t, tok.URI("hsm-disable"), jose.ES256, 0, keystore.Options{})
		// A crash right after the old key was disabled: the resumed run
		// disables it again (harmless) and finishes.
		crashing := f.runner(func(s rotation.Step, after bool) error {
			if s == rotation.Retired && after {
				return errCrash
			}
			return nil
		})
		crashing.DisableOld = true
		if _, err := crashing.Plan(context.Background(), rotation.PlanRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := crashing.Run(context.Background(), rotation.Retired, true); !errors.Is(err, errCrash) {
			t.Fatalf("crash inside retire: %v", err)
		}
		r := f.runner(nil)
		r.DisableOld = true
		j, err := r.Run(context.Background(), rotation.Retired, true)
		if err != nil || j.Step != rotation.Retired {
			t.Fatalf("resume: %v", err)
		}
		if !strings.Contains(j.History[len(j.History)-1].Note, "disabled") {
			t.Errorf("journal note: %s", j.History[len(j.History)-1].Note)
		}
		// The old key is still on the token, but refuses to sign.
		old, err := keystore.Open(context.Background(), f.oldKey, keystore.Options{})
		if err != nil {
			t.Fatalf("old key after disabling: %v", err)
		}
		if err := f.tokenWith(t, f.oldKey); err == nil || !strings.Contains(err.Error(), "key is disabled") {
			t.Fatalf("token with the disabled old key: %v", err)
		}
		if err := keystore.SetEnabled(context.Background(), f.oldKey, true, keystore.Options{}); err != nil {
			t.Fatal(err)
		}
		s, err := signer.New(old, jose.ES256)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SignPayload([]byte("x"), jose.ES256); err != nil {
			t.Fatalf("re-enabled old key: %v", err)
		}
	})
}

func TestRotateKMSVersions(t *testing.T) {
	gcpkms.PollInterval = time.Millisecond
	kms, addr, stop, err := fakekms.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	kmsOpts := keystore.Options{Endpoint: addr}
	const key = "gcpkms://projects/p/locations/europe-north1/keyRings/r/cryptoKeys/helseid"
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	if _, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse(key), Spec: spec, Options: kmsOpts}); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	pf, _ := profile.Load(f.config)
	pf.Profiles["prod"].KMSEndpoint = addr
	pf.Save(f.config)
	crashing := f.runner(func(s rotation.Step, after bool) error {
		if s == rotation.Generated && after {
			return errCrash
		}
		return nil
	})
	if _, err := crashing.Plan(context.Background(), rotation.PlanRequest{NewKey: key}); err != nil {
		t.Fatal(err)
	}
	if _, err := crashing.Run(context.Background(), rotation.Activated, false); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	j, err := f.runner(nil).Run(context.Background(), rotation.Activated, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(j.NewKey, "/cryptoKeyVersions/2") {
		t.Fatalf("new key %s, want version 2 (made once, adopted on resume)", j.NewKey)
	}
	infos, _ := keystore.List(context.Background(), key, kmsOpts)
	if len(infos) != 2 {
		t.Fatalf("%d versions, want 2", len(infos))
	}
	if kms.SignRPCs() == 0 {
		t.Fatal("the KMS key was never used to sign")
	}
}

func TestUploadAsJSONString(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	pf, _ := profile.Load(f.config)
	p := pf.Profiles["prod"].Clone()
	p.Scopes = []string{rotation.Scope}
	c, err := profile.NewClient(context.Background(), p, profile.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sb := &rotation.Client{Endpoint: rotation.DefaultEndpoint(f.sts.Issuer()), HTTP: token.NewHTTPClient(token.NewSource(c), nil), JWKAsString: true}
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk, _ := signer.PublicJWK(newKey.Public(), jose.ES256)
	exp, err := sb.Upload(context.Background(), jwk)
	if err != nil || exp.Before(time.Now()) {
		t.Fatalf("upload as string: %v %v", exp, err)
	}
	keys, err := sb.List(context.Background())
	if err != nil || len(keys) != 2 || keys[1].Expiration == nil {
		t.Fatalf("list: %v %+v", err, keys)
	}
	priv := jose.JSONWebKey{Key: newKey}
	if _, err := sb.Upload(context.Background(), priv); err == nil {
		t.Fatal("uploaded a private key")
	}
}

// A crash right after the old key was deleted, before the journal says
// so: resuming finishes the retirement without an error.
func TestCrashInsideRetire(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	crashing := f.runner(func(s rotation.Step, after bool) error {
		if s == rotation.Retired && after {
			return errCrash
		}
		return nil
	})
	if _, err := crashing.Plan(context.Background(), rotation.PlanRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := crashing.Run(context.Background(), rotation.Retired, true); !errors.Is(err, errCrash) {
		t.Fatalf("crash run: %v", err)
	}
	j, err := f.runner(nil).Run(context.Background(), rotation.Retired, true)
	if err != nil || j.Step != rotation.Retired {
		t.Fatalf("resume: %v", err)
	}
	if err := f.tokenWith(t, j.NewKey); err != nil {
		t.Fatal(err)
	}
}

// startKMS serves a fake Cloud KMS for one test.
func startKMS(t *testing.T) (*fakekms.Server, keystore.Options) {
	t.Helper()
	gcpkms.PollInterval = time.Millisecond
	kms, addr, stop, err := fakekms.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return kms, keystore.Options{Endpoint: addr}
}

const kmsKey = "gcpkms://projects/p/locations/europe-north1/keyRings/r/cryptoKeys/helseid"

// Cloud KMS refuses to destroy a version that is already scheduled for
// destruction (FAILED_PRECONDITION). A crash right after the destroy,
// before the journal says so, must still resume to "retired".
func TestKMSCrashAfterDestroyResumes(t *testing.T) {
	_, kmsOpts := startKMS(t)
	f := newFixture(t, kmsKey, jose.ES256, 0, kmsOpts)
	crashing := f.runner(func(s rotation.Step, after bool) error {
		if s == rotation.Retired && after {
			return errCrash
		}
		return nil
	})
	j, err := crashing.Plan(context.Background(), rotation.PlanRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if j.NewKey != kmsKey {
		t.Fatalf("derived new key %s, want a new version of %s", j.NewKey, kmsKey)
	}
	if _, err := crashing.Run(context.Background(), rotation.Retired, true); !errors.Is(err, errCrash) {
		t.Fatalf("crash right after the destroy: %v", err)
	}
	// The old version is already scheduled for destruction; destroying it
	// again is what real KMS refuses.
	infos, err := keystore.List(context.Background(), f.oldKey, kmsOpts)
	if err != nil || len(infos) != 1 || infos[0].State != "DESTROY_SCHEDULED" {
		t.Fatalf("old version after the crash: %v %+v", err, infos)
	}
	j, err = f.runner(nil).Run(context.Background(), rotation.Retired, true)
	if err != nil || j.Step != rotation.Retired {
		t.Fatalf("resume after a crash inside the KMS destroy: %v", err)
	}
	if err := f.tokenWith(t, j.NewKey); err != nil {
		t.Fatalf("token with the new KMS version: %v", err)
	}
}

// A key file encrypted with the profile's passphrase_file is rotated into
// a key file encrypted with the same passphrase, never a plaintext one.
func TestRotateEncryptedFileKeepsPassphrase(t *testing.T) {
	pass := []byte("correct horse battery staple")
	dir := t.TempDir()
	passFile := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(passFile, append(pass, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "file:"+filepath.Join(dir, "client.json"), jose.ES256, 0, keystore.Options{Passphrase: pass})
	pf, _ := profile.Load(f.config)
	pf.Profiles["prod"].PassphraseFile = passFile
	if err := pf.Save(f.config); err != nil {
		t.Fatal(err)
	}
	r := f.runner(nil)
	if _, err := r.Plan(context.Background(), rotation.PlanRequest{}); err != nil {
		t.Fatal(err)
	}
	j, err := r.Run(context.Background(), rotation.Activated, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.Open(context.Background(), j.NewKey, keystore.Options{}); !errors.Is(err, keystore.ErrPassphrase) {
		t.Fatalf("the new key file opens without a passphrase (plaintext?): %v", err)
	}
	if _, err := keystore.Open(context.Background(), j.NewKey, keystore.Options{Passphrase: pass}); err != nil {
		t.Fatalf("the new key file with the profile's passphrase: %v", err)
	}
	u, _ := keystore.Parse(j.NewKey)
	b, _ := os.ReadFile(u.Path)
	if strings.Contains(string(b), `"d"`) {
		t.Fatal("the new key file holds a plaintext private key")
	}
	// The profile keeps its passphrase_file and works with the new key.
	pf, _ = profile.Load(f.config)
	if got := pf.Profiles["prod"].PassphraseFile; got != passFile {
		t.Fatalf("passphrase_file after activation: %q", got)
	}
	if err := f.tokenWith(t, j.NewKey); err != nil {
		t.Fatal(err)
	}
}

// A passphrase given to the Runner (the CLI's --passphrase-file or
// JWKCTL_PASSPHRASE) opens the current key and encrypts the new one.
func TestRotateWithRunnerPassphrase(t *testing.T) {
	pass := []byte("from the environment")
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{Passphrase: pass})
	r := f.runner(nil)
	r.Backend.Passphrase = pass
	if _, err := r.Plan(context.Background(), rotation.PlanRequest{}); err != nil {
		t.Fatal(err)
	}
	j, err := r.Run(context.Background(), rotation.Activated, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.Open(context.Background(), j.NewKey, keystore.Options{}); !errors.Is(err, keystore.ErrPassphrase) {
		t.Fatalf("the new key file opens without a passphrase: %v", err)
	}
}

// Two profiles of one client (same issuer and client_id) must not rotate
// at once, and the old key is not retired while a profile still uses it.
func TestSameClientTwoProfiles(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	pf, _ := profile.Load(f.config)
	twin := pf.Profiles["prod"].Clone()
	twin.Issuer += "/" // the same issuer, spelt with a slash
	pf.Set("twin", twin)
	if err := pf.Save(f.config); err != nil {
		t.Fatal(err)
	}
	r := f.runner(nil)
	if _, err := r.Plan(context.Background(), rotation.PlanRequest{}); err != nil {
		t.Fatal(err)
	}
	other := &rotation.Runner{Store: f.journal, ConfigPath: f.config, Profile: "twin"}
	if _, err := other.Plan(context.Background(), rotation.PlanRequest{}); !errors.Is(err, rotation.ErrClientBusy) || !strings.Contains(err.Error(), "profile prod") {
		t.Fatalf("plan of a second profile of the same client: %v", err)
	}
	if _, err := f.journal.Load("twin"); !errors.Is(err, rotation.ErrNoJournal) {
		t.Fatalf("a refused plan left a journal: %v", err)
	}
	if _, err := r.Run(context.Background(), rotation.Activated, false); err != nil {
		t.Fatal(err)
	}
	// "twin" still uses the old key: retiring it would break that profile.
	for _, disable := range []bool{false, true} {
		r.DisableOld = disable
		j, err := r.Run(context.Background(), rotation.Retired, true)
		if !errors.Is(err, rotation.ErrInUse) || !strings.Contains(err.Error(), "profile twin (key)") || j.Step != rotation.Activated {
			t.Fatalf("retire (disable=%v) while profile twin uses the old key: %v", disable, err)
		}
	}
	if _, err := keystore.Open(context.Background(), f.oldKey, keystore.Options{}); err != nil {
		t.Fatalf("the old key after a refused retirement: %v", err)
	}
	if err := f.tokenWith(t, f.oldKey); err != nil {
		t.Fatalf("token with the old key after a refused retirement: %v", err)
	}
	// Named by a relative path (relative to the config file's directory,
	// spelt with ./), it is still the same file.
	pf, _ = profile.Load(f.config)
	rel, err := filepath.Rel(filepath.Dir(f.config), strings.TrimPrefix(f.oldKey, "file://"))
	if err != nil {
		t.Fatal(err)
	}
	pf.Profiles["twin"].Key = "file:./" + rel
	pf.Save(f.config)
	if b, _ := os.ReadFile(f.config); !strings.Contains(string(b), "key: file:./"+rel+"\n") {
		t.Fatalf("twin's relative key not written as given:\n%s", b)
	}
	r.DisableOld = false
	if _, err := r.Run(context.Background(), rotation.Retired, true); !errors.Is(err, rotation.ErrInUse) {
		t.Fatalf("retire while twin names the old key by a relative path: %v", err)
	}
	pf.Profiles["twin"].Key = f.profileKey(t)
	pf.Save(f.config)
	if j, err := r.Run(context.Background(), rotation.Retired, true); err != nil || j.Step != rotation.Retired {
		t.Fatalf("retire once no profile uses the old key: %v", err)
	}
	// Now the twin may rotate.
	if _, err := other.Plan(context.Background(), rotation.PlanRequest{NewKey: "file:" + filepath.Join(t.TempDir(), "twin.json")}); err != nil {
		t.Fatalf("plan of twin after prod finished: %v", err)
	}
}

// A profile whose name starts with a dot has a journal like any other, and
// a second profile of the same client sees it.
func TestRotationDotProfileBlocksSameClient(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	pf, _ := profile.Load(f.config)
	pf.Set(".x", pf.Profiles["prod"].Clone())
	if err := pf.Save(f.config); err != nil {
		t.Fatal(err)
	}
	dot := &rotation.Runner{Store: f.journal, ConfigPath: f.config, Profile: ".x"}
	if _, err := dot.Plan(context.Background(), rotation.PlanRequest{NewKey: "file:" + filepath.Join(t.TempDir(), "x.json")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner(nil).Plan(context.Background(), rotation.PlanRequest{}); !errors.Is(err, rotation.ErrClientBusy) || !strings.Contains(err.Error(), "profile .x ") {
		t.Fatalf("plan of prod while .x rotates the same client: %v", err)
	}
}

// A rotation recorded by an older jwkctl, in a journal named "prod.json",
// is carried on after the upgrade, and its journal moves to the new name.
func TestRotationResumesOldJournalName(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	r := f.runner(nil)
	if _, err := r.Plan(context.Background(), rotation.PlanRequest{}); err != nil {
		t.Fatal(err)
	}
	journals, _ := filepath.Glob(filepath.Join(f.journal.Dir, "prod.*.json"))
	if len(journals) != 1 {
		t.Fatalf("journal files %q", journals)
	}
	old := filepath.Join(f.journal.Dir, "prod.json")
	if err := os.Rename(journals[0], old); err != nil {
		t.Fatal(err)
	}
	j, err := r.Run(context.Background(), rotation.Activated, false)
	if err != nil || j.Step != rotation.Activated {
		t.Fatalf("resume from the old journal: %v", err)
	}
	if f.profileKey(t) != j.NewKey {
		t.Fatalf("profile key %s, want %s", f.profileKey(t), j.NewKey)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the old journal is still there: %v", err)
	}
	if j, err := f.journal.Load("prod"); err != nil || j.Step != rotation.Activated {
		t.Fatalf("journal after resume: %v", err)
	}
}

// Plan refuses what generate would refuse, before a journal exists.
func TestPlanRefusesWhatGenerateWould(t *testing.T) {
	_, kmsOpts := startKMS(t)
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	if _, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse(kmsKey), Spec: spec, Options: kmsOpts}); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, kmsOpts)
	for _, tc := range []struct {
		name string
		req  rotation.PlanRequest
		want string
	}{
		{"ES512 in KMS", rotation.PlanRequest{NewKey: kmsKey + "-new", Alg: "ES512"}, "ES512"},
		{"PS256 on an EC KMS key", rotation.PlanRequest{NewKey: kmsKey, Alg: "PS256"}, "EC_SIGN_P256_SHA256"},
		{"negative overlap", rotation.PlanRequest{Overlap: -5 * time.Hour}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.runner(nil).Plan(context.Background(), tc.req)
			if err == nil {
				f.runner(nil).Abort(context.Background())
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("plan %+v: %v, want an error mentioning %q", tc.req, err, tc.want)
			}
			if _, err := f.journal.Load("prod"); !errors.Is(err, rotation.ErrNoJournal) {
				t.Fatalf("a refused plan left a journal: %v", err)
			}
		})
	}
	// The same key with its own algorithm is fine.
	if _, err := f.runner(nil).Plan(context.Background(), rotation.PlanRequest{NewKey: kmsKey, Alg: "ES256"}); err != nil {
		t.Fatal(err)
	}
}

// Abort says what a crash may have left: a key made inside generate
// before the journal recorded it, or an upload that may have reached
// Selvbetjening.
func TestAbortNotes(t *testing.T) {
	crashAt := func(step rotation.Step, after bool) func(rotation.Step, bool) error {
		return func(s rotation.Step, a bool) error {
			if s == step && a == after {
				return errCrash
			}
			return nil
		}
	}
	t.Run("nothing made", func(t *testing.T) {
		f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
		r := f.runner(crashAt(rotation.Generated, false))
		r.Plan(context.Background(), rotation.PlanRequest{})
		if _, err := r.Run(context.Background(), rotation.Activated, false); !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		note, err := r.Abort(context.Background())
		if err != nil || !strings.HasPrefix(note, "nothing was created") {
			t.Fatalf("abort: %v %q", err, note)
		}
	})
	t.Run("crash inside generate", func(t *testing.T) {
		f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
		r := f.runner(crashAt(rotation.Generated, true))
		j, _ := r.Plan(context.Background(), rotation.PlanRequest{})
		if j, err := r.Run(context.Background(), rotation.Activated, false); !errors.Is(err, errCrash) || j.Step != rotation.Planned {
			t.Fatal(err)
		}
		note, err := r.Abort(context.Background())
		if err != nil || strings.Contains(note, "nothing was created") || !strings.Contains(note, "jwkctl keys delete --key '"+j.NewKey+"'") {
			t.Fatalf("abort after a crash inside generate: %v %q", err, note)
		}
		if _, err := f.journal.Load("prod"); !errors.Is(err, rotation.ErrNoJournal) {
			t.Fatalf("journal after abort: %v", err)
		}
	})
	t.Run("crash inside KMS generate", func(t *testing.T) {
		_, kmsOpts := startKMS(t)
		f := newFixture(t, kmsKey, jose.ES256, 0, kmsOpts)
		r := f.runner(crashAt(rotation.Generated, true))
		r.Plan(context.Background(), rotation.PlanRequest{})
		if _, err := r.Run(context.Background(), rotation.Activated, false); !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		note, err := r.Abort(context.Background())
		if err != nil || !strings.Contains(note, "jwkctl keys delete --key '"+kmsKey+"/cryptoKeyVersions/2'") || strings.Contains(note, "versions/1") {
			t.Fatalf("abort after a crash inside KMS generate: %v %q", err, note)
		}
	})
	t.Run("crash inside upload", func(t *testing.T) {
		f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
		r := f.runner(crashAt(rotation.Uploaded, true))
		r.Plan(context.Background(), rotation.PlanRequest{})
		j, err := r.Run(context.Background(), rotation.Activated, false)
		if !errors.Is(err, errCrash) || j.Step != rotation.SelfTested {
			t.Fatal(err)
		}
		if got := f.sts.ClientKeyIDs(clientID); !slices.Contains(got, j.NewKid) {
			t.Fatalf("the crash was meant to come after the upload: %v", got)
		}
		note, err := r.Abort(context.Background())
		if err != nil || strings.Contains(note, "never uploaded") || !strings.Contains(note, "may have been registered") || !strings.Contains(note, "jwkctl keys expiry --profile prod") {
			t.Fatalf("abort after a crash inside upload: %v %q", err, note)
		}
	})
	t.Run("crash right before upload", func(t *testing.T) {
		f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
		r := f.runner(crashAt(rotation.Uploaded, false))
		r.Plan(context.Background(), rotation.PlanRequest{})
		if j, err := r.Run(context.Background(), rotation.Activated, false); !errors.Is(err, errCrash) || j.Step != rotation.SelfTested {
			t.Fatal(err)
		}
		// Still "self-tested": the upload may or may not have happened as
		// far as the journal can tell, so the note stays cautious.
		note, _ := r.Abort(context.Background())
		if !strings.Contains(note, "may have been registered") {
			t.Fatalf("abort: %q", note)
		}
	})
}

// genKey makes an ES256 key file at path and returns its URI and kid.
func genKey(t *testing.T, path string) (string, string) {
	t.Helper()
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	k, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse("file:" + path), Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := signer.Thumbprint(k.Public())
	return k.URI().String(), kid
}

// The audit's case: a profile names its key by a path relative to the
// config file, and rotate runs from other directories, one of which has
// another key at that relative path. The journal records the key the
// profile means (absolute path and kid), activation keeps the profile's
// relative style, and retire deletes the old key, never the other one.
func TestRelativeKeyFromAnotherDirectory(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "setup.json"), jose.ES256, 0, keystore.Options{})
	// The client's real key, next to the config file, named relative to it.
	cfgDir := filepath.Dir(f.config)
	oldURI, oldKid := genKey(t, filepath.Join(cfgDir, "client.json"))
	k, _ := keystore.Open(context.Background(), oldURI, keystore.Options{})
	pub, _ := signer.PublicJWK(k.Public(), jose.ES256)
	if err := f.sts.RegisterClient(clientID, []jose.JSONWebKey{pub}, []string{devsts.DemoScope, devsts.SelvbetjeningScope}); err != nil {
		t.Fatal(err)
	}
	pf, _ := profile.Load(f.config)
	pf.Profiles["prod"].Key = "file:client.json"
	if err := pf.Save(f.config); err != nil {
		t.Fatal(err)
	}
	// Another directory with another key at the same relative path.
	other := t.TempDir()
	decoy, decoyKid := genKey(t, filepath.Join(other, "client.json"))
	t.Chdir(other)

	r := f.runner(nil)
	j, err := r.Plan(context.Background(), rotation.PlanRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if j.CurrentKey != oldURI || j.CurrentKid != oldKid || j.CurrentKid == decoyKid {
		t.Fatalf("journal's old key %s (kid %s), want %s (kid %s)", j.CurrentKey, j.CurrentKid, oldURI, oldKid)
	}
	if u, _ := keystore.Parse(j.NewKey); u == nil || u.Path != filepath.Join(cfgDir, filepath.Base(u.Path)) || !filepath.IsAbs(u.Path) {
		t.Fatalf("new key %s, want an absolute path next to the old key", j.NewKey)
	}
	if j, err = r.Run(context.Background(), rotation.Activated, false); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.config)
	if want := "key: file:" + filepath.Base(strings.TrimPrefix(j.NewKey, "file://")) + "\n"; !strings.Contains(string(b), want) {
		t.Fatalf("the activated profile lost its relative style; want %q in:\n%s", want, b)
	}
	if f.profileKey(t) != j.NewKey {
		t.Fatalf("profile key %s, want %s", f.profileKey(t), j.NewKey)
	}
	// Retire from yet another directory.
	t.Chdir(t.TempDir())
	if j, err = f.runner(nil).Run(context.Background(), rotation.Retired, true); err != nil || j.Step != rotation.Retired {
		t.Fatalf("retire: %v", err)
	}
	if _, err := keystore.Open(context.Background(), decoy, keystore.Options{}); err != nil {
		t.Fatalf("the other directory's key was touched: %v", err)
	}
	if _, err := keystore.Open(context.Background(), oldURI, keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("the old key after retirement: %v", err)
	}
}

// activated rotates the fixture's profile up to activation.
func (f *fixture) activated(t *testing.T) *rotation.Runner {
	t.Helper()
	r := f.runner(nil)
	if _, err := r.Plan(context.Background(), rotation.PlanRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background(), rotation.Activated, false); err != nil {
		t.Fatal(err)
	}
	return r
}

// Retire deletes only the key the rotation replaced: another key at the
// old key's URI, a missing old key (no retire started), or a journal
// without the old kid stops it with nothing deleted or disabled.
func TestRetireChecksTheOldKey(t *testing.T) {
	refused := func(t *testing.T, f *fixture, r *rotation.Runner, want error, text string) {
		t.Helper()
		for _, disable := range []bool{false, true} {
			r.DisableOld = disable
			j, err := r.Run(context.Background(), rotation.Retired, true)
			if !errors.Is(err, want) || !strings.Contains(err.Error(), text) || !strings.Contains(err.Error(), "nothing was deleted or disabled") {
				t.Fatalf("retire (disable=%v): %v; want %v mentioning %q", disable, err, want, text)
			}
			if j.Step != rotation.Activated || j.RetiredAt != nil || j.RetireStartedAt != nil {
				t.Fatalf("journal after a refused retire: %+v", j)
			}
		}
		if j, _ := f.journal.Load("prod"); j.Step != rotation.Activated || j.RetireStartedAt != nil {
			t.Fatalf("saved journal after a refused retire: %+v", j)
		}
	}
	t.Run("another key at the old URI", func(t *testing.T) {
		f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
		r := f.activated(t)
		path := strings.TrimPrefix(f.oldKey, "file://")
		os.Remove(path)
		_, otherKid := genKey(t, path)
		refused(t, f, r, rotation.ErrNotOldKey, "kid "+otherKid)
		if _, err := keystore.Open(context.Background(), f.oldKey, keystore.Options{}); err != nil {
			t.Fatalf("the other key was deleted: %v", err)
		}
	})
	t.Run("old key missing, no retire started", func(t *testing.T) {
		f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
		r := f.activated(t)
		os.Remove(strings.TrimPrefix(f.oldKey, "file://"))
		refused(t, f, r, rotation.ErrOldKeyMissing, "never started to retire it")
	})
	t.Run("journal without the old kid", func(t *testing.T) {
		f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
		r := f.activated(t)
		j, _ := f.journal.Load("prod")
		j.CurrentKid = ""
		f.journal.Save(j)
		refused(t, f, r, rotation.ErrNotOldKey, "older jwkctl")
		if _, err := keystore.Open(context.Background(), f.oldKey, keystore.Options{}); err != nil {
			t.Fatalf("the old key was deleted: %v", err)
		}
	})
	t.Run("the right key", func(t *testing.T) {
		f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
		r := f.activated(t)
		j, err := r.Run(context.Background(), rotation.Retired, true)
		if err != nil || j.RetireStartedAt == nil || !strings.Contains(j.History[len(j.History)-1].Note, f.oldKid) {
			t.Fatalf("retire: %v %+v", err, j)
		}
	})
}

// A KMS version an interrupted retire disabled no longer gives its public
// key, so its kid cannot be checked again; KMS never reuses a version's
// name and the kid was checked when that retire started, so the resumed
// retire finishes. Without a started retire, the same state is refused.
func TestKMSCrashAfterDisableResumes(t *testing.T) {
	_, kmsOpts := startKMS(t)
	f := newFixture(t, kmsKey, jose.ES256, 0, kmsOpts)
	r := f.activated(t)
	if err := keystore.SetEnabled(context.Background(), f.oldKey, false, kmsOpts); err != nil {
		t.Fatal(err)
	}
	r.DisableOld = true
	if _, err := r.Run(context.Background(), rotation.Retired, true); err == nil || !strings.Contains(err.Error(), "nothing was deleted or disabled") {
		t.Fatalf("retire of a version disabled by someone else: %v", err)
	}
	keystore.SetEnabled(context.Background(), f.oldKey, true, kmsOpts)
	crashing := f.runner(func(s rotation.Step, after bool) error {
		if s == rotation.Retired && after {
			return errCrash
		}
		return nil
	})
	crashing.DisableOld = true
	if _, err := crashing.Run(context.Background(), rotation.Retired, true); !errors.Is(err, errCrash) {
		t.Fatalf("crash right after the disable: %v", err)
	}
	r = f.runner(nil)
	r.DisableOld = true
	if j, err := r.Run(context.Background(), rotation.Retired, true); err != nil || j.Step != rotation.Retired {
		t.Fatalf("resume after a crash inside the KMS disable: %v", err)
	}
}

// Activation switches the profile's key and touches its alg only when it
// must: a profile without alg gets one only if the new key would sign
// with another algorithm than the one planned and tested (an RSA key in
// an HSM defaults to PS256), and one with alg keeps it, updated.
func TestActivateSetsAlgOnlyWhenNeeded(t *testing.T) {
	tok := softhsmtest.Token(t)
	for _, tc := range []struct {
		name    string
		alg     string // the profile's before the rotation
		req     rotation.PlanRequest
		wantAlg string
	}{
		{"file to file, no alg", "", rotation.PlanRequest{}, ""},
		{"file to file, alg kept", "ES256", rotation.PlanRequest{}, "ES256"},
		{"file to SoftHSM RS256", "", rotation.PlanRequest{NewKey: tok.URI("rs256-from-file"), Alg: "RS256", Bits: 2048}, "RS256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
			pf, err := profile.Load(f.config)
			if err != nil {
				t.Fatal(err)
			}
			pf.Profiles["prod"].Alg = tc.alg
			if err := pf.Save(f.config); err != nil {
				t.Fatal(err)
			}
			r := f.runner(nil)
			if _, err := r.Plan(t.Context(), tc.req); err != nil {
				t.Fatal(err)
			}
			j, err := r.Run(t.Context(), rotation.Activated, false)
			if err != nil {
				t.Fatal(err)
			}
			pf, err = profile.Load(f.config)
			if err != nil {
				t.Fatal(err)
			}
			if p := pf.Profiles["prod"]; p.Key != j.NewKey || p.Alg != tc.wantAlg {
				t.Fatalf("after activation: key %s alg %q, want %s and %q", p.Key, p.Alg, j.NewKey, tc.wantAlg)
			}
			if tc.wantAlg == "" {
				if err := f.tokenWith(t, j.NewKey); err != nil {
					t.Fatalf("token with the new key and its default alg: %v", err)
				}
			}
		})
	}
}

// Retiring inside the overlap is not a failed step: the error says until
// when the old key stays and how to retire it, once.
func TestRetireInsideOverlapError(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	r := f.runner(nil)
	if _, err := r.Plan(t.Context(), rotation.PlanRequest{Overlap: time.Hour}); err != nil {
		t.Fatal(err)
	}
	j, err := r.Run(t.Context(), rotation.Retired, false)
	var oe *rotation.OverlapError
	if !errors.As(err, &oe) || !errors.Is(err, rotation.ErrOverlap) || j.Step != rotation.Activated {
		t.Fatalf("retire inside the overlap: %v (step %s)", err, j.Step)
	}
	if !oe.Until.Equal(j.ActivatedAt.Add(time.Hour)) || oe.Overlap != time.Hour {
		t.Fatalf("overlap error %+v, activated at %s", oe, j.ActivatedAt)
	}
	msg := err.Error()
	if strings.Contains(msg, "rotation:") || strings.Contains(msg, "step") ||
		!strings.HasPrefix(msg, "the old key stays until "+oe.Until.Format(time.RFC3339)+" (overlap 1h0m0s); run jwkctl rotate resume --profile prod --retire after that") ||
		!strings.HasSuffix(msg, "or jwkctl rotate resume --profile prod --force-retire to retire it now") {
		t.Fatalf("message: %s", msg)
	}
	r.DisableOld = true
	if _, err := r.Run(t.Context(), rotation.Retired, false); err == nil || !strings.Contains(err.Error(), "--profile prod --retire-by disable --retire after that") {
		t.Fatalf("retire by disabling inside the overlap: %v", err)
	}
}

// A profile's kid entry names the old key's registration: activation
// drops it with the key, so the new key signs with its own kid.
func TestActivateDropsKeptKid(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	pf, err := profile.Load(f.config)
	if err != nil {
		t.Fatal(err)
	}
	pf.Profiles["prod"].Kid = "registered-old-kid"
	if err := pf.Save(f.config); err != nil {
		t.Fatal(err)
	}
	// Selvbetjening knows the old key by that kid only.
	old := f.sts.ClientKeys(clientID)[0]
	old.KeyID = "registered-old-kid"
	if err := f.sts.RegisterClient(clientID, []jose.JSONWebKey{old}, []string{devsts.DemoScope, devsts.SelvbetjeningScope}); err != nil {
		t.Fatal(err)
	}
	r := f.runner(nil)
	if _, err := r.Plan(t.Context(), rotation.PlanRequest{}); err != nil {
		t.Fatal(err)
	}
	j, err := r.Run(t.Context(), rotation.Activated, false)
	if err != nil {
		t.Fatal(err)
	}
	if pf, err = profile.Load(f.config); err != nil {
		t.Fatal(err)
	}
	if p := pf.Profiles["prod"]; p.Key != j.NewKey || p.Kid != "" {
		t.Fatalf("after activation: key %s kid %q, want %s and no kid", p.Key, p.Kid, j.NewKey)
	}
	if err := f.tokenWith(t, j.NewKey); err != nil {
		t.Fatalf("token with the new key: %v", err)
	}
}

// fakeAgent answers /healthz on a Unix socket as a jwkctl agent would,
// with the kid each profile signs with; keys can change between calls.
func fakeAgent(t *testing.T, keys func() map[string]string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		kids := keys()
		var names []string
		for n := range kids {
			names = append(names, n)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"status": "ok", "profiles": names, "signing_keys": kids})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "unix:" + sock
}

// A retire that names agents asks them right before the key goes: one on
// the old kid (for any profile) keeps it, naming the agent, profile and
// kid; one that cannot be asked keeps it unless forced.
func TestRetireAsksAgents(t *testing.T) {
	f := newFixture(t, "file:"+filepath.Join(t.TempDir(), "client.json"), jose.ES256, 0, keystore.Options{})
	r := f.activated(t)
	j, _ := f.journal.Load("prod")
	var mu sync.Mutex
	newKid, copyKid := j.NewKid, f.oldKid
	addr := fakeAgent(t, func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		return map[string]string{"prod": newKid, "prod-copy": copyKid}
	})
	r.Agents = []rotation.Agent{{Addr: addr}}
	_, err := r.Run(context.Background(), rotation.Retired, true)
	if !errors.Is(err, rotation.ErrInUse) || !strings.Contains(err.Error(), "the agent at "+addr+" signs with the old key (kid "+f.oldKid+") for profile prod-copy") {
		t.Fatalf("retire with an agent on the old key: %v", err)
	}
	if _, err := keystore.Open(context.Background(), f.oldKey, keystore.Options{}); err != nil {
		t.Fatalf("the old key: %v", err)
	}
	down := "unix:" + filepath.Join(t.TempDir(), "down.sock")
	// Past the overlap, not forced: an agent that cannot be asked stops it.
	j.Overlap.Duration = 0
	if err := f.journal.Save(j); err != nil {
		t.Fatal(err)
	}
	r.Agents = []rotation.Agent{{Addr: down}}
	if _, err := r.Run(context.Background(), rotation.Retired, false); !errors.Is(err, rotation.ErrAgentUnknown) || !strings.Contains(err.Error(), down) {
		t.Fatalf("retire with an unreachable agent: %v", err)
	}
	if _, err := keystore.Open(context.Background(), f.oldKey, keystore.Options{}); err != nil {
		t.Fatalf("the old key: %v", err)
	}
	mu.Lock()
	copyKid = newKid
	mu.Unlock()
	r.Agents = []rotation.Agent{{Addr: addr}, {Addr: down}}
	j, err = r.Run(context.Background(), rotation.Retired, true)
	if err != nil || j.Step != rotation.Retired {
		t.Fatalf("forced retire with the agents on the new key and one down: %v", err)
	}
	note := j.History[len(j.History)-1].Note
	if !strings.Contains(note, "agent "+addr+" signs with the new key for prod, prod-copy") || !strings.Contains(note, "agent "+down+" not asked") {
		t.Fatalf("retire note: %s", note)
	}
}
