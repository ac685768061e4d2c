package gcpkms_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/gcpkms"
	"github.com/jwkctl/jwkctl/keystore/gcpkms/fakekms"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/signer/signertest"
)

const ring = "gcpkms://projects/test-project/locations/europe-north1/keyRings/jwkctl"

func init() { gcpkms.PollInterval = time.Millisecond }

func fake(t *testing.T) (*fakekms.Server, keystore.Options) {
	t.Helper()
	s, addr, stop, err := fakekms.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s, keystore.Options{Endpoint: addr}
}

func generate(t *testing.T, opts keystore.Options, key string, alg jose.SignatureAlgorithm, bits int) keystore.Key {
	t.Helper()
	spec, err := keystore.SpecFor(alg, bits)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse(ring + "/cryptoKeys/" + key), Spec: spec, Options: opts})
	if err != nil {
		t.Fatalf("generate %s: %v", key, err)
	}
	return k
}

func TestConformance(t *testing.T) {
	_, opts := fake(t)
	for _, tc := range []struct {
		key  string
		alg  jose.SignatureAlgorithm
		bits int
	}{
		{"pss", jose.PS256, 2048}, {"pkcs1", jose.RS256, 2048}, {"p256", jose.ES256, 0}, {"p384", jose.ES384, 0},
	} {
		t.Run(tc.key, func(t *testing.T) {
			k := generate(t, opts, tc.key, tc.alg, tc.bits)
			if got := k.URI().String(); got != ring+"/cryptoKeys/"+tc.key+"/cryptoKeyVersions/1" {
				t.Errorf("URI %s", got)
			}
			// The key allows only its KMS algorithm, and passes the suite.
			algs := k.(keystore.AlgRestricted).Algs()
			if len(algs) != 1 || algs[0] != tc.alg {
				t.Fatalf("Algs() = %v", algs)
			}
			signertest.Run(t, k)
			other := jose.PS384
			if _, err := signer.New(k, other); err == nil {
				t.Errorf("signer accepted %s for a %s KMS key", other, tc.alg)
			}
		})
	}
}

func TestOneRPCPerSignature(t *testing.T) {
	s, opts := fake(t)
	k := generate(t, opts, "count", jose.ES256, 0)
	opened, err := keystore.Open(context.Background(), k.URI().String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	sg, _ := signer.New(opened, jose.ES256)
	before, beforeSign := s.AllRPCs(), s.SignRPCs()
	for range 5 {
		if _, err := sg.SignPayload([]byte("x"), jose.ES256); err != nil {
			t.Fatal(err)
		}
	}
	if all, sign := s.AllRPCs()-before, s.SignRPCs()-beforeSign; all != 5 || sign != 5 {
		t.Fatalf("5 signatures made %d RPCs (%d AsymmetricSign), want exactly 5", all, sign)
	}
}

func TestIntegrityChecksFire(t *testing.T) {
	s, opts := fake(t)
	k := generate(t, opts, "integrity", jose.PS256, 2048)
	uri := k.URI().String()
	digest := sha256.Sum256([]byte("payload"))
	pss := &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}
	tests := []struct {
		name   string
		faults fakekms.Faults
		open   bool // the check is at Open (GetPublicKey), not Sign
		want   string
	}{
		{"pem crc", fakekms.Faults{CorruptPEMCRC: true}, true, "public key of"},
		{"wrong name on GetPublicKey", fakekms.Faults{WrongName: true}, true, "answered for"},
		{"pem crc missing", fakekms.Faults{OmitPEMCRC: true}, true, "public key of"},
		{"signature crc", fakekms.Faults{CorruptSignatureCRC: true}, false, "signature from"},
		{"signature crc missing", fakekms.Faults{OmitSignatureCRC: true}, false, "signature from"},
		{"digest not verified", fakekms.Faults{UnverifiedDigest: true}, false, "did not confirm the digest"},
		{"wrong name on sign", fakekms.Faults{WrongName: true}, false, "answered for"},
		{"permission denied", fakekms.Faults{FailWith: "PERMISSION_DENIED"}, false, "cloudkms.cryptoKeyVersions.useToSign"},
		{"permission denied on open", fakekms.Faults{FailWith: "PERMISSION_DENIED"}, true, "cloudkms.cryptoKeyVersions.viewPublicKey"},
		{"disabled", fakekms.Faults{FailWith: "FAILED_PRECONDITION"}, false, "not enabled"},
		{"not found", fakekms.Faults{FailWith: "NOT_FOUND"}, true, "does not exist"},
		{"no credentials", fakekms.Faults{FailWith: "UNAUTHENTICATED"}, false, "application-default login"},
		{"internal error", fakekms.Faults{FailWith: "INTERNAL"}, false, "HTTP 500 (INTERNAL): fakekms: injected INTERNAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetFaults(fakekms.Faults{})
			key, err := keystore.Open(context.Background(), uri, opts)
			if err != nil {
				t.Fatal(err)
			}
			s.SetFaults(tt.faults)
			defer s.SetFaults(fakekms.Faults{})
			if tt.open {
				_, err = keystore.Open(context.Background(), uri, opts)
			} else {
				_, err = key.Sign(rand.Reader, digest[:], pss)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
			if tt.faults.FailWith == "PERMISSION_DENIED" && !errors.Is(err, keystore.ErrPermission) {
				t.Errorf("%v does not wrap ErrPermission", err)
			}
		})
	}
}

