package awskms_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/awskms"
	"github.com/jwkctl/jwkctl/keystore/awskms/fakeawskms"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/signer/signertest"
)

const region = "eu-north-1"

func fake(t testing.TB) (*fakeawskms.Server, keystore.Options) {
	t.Helper()
	s, addr, stop, err := fakeawskms.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s, keystore.Options{Endpoint: addr}
}

func aliasURI(name string) string { return "awskms:///alias/" + name + "?region=" + region }

func generate(t testing.TB, opts keystore.Options, alias string, alg jose.SignatureAlgorithm, bits int) keystore.Key {
	t.Helper()
	spec, err := keystore.SpecFor(alg, bits)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse(aliasURI(alias)), Spec: spec, Options: opts})
	if err != nil {
		t.Fatalf("generate %s: %v", alias, err)
	}
	return k
}

func TestConformance(t *testing.T) {
	s, opts := fake(t)
	for _, tc := range []struct {
		alias string
		alg   jose.SignatureAlgorithm
		bits  int
		algs  []jose.SignatureAlgorithm
		spec  string
	}{
		{"rsa2048", jose.PS256, 2048, []jose.SignatureAlgorithm{jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512}, "RSA_2048"},
		{"rsa3072", jose.RS256, 3072, nil, "RSA_3072"},
		{"p256", jose.ES256, 0, []jose.SignatureAlgorithm{jose.ES256}, "ECC_NIST_P256"},
		{"p384", jose.ES384, 0, []jose.SignatureAlgorithm{jose.ES384}, "ECC_NIST_P384"},
		{"p521", jose.ES512, 0, []jose.SignatureAlgorithm{jose.ES512}, "ECC_NIST_P521"},
	} {
		t.Run(tc.alias, func(t *testing.T) {
			k := generate(t, opts, tc.alias, tc.alg, tc.bits)
			if got := k.URI().String(); got != aliasURI(tc.alias) {
				t.Errorf("URI %s", got)
			}
			algs := k.(keystore.AlgRestricted).Algs()
			if tc.algs != nil && !equal(algs, tc.algs) {
				t.Fatalf("Algs() = %v, want %v", algs, tc.algs)
			}
			arn := k.(*awskms.Key).ARN()
			tags := s.Tags(arn)
			if tags["created-by"] != "jwkctl" || tags["jwkctl-alias"] != "alias/"+tc.alias || tags["jwkctl-alg"] != string(tc.alg) {
				t.Errorf("tags %v", tags)
			}
			if !strings.Contains(arn, ":"+region+":") {
				t.Errorf("key made in %s, not %s", arn, region)
			}
			signertest.Run(t, k)
		})
	}
	// An EC key signs with its curve's algorithm only.
	k, err := keystore.Open(context.Background(), aliasURI("p256"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.New(k, jose.ES384); err == nil {
		t.Error("signer accepted ES384 for a P-256 key")
	}
}

func equal(a, b []jose.SignatureAlgorithm) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Steady state: one Sign call per JWS; one GetPublicKey per process,
// however often the key is opened (by alias, as the CLI and agent do).
func TestOneCallPerSignature(t *testing.T) {
	s, opts := fake(t)
	generate(t, opts, "count", jose.ES256, 0)
	before, pubBefore := s.AllCalls(), s.Calls("GetPublicKey")
	for range 3 {
		k, err := keystore.Open(context.Background(), aliasURI("count"), opts)
		if err != nil {
			t.Fatal(err)
		}
		sg, err := signer.New(k, jose.ES256)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if _, err := sg.SignPayload([]byte("x"), jose.ES256); err != nil {
				t.Fatal(err)
			}
		}
	}
	if all, sign, pub := s.AllCalls()-before, s.Calls("Sign"), s.Calls("GetPublicKey")-pubBefore; all != 15 || sign != 15 || pub != 0 {
		t.Fatalf("3 opens and 15 signatures made %d calls (%d Sign, %d more GetPublicKey), want exactly 15 Sign", all, sign, pub)
	}
	if pub := s.Calls("GetPublicKey"); pub != 1 {
		t.Fatalf("GetPublicKey called %d times in this process, want 1", pub)
	}
}

func TestFaults(t *testing.T) {
	s, opts := fake(t)
	k := generate(t, opts, "faulty", jose.PS256, 2048)
	digest := sha256.Sum256([]byte("payload"))
	for _, tc := range []struct {
		name   string
		faults fakeawskms.Faults
		want   string
		is     error
	}{
		{"access denied", fakeawskms.Faults{FailWith: "AccessDeniedException"}, "needs IAM permission kms:Sign", keystore.ErrPermission},
		{"bad credentials", fakeawskms.Faults{FailWith: "UnrecognizedClientException"}, "AWS rejected the credentials", keystore.ErrPermission},
		{"throttled past the retries", fakeawskms.Faults{Throttle: 100}, "throttled the request, still after 3 attempts", nil},
		{"wrong key answered", fakeawskms.Faults{WrongKeyID: true}, "KMS answered for", nil},
		{"internal", fakeawskms.Faults{FailWith: "KMSInternalException"}, "KMSInternalException", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.SetFaults(tc.faults)
			defer s.SetFaults(fakeawskms.Faults{})
			_, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line mentioning %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("%v does not wrap %v", err, tc.is)
			}
		})
	}
	// Throttled twice, the SDK's third attempt gets through.
	s.SetFaults(fakeawskms.Faults{Throttle: 2})
	before := s.Calls("Sign")
	if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		t.Fatalf("sign after two throttles: %v", err)
	}
	if n := s.Calls("Sign") - before; n != 3 {
		t.Fatalf("%d Sign calls, want 3 (two throttled, one retried)", n)
	}
	s.SetFaults(fakeawskms.Faults{FailWith: "AccessDeniedException", Ops: []string{"GetPublicKey"}})
	_, err := keystore.Open(context.Background(), aliasURI("not-cached"), opts)
	if !errors.Is(err, keystore.ErrPermission) || !strings.Contains(err.Error(), "kms:GetPublicKey") {
		t.Fatalf("open without kms:GetPublicKey: %v", err)
	}
}