func TestGenerateWaitsAndRotates(t *testing.T) {
	s, opts := fake(t)
	s.SetFaults(fakekms.Faults{PendingPolls: 3})
	k1 := generate(t, opts, "rotating", jose.ES256, 0)
	if !strings.HasSuffix(k1.URI().String(), "/cryptoKeyVersions/1") {
		t.Fatalf("first version %s", k1.URI())
	}
	k2 := generate(t, opts, "rotating", jose.ES256, 0)
	if !strings.HasSuffix(k2.URI().String(), "/cryptoKeyVersions/2") {
		t.Fatalf("rotation made %s", k2.URI())
	}
	if kid1, _ := signer.Thumbprint(k1.Public()); kid1 == mustKid(t, k2) {
		t.Fatal("new version has the same key")
	}
	// A different algorithm on the same key is refused.
	spec, _ := keystore.SpecFor(jose.PS256, 2048)
	_, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse(ring + "/cryptoKeys/rotating"), Spec: spec, Options: opts})
	if err == nil || !strings.Contains(err.Error(), "EC_SIGN_P256_SHA256") {
		t.Fatalf("algorithm change: %v", err)
	}
	// Pending forever: bounded by the context.
	s.SetFaults(fakekms.Faults{PendingPolls: 1 << 30})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	spec, _ = keystore.SpecFor(jose.ES256, 0)
	_, err = keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(ring + "/cryptoKeys/stuck"), Spec: spec, Options: opts})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stuck generation: %v", err)
	}
}

func mustKid(t *testing.T, k keystore.Key) string {
	t.Helper()
	kid, err := signer.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

func TestRefusals(t *testing.T) {
	_, opts := fake(t)
	ctx := context.Background()
	for _, tc := range []struct {
		alg  jose.SignatureAlgorithm
		bits int
		want string
	}{
		{jose.ES512, 0, "no P-521"},
		{jose.PS384, 2048, "no RSA signing with SHA-384"},
		{jose.PS512, 2048, "only with RSA-4096"},
	} {
		spec, err := keystore.SpecFor(tc.alg, tc.bits)
		if err != nil {
			t.Fatal(err)
		}
		_, err = keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(ring + "/cryptoKeys/x"), Spec: spec, Options: opts})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.alg, err, tc.want)
		}
	}
	if _, err := keystore.Open(ctx, ring+"/cryptoKeys/x", opts); !errors.Is(err, keystore.ErrBadURI) || !strings.Contains(err.Error(), "no primary version") {
		t.Errorf("open without version: %v", err)
	}
}

func TestListAndDestroy(t *testing.T) {
	_, opts := fake(t)
	ctx := context.Background()
	generate(t, opts, "a", jose.ES256, 0)
	generate(t, opts, "a", jose.ES256, 0)
	generate(t, opts, "b", jose.RS256, 2048)
	infos, err := keystore.List(ctx, ring, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 {
		t.Fatalf("listed %d versions, want 3", len(infos))
	}
	for _, in := range infos {
		if in.State != "ENABLED" || in.Public == nil || len(in.Algs) != 1 {
			t.Errorf("%s: %+v", in.URI, in)
		}
	}
	v2 := ring + "/cryptoKeys/a/cryptoKeyVersions/2"
	if err := keystore.Delete(ctx, v2, opts); err != nil {
		t.Fatal(err)
	}
	infos, _ = keystore.List(ctx, ring+"/cryptoKeys/a", opts)
	if len(infos) != 2 || infos[1].State != "DESTROY_SCHEDULED" {
		t.Fatalf("after destroy: %+v", infos)
	}
	if _, err := keystore.Open(ctx, v2, opts); err == nil {
		t.Fatal("a destroyed version opened")
	}
}

// Disable switches a version off (signing fails with a clear error) and
// enable switches it back on; a destroyed version cannot be switched.
func TestDisableEnable(t *testing.T) {
	_, opts := fake(t)
	ctx := context.Background()
	k := generate(t, opts, "d", jose.ES256, 0)
	uri := k.URI().String()
	s, err := signer.New(k, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.SetEnabled(ctx, uri, false, opts); err != nil {
		t.Fatal(err)
	}
	if infos, _ := keystore.List(ctx, ring+"/cryptoKeys/d", opts); len(infos) != 1 || infos[0].State != "DISABLED" {
		t.Fatalf("after disable: %+v", infos)
	}
	if _, err := s.SignPayload([]byte("x"), jose.ES256); err == nil || !strings.Contains(err.Error(), "not enabled") {
		t.Fatalf("signing with a disabled version: %v", err)
	}
	if err := keystore.SetEnabled(ctx, uri, true, opts); err != nil {
		t.Fatal(err)
	}
	signertest.RunAlgs(t, k, jose.ES256)
	if err := keystore.Delete(ctx, uri, opts); err != nil {
		t.Fatal(err)
	}
	if err := keystore.SetEnabled(ctx, uri, true, opts); err == nil || !strings.Contains(err.Error(), "DESTROY_SCHEDULED") {
		t.Fatalf("enabling a destroyed version: %v", err)
	}
	if err := keystore.SetEnabled(ctx, ring+"/cryptoKeys/d", false, opts); !errors.Is(err, keystore.ErrBadURI) {
		t.Fatalf("disable without a version: %v", err)
	}
	if err := keystore.SetEnabled(ctx, ring+"/cryptoKeys/nope/cryptoKeyVersions/1", false, opts); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("disable a missing version: %v", err)
	}
}

// KMS fixes algorithm and protection level per key: a new version of an
// existing key gets the key's own, so asking for another is refused —
// before anything is created, also through CheckGenerate.
func TestGenerateChecksTheKeyTemplate(t *testing.T) {
	_, opts := fake(t)
	ctx := context.Background()
	generate(t, opts, "soft", jose.ES256, 0)
	key := keystore.MustParse(ring + "/cryptoKeys/soft")
	es256, _ := keystore.SpecFor(jose.ES256, 0)
	ps256, _ := keystore.SpecFor(jose.PS256, 2048)
	es512, _ := keystore.SpecFor(jose.ES512, 0)
	hsm := opts
	hsm.ProtectionLevel = "hsm"
	soft := opts
	soft.ProtectionLevel = "software"
	for _, tc := range []struct {
		name string
		req  keystore.GenerateRequest
		want string // "" = accepted
	}{
		{"same template", keystore.GenerateRequest{URI: key, Spec: es256, Options: opts}, ""},
		{"explicit same level", keystore.GenerateRequest{URI: key, Spec: es256, Options: soft}, ""},
		{"other level", keystore.GenerateRequest{URI: key, Spec: es256, Options: hsm}, "protection level SOFTWARE"},
		{"other alg", keystore.GenerateRequest{URI: key, Spec: ps256, Options: opts}, "EC_SIGN_P256_SHA256"},
		{"no P-521", keystore.GenerateRequest{URI: keystore.MustParse(ring + "/cryptoKeys/new"), Spec: es512, Options: opts}, "P-521"},
		{"version given", keystore.GenerateRequest{URI: keystore.MustParse(ring + "/cryptoKeys/soft/cryptoKeyVersions/1"), Spec: es256, Options: opts}, "already exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := keystore.CheckGenerate(ctx, tc.req)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("CheckGenerate: %v, want %q", err, tc.want)
			}
			if tc.want == "" {
				return
			}
			if _, err := keystore.Generate(ctx, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Generate: %v, want %q", err, tc.want)
			}
		})
	}
	infos, err := keystore.List(ctx, ring+"/cryptoKeys/soft", opts)
	if err != nil || len(infos) != 1 {
		t.Fatalf("versions after refused generates: %d (%v), want 1", len(infos), err)
	}
}