// A key is refused with a clear error when it cannot sign: wrong usage,
// disabled, pending deletion, another region.
func TestUnusableKeys(t *testing.T) {
	s, opts := fake(t)
	ctx := context.Background()
	if _, err := s.AddKey(region, "RSA_2048", "ENCRYPT_DECRYPT", "alias/encrypt"); err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.Open(ctx, aliasURI("encrypt"), opts); err == nil || !strings.Contains(err.Error(), "ENCRYPT_DECRYPT key, not SIGN_VERIFY") {
		t.Fatalf("open an ENCRYPT_DECRYPT key: %v", err)
	}
	if err := keystore.Delete(ctx, aliasURI("encrypt"), opts); err == nil || !strings.Contains(err.Error(), "not a signing key") {
		t.Fatalf("delete an ENCRYPT_DECRYPT key: %v", err)
	}
	generate(t, opts, "elsewhere", jose.ES256, 0)
	_, err := keystore.Open(ctx, "awskms:///alias/elsewhere?region=eu-west-1", opts)
	if !errors.Is(err, keystore.ErrNotFound) || !strings.Contains(err.Error(), "region eu-west-1") {
		t.Fatalf("open in the wrong region: %v", err)
	}
	// Disabled: the cached key refuses to sign; a fresh process could not
	// even open it.
	k := generate(t, opts, "switch", jose.ES256, 0)
	sg, _ := signer.New(k, jose.ES256)
	if err := keystore.SetEnabled(ctx, aliasURI("switch"), false, opts); err != nil {
		t.Fatal(err)
	}
	if s.KeyState(k.(*awskms.Key).ARN()) != "Disabled" {
		t.Fatal("not disabled in KMS")
	}
	if _, err := sg.SignPayload([]byte("x"), jose.ES256); err == nil || !strings.Contains(err.Error(), "the key is disabled") {
		t.Fatalf("sign with a disabled key: %v", err)
	}
	infos, err := keystore.List(ctx, aliasURI("switch"), opts)
	if err != nil || len(infos) != 1 || infos[0].State != "Disabled" {
		t.Fatalf("list a disabled key: %+v %v", infos, err)
	}
	if err := keystore.SetEnabled(ctx, aliasURI("switch"), true, opts); err != nil {
		t.Fatal(err)
	}
	signertest.RunAlgs(t, k, jose.ES256)
	// Pending deletion: gone for jwkctl (ErrNotFound), with a way back.
	if err := keystore.Delete(ctx, aliasURI("switch"), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := sg.SignPayload([]byte("x"), jose.ES256); err == nil || !strings.Contains(err.Error(), "scheduled for deletion") {
		t.Fatalf("sign with a key pending deletion: %v", err)
	}
	if _, err := keystore.Open(ctx, aliasURI("switch"), opts); !errors.Is(err, keystore.ErrNotFound) || !strings.Contains(err.Error(), "cancel-key-deletion") {
		t.Fatalf("open a key pending deletion: %v", err)
	}
	if err := keystore.Delete(ctx, aliasURI("switch"), opts); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if err := keystore.SetEnabled(ctx, aliasURI("switch"), true, opts); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("enable a key pending deletion: %v", err)
	}
}