// keys list says why a version's public key (and so its kid) is missing
// instead of dropping the error.
func TestListSaysWhyPublicKeyIsMissing(t *testing.T) {
	s, opts := fake(t)
	generate(t, opts, "listed", jose.ES256, 0)
	for _, tc := range []struct {
		faults fakekms.Faults
		want   string
	}{
		{fakekms.Faults{CorruptPEMCRC: true}, "public key unreadable"},
	} {
		s.SetFaults(tc.faults)
		infos, err := keystore.List(context.Background(), ring+"/cryptoKeys/listed", opts)
		s.SetFaults(fakekms.Faults{})
		if err != nil || len(infos) != 1 || infos[0].Public != nil || !strings.Contains(infos[0].State, tc.want) {
			t.Fatalf("%+v: %v %+v", tc.faults, err, infos)
		}
	}
}

// The fake is safe to use from many goroutines (jwkctl dev kms serves it):
// signing while the version is switched off and on.
func TestFakeConcurrentStateChanges(t *testing.T) {
	_, opts := fake(t)
	k := generate(t, opts, "flip", jose.ES256, 0)
	s, _ := signer.New(k, jose.ES256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			keystore.SetEnabled(context.Background(), k.URI().String(), i%2 == 1, opts)
		}
	}()
	for range 20 {
		s.SignPayload([]byte("x"), jose.ES256) // may fail while disabled; must not race
	}
	<-done
}

// A Cloud KMS that stays unavailable ends an open or a signature when the
// budget (keystore.Options.KMSTimeout) runs out, with what KMS last said
// and how long it was tried: not a bare "context deadline exceeded".
func TestUnavailableKMSReportsTheCause(t *testing.T) {
	s, opts := fake(t)
	k := generate(t, opts, "unavailable", jose.ES256, 0)
	uri := k.URI().String()
	opts.KMSTimeout = 800 * time.Millisecond
	key, err := keystore.Open(context.Background(), uri, opts)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("payload"))
	check := func(t *testing.T, what string, err error, cause ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		for _, want := range append([]string{"unavailable for 800ms", "last: Unavailable", "--kms-timeout"}, cause...) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q lacks %q", what, err, want)
			}
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v does not wrap context.DeadlineExceeded", what, err)
		}
	}
	t.Run("injected", func(t *testing.T) {
		s.SetFaults(fakekms.Faults{FailWith: "UNAVAILABLE"})
		defer s.SetFaults(fakekms.Faults{})
		before := s.AllRPCs()
		_, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		check(t, "sign", err, "sign with", "injected UNAVAILABLE")
		_, err = keystore.Open(context.Background(), uri, opts)
		check(t, "open", err, "get public key of", "injected UNAVAILABLE")
		if n := s.AllRPCs() - before; n <= 2 {
			t.Errorf("KMS was tried %d times for an open and a signature, want retries within the budget", n)
		}
	})
	t.Run("server gone", func(t *testing.T) {
		_, addr, stop, err := fakekms.Start()
		if err != nil {
			t.Fatal(err)
		}
		opts2 := keystore.Options{Endpoint: addr, KMSTimeout: 800 * time.Millisecond}
		k2 := generate(t, opts2, "gone", jose.ES256, 0)
		key2, err := keystore.Open(context.Background(), k2.URI().String(), opts2)
		if err != nil {
			t.Fatal(err)
		}
		stop()
		_, err = key2.Sign(rand.Reader, digest[:], crypto.SHA256)
		check(t, "sign", err, "connection refused")
	})
}

// Listing follows nextPageToken: the fake answers 25 versions a page.
func TestListPages(t *testing.T) {
	s, opts := fake(t)
	for range 30 {
		generate(t, opts, "many", jose.ES256, 0)
	}
	before := s.AllRPCs()
	infos, err := keystore.List(context.Background(), ring+"/cryptoKeys/many", opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 30 || !strings.HasSuffix(infos[29].URI.String(), "/cryptoKeyVersions/30") {
		t.Fatalf("listed %d versions", len(infos))
	}
	// Two pages, and one public key read per version.
	if n := s.AllRPCs() - before; n != 2+30 {
		t.Errorf("listing 30 versions made %d calls, want 32", n)
	}
}