// generate never reuses an alias, and refuses before creating anything;
// a failed CreateAlias leaves no usable key behind.
func TestGenerate(t *testing.T) {
	s, opts := fake(t)
	ctx := context.Background()
	generate(t, opts, "taken", jose.ES256, 0)
	es256, _ := keystore.SpecFor(jose.ES256, 0)
	for _, tc := range []struct {
		name, uri string
		opts      keystore.Options
		want      string
	}{
		{"alias taken", aliasURI("taken"), opts, "already names key"},
		{"key id", "awskms:///1234abcd-12ab-34cd-56ef-1234567890ab?region=" + region, opts, "name the new key by an alias"},
		{"prefix", "awskms:///alias/?region=" + region, opts, "name the new key by an alias"},
		{"aws alias", aliasURI("aws/ebs"), opts, "reserved"},
		{"protection level", aliasURI("hsm"), keystore.Options{Endpoint: opts.Endpoint, ProtectionLevel: "hsm"}, "for Cloud KMS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Keys())
			req := keystore.GenerateRequest{URI: keystore.MustParse(tc.uri), Spec: es256, Options: tc.opts}
			if err := keystore.CheckGenerate(ctx, req); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckGenerate: %v, want %q", err, tc.want)
			}
			if _, err := keystore.Generate(ctx, req); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Generate: %v, want %q", err, tc.want)
			}
			if len(s.Keys()) != before {
				t.Fatal("a refused generate created a key")
			}
		})
	}
	s.SetFaults(fakeawskms.Faults{FailWith: "AccessDeniedException", Ops: []string{"CreateAlias"}})
	_, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(aliasURI("noalias")), Spec: es256, Options: opts})
	s.SetFaults(fakeawskms.Faults{})
	if err == nil || !strings.Contains(err.Error(), "kms:CreateAlias") || !strings.Contains(err.Error(), "scheduled for deletion in 7 days") {
		t.Fatalf("generate without kms:CreateAlias: %v", err)
	}
	keys := s.Keys()
	if st := s.KeyState(keys[len(keys)-1]); len(keys) != 2 || !strings.Contains(strings.Join(keys, " "), ":key/") {
		t.Fatalf("keys %v", keys)
	} else {
		pending := 0
		for _, k := range keys {
			if s.KeyState(k) == "PendingDeletion" {
				pending++
			}
		}
		if pending != 1 {
			t.Fatalf("the unnamed key is not pending deletion (%s, %d pending)", st, pending)
		}
	}
}

func TestList(t *testing.T) {
	s, opts := fake(t)
	ctx := context.Background()
	generate(t, opts, "helseid", jose.ES256, 0)
	generate(t, opts, "helseid-20260101-000000", jose.ES256, 0)
	generate(t, opts, "other", jose.RS256, 2048)
	if _, err := s.AddKey(region, "RSA_2048", "ENCRYPT_DECRYPT", "alias/helseid-encrypt"); err != nil {
		t.Fatal(err)
	}
	infos, err := keystore.List(ctx, aliasURI("helseid"), opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range infos {
		got = append(got, in.URI.String())
		if in.State != "Enabled" || in.Public == nil || len(in.Algs) != 1 || in.Algs[0] != jose.ES256 {
			t.Errorf("%s: %+v", in.URI, in)
		}
	}
	if want := aliasURI("helseid") + " " + aliasURI("helseid-20260101-000000"); strings.Join(got, " ") != want {
		t.Fatalf("listed %v, want %s", got, want)
	}
	all, err := keystore.List(ctx, "awskms:///alias/?region="+region, opts)
	if err != nil || len(all) != 3 {
		t.Fatalf("list all: %d keys (%v), want the 3 signing keys", len(all), err)
	}
}

func TestNoRegion(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")
	_, opts := fake(t)
	_, err := keystore.Open(context.Background(), "awskms:///alias/x", opts)
	if err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Fatalf("open without a region: %v", err)
	}
}

// Without a loopback endpoint the SDK's credential chain runs; with
// nothing configured (and instance metadata off, so nothing leaves this
// machine) the error names every place that was tried.
func TestMissingCredentials(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": dir + "/config", "AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_EC2_METADATA_DISABLED": "true",
		// Should anything try the network anyway, it meets a closed port.
		"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
	} {
		t.Setenv(k, v)
	}
	_, err := keystore.Open(context.Background(), aliasURI("helseid"), keystore.Options{})
	if !errors.Is(err, keystore.ErrPermission) || !strings.Contains(err.Error(), "no AWS credentials found") ||
		!strings.Contains(err.Error(), "AWS_WEB_IDENTITY_TOKEN_FILE") || !strings.Contains(err.Error(), "instance metadata") {
		t.Fatalf("open without credentials: %v", err)
	}
	t.Log(err)
}
