package azurekv_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/azurekv"
	"github.com/jwkctl/jwkctl/keystore/azurekv/azurekvtest"
	"github.com/jwkctl/jwkctl/keystore/azurekv/fakeazkv"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/signer/signertest"
)

const vault = "azurekv://jwkctl-test.vault.azure.net/keys"

// backend is the registered azurekv backend, pointed at s for the test.
func backend(t testing.TB, s *fakeazkv.Server) *azurekv.Backend { return azurekvtest.Use(t, s) }

// fake starts a fake vault and points the backend at it through the
// endpoint override.
func fake(t testing.TB) (*fakeazkv.Server, keystore.Options) { return azurekvtest.Start(t) }

func generate(t testing.TB, opts keystore.Options, uri string, alg jose.SignatureAlgorithm, bits int) keystore.Key {
	t.Helper()
	spec, err := keystore.SpecFor(alg, bits)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keystore.Generate(context.Background(), keystore.GenerateRequest{URI: keystore.MustParse(uri), Spec: spec, Options: opts})
	if err != nil {
		t.Fatalf("generate %s: %v", uri, err)
	}
	return k
}

func TestTokenMatchesFake(t *testing.T) {
	if azurekv.LoopbackToken != fakeazkv.Token {
		t.Fatal("the backend's loopback token is not the one the fake accepts")
	}
}

func TestConformance(t *testing.T) {
	_, opts := fake(t)
	hsm := opts
	hsm.ProtectionLevel = "hsm"
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		bits int
		opts keystore.Options
	}{
		{"rsa", jose.PS256, 2048, opts}, {"rsa-hsm", jose.RS256, 3072, hsm},
		{"p256", jose.ES256, 0, opts}, {"p384", jose.ES384, 0, hsm}, {"p521", jose.ES512, 0, opts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := generate(t, tc.opts, vault+"/"+tc.name, tc.alg, tc.bits)
			u := k.URI().AzureKV
			if u == nil || u.Key != tc.name || len(u.Version) != 32 || !strings.HasPrefix(k.URI().String(), vault+"/"+tc.name+"/") {
				t.Fatalf("URI %s", k.URI())
			}
			if got := k.(keystore.AlgRecorder).RecordedAlg(); got != tc.alg {
				t.Errorf("recorded alg %q, want %s", got, tc.alg)
			}
			signertest.Run(t, k)
			// Opened again by its URI, it is the same key.
			again, err := keystore.Open(context.Background(), k.URI().String(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := mustKid(t, k), mustKid(t, again); a != b {
				t.Fatalf("reopened key has kid %s, generated %s", b, a)
			}
		})
	}
}

func mustKid(t testing.TB, k crypto.Signer) string {
	t.Helper()
	kid, err := signer.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// Key Vault returns ECDSA signatures as r‖s: SignConcat hands them over
// as they are, and Sign converts them to DER once, as crypto.Signer wants.
func TestECDSAForms(t *testing.T) {
	_, opts := fake(t)
	k := generate(t, opts, vault+"/forms", jose.ES384, 0)
	digest := sha512384(t, "message")
	concat, err := k.(keystore.ConcatSigner).SignConcat(digest, crypto.SHA384)
	if err != nil || len(concat) != 96 {
		t.Fatalf("SignConcat: %d bytes, %v", len(concat), err)
	}
	der, err := k.Sign(rand.Reader, digest, crypto.SHA384)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), digest, der) {
		t.Fatal("Sign did not return a DER signature that verifies")
	}
	// Key Vault signs a P-384 key only with SHA-384.
	d256 := sha256.Sum256([]byte("x"))
	if _, err := k.Sign(rand.Reader, d256[:], crypto.SHA256); err == nil || !strings.Contains(err.Error(), "SHA-384") {
		t.Fatalf("SHA-256 digest on P-384: %v", err)
	}
}

func sha512384(t *testing.T, s string) []byte {
	t.Helper()
	h := crypto.SHA384.New()
	h.Write([]byte(s))
	return h.Sum(nil)
}

// One GetKey when a key is opened, then exactly one Sign request per JWS
// and no other request.
func TestOneSignPerJWS(t *testing.T) {
	s, opts := fake(t)
	k := generate(t, opts, vault+"/count", jose.ES256, 0)
	gets := s.Count("get")
	opened, err := keystore.Open(context.Background(), k.URI().String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Count("get") - gets; n != 1 {
		t.Fatalf("Open made %d GetKey calls, want 1", n)
	}
	sg, err := signer.New(opened, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	before, signs := s.Requests(), s.Count("sign")
	for range 5 {
		if _, err := sg.SignPayload([]byte("x"), jose.ES256); err != nil {
			t.Fatal(err)
		}
	}
	if all, sign := s.Requests()-before, s.Count("sign")-signs; all != 5 || sign != 5 {
		t.Fatalf("5 JWS made %d requests (%d Sign), want exactly 5", all, sign)
	}
	if n := s.Count("get") - gets; n != 1 {
		t.Fatalf("signing read the key again: %d GetKey calls in all", n)
	}
}

// Requests to a real vault name go through Key Vault's challenge: the
// first request without a token, answered 401 with the tenant and
// resource, then with the token; later requests carry it at once.
func TestChallengeFlow(t *testing.T) {
	s, err := fakeazkv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := backend(t, s)
	var scopes []string
	b.Credential = func() (azcore.TokenCredential, error) {
		return tokenFunc(func(o policy.TokenRequestOptions) (azcore.AccessToken, error) {
			scopes = o.Scopes
			return azcore.AccessToken{Token: fakeazkv.Token, ExpiresOn: time.Now().Add(time.Hour)}, nil
		}), nil
	}
	k := generate(t, keystore.Options{}, vault+"/challenged", jose.ES256, 0)
	sg, _ := signer.New(k, jose.ES256)
	for range 3 {
		if _, err := sg.SignPayload([]byte("x"), jose.ES256); err != nil {
			t.Fatal(err)
		}
	}
	if s.Challenges() != 1 {
		t.Fatalf("%d challenges, want 1 (the first request)", s.Challenges())
	}
	if len(scopes) != 1 || scopes[0] != "https://vault.azure.net/.default" {
		t.Fatalf("token scopes %v", scopes)
	}
}

type tokenFunc func(policy.TokenRequestOptions) (azcore.AccessToken, error)

func (f tokenFunc) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return f(o)
}

func TestFaults(t *testing.T) {
	s, opts := fake(t)
	k := generate(t, opts, vault+"/faults", jose.PS256, 2048)
	uri := k.URI().String()
	if err := s.AddKey("encrypt-only", "RSA", []string{"encrypt", "decrypt"}); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("payload"))
	pss := &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}
	for _, tc := range []struct {
		name   string
		faults fakeazkv.Faults
		open   bool // the check is at Open (GetKey), not Sign
		uri    string
		want   string
		is     error
	}{
		{"throttled then served", fakeazkv.Faults{Throttle: 2, RetryAfter: time.Millisecond}, false, uri, "", nil},
		{"throttled for good", fakeazkv.Faults{Throttle: 100, RetryAfter: time.Millisecond}, false, uri, "throttling requests (429", nil},
		{"no sign permission", fakeazkv.Faults{Forbid: "sign"}, false, uri, "Microsoft.KeyVault/vaults/keys/sign/action", keystore.ErrPermission},
		{"no read permission", fakeazkv.Faults{Forbid: "get"}, true, uri, "Microsoft.KeyVault/vaults/keys/read", keystore.ErrPermission},
		{"answer about another key on sign", fakeazkv.Faults{WrongKID: true}, false, uri, "answered about", nil},
		{"answer about another key on open", fakeazkv.Faults{WrongKID: true}, true, uri, "answered about", nil},
		{"not found", fakeazkv.Faults{}, true, vault + "/nope", "does not exist", keystore.ErrNotFound},
		{"key that may not sign", fakeazkv.Faults{}, true, vault + "/encrypt-only", "may not sign (its key_ops are encrypt, decrypt)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.SetFaults(fakeazkv.Faults{})
			key, err := keystore.Open(context.Background(), uri, opts)
			if err != nil {
				t.Fatal(err)
			}
			s.SetFaults(tc.faults)
			defer s.SetFaults(fakeazkv.Faults{})
			signs := s.Count("sign")
			if tc.open {
				_, err = keystore.Open(context.Background(), tc.uri, opts)
			} else {
				var sig []byte
				sig, err = key.Sign(rand.Reader, digest[:], pss)
				if err == nil && rsa.VerifyPSS(key.Public().(*rsa.PublicKey), crypto.SHA256, digest[:], sig, pss) != nil {
					t.Fatal("signature does not verify")
				}
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if n := s.Count("sign") - signs; n != 3 {
					t.Fatalf("%d Sign requests, want 3 (two throttled, one served)", n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
			t.Log(err)
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has more than one line: %q", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v does not wrap %v", err, tc.is)
			}
			if tc.faults.Throttle == 100 {
				if n := s.Count("sign") - signs; n != 4 {
					t.Errorf("%d Sign requests for a throttled signature, want 4 (1 + 3 retries)", n)
				}
			}
		})
	}
}

func TestDisableEnableListDelete(t *testing.T) {
	s, opts := fake(t)
	var logs bytes.Buffer
	opts.Log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()
	k := generate(t, opts, vault+"/a", jose.ES256, 0)
	generate(t, opts, vault+"/b", jose.PS256, 2048)
	generate(t, opts, vault+"/c", jose.ES384, 0)
	sg, _ := signer.New(k, jose.ES256)
	uri := k.URI().String()

	if err := keystore.SetEnabled(ctx, uri, false, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := sg.SignPayload([]byte("x"), jose.ES256); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("signing with a disabled key: %v", err)
	}
	if _, err := keystore.Open(ctx, uri, opts); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("opening a disabled key: %v", err)
	}
	// Three keys, listed over two pages.
	infos, err := keystore.List(ctx, "azurekv://jwkctl-test.vault.azure.net", opts)
	if err != nil || len(infos) != 3 {
		t.Fatalf("list: %v %+v", err, infos)
	}
	if infos[0].State != "DISABLED" || infos[1].State != "ENABLED" || infos[1].Public == nil || infos[2].Public == nil {
		t.Fatalf("list states: %+v", infos)
	}
	if err := keystore.SetEnabled(ctx, uri, true, opts); err != nil {
		t.Fatal(err)
	}
	signertest.RunAlgs(t, k, jose.ES256)

	// A second version (made outside jwkctl) keeps a version URI from
	// deleting the whole key.
	if err := s.AddKey("a", "EC", []string{"sign", "verify"}); err != nil {
		t.Fatal(err)
	}
	if err := keystore.Delete(ctx, uri, opts); err == nil || !strings.Contains(err.Error(), "other version") {
		t.Fatalf("delete one version of two: %v", err)
	}
	if infos, err := keystore.List(ctx, vault+"/a", opts); err != nil || len(infos) != 2 {
		t.Fatalf("versions of a: %v %+v", err, infos)
	}
	if err := keystore.Delete(ctx, vault+"/a", opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "recoverable until") || !strings.Contains(logs.String(), "90 days of soft delete") {
		t.Fatalf("delete did not say until when the key is recoverable: %s", logs.String())
	}
	if _, err := keystore.Open(ctx, uri, opts); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("open after delete: %v", err)
	}
	// The deleted name is still taken until purged.
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	_, err = keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(vault + "/a"), Spec: spec, Options: opts})
	if !errors.Is(err, keystore.ErrExists) || !strings.Contains(err.Error(), "recoverable") {
		t.Fatalf("generate on a soft-deleted name: %v", err)
	}
}

// Generate never adds a version to an existing key, refuses what Key
// Vault cannot make, and CheckGenerate refuses the same before anything
// is created.
func TestGenerateRefusals(t *testing.T) {
	s, opts := fake(t)
	ctx := context.Background()
	k := generate(t, opts, vault+"/taken", jose.ES256, 0)
	es256, _ := keystore.SpecFor(jose.ES256, 0)
	soft, bogus := opts, opts
	soft.ProtectionLevel, bogus.ProtectionLevel = "software", "titanium"
	disabled := generate(t, opts, vault+"/off", jose.ES256, 0)
	if err := keystore.SetEnabled(ctx, disabled.URI().String(), false, opts); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		uri  string
		opts keystore.Options
		want string
	}{
		{"name taken", vault + "/taken", opts, "already exists"},
		{"name taken by a disabled key", vault + "/off", opts, "already exists"},
		{"version given", k.URI().String(), opts, "without a version"},
		{"no key name", vault, opts, "name the key"},
		{"software on Managed HSM", "azurekv://jwkctl-hsm.managedhsm.azure.net/keys/x", soft, "always HSM keys"},
		{"unknown protection", vault + "/x", bogus, "software or hsm"},
		{"not a vault host", "azurekv://example.com/keys/x", keystore.Options{}, "not a Key Vault host"},
		{"remote endpoint override", vault + "/x", keystore.Options{Endpoint: "https://evil.example:443"}, "only a loopback https address"},
		{"plain http override", vault + "/x", keystore.Options{Endpoint: "http://127.0.0.1:1"}, "only a loopback https address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creates := s.Count("create")
			req := keystore.GenerateRequest{URI: keystore.MustParse(tc.uri), Spec: es256, Options: tc.opts}
			if err := keystore.CheckGenerate(ctx, req); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckGenerate: %v, want %q", err, tc.want)
			}
			if _, err := keystore.Generate(ctx, req); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Generate: %v, want %q", err, tc.want)
			}
			if s.Count("create") != creates {
				t.Fatal("a refused generate reached CreateKey")
			}
		})
	}
	if infos, err := keystore.List(ctx, vault+"/taken", opts); err != nil || len(infos) != 1 {
		t.Fatalf("versions after refused generates: %d (%v), want 1", len(infos), err)
	}
}

// Without credentials, DefaultAzureCredential's long message becomes one
// line naming every source it tried.
func TestMissingCredentials(t *testing.T) {
	s, err := fakeazkv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	backend(t, s)
	// Only the developer tools, none of them installed: quick and the
	// same on every machine.
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "dev")
	t.Setenv("PATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	_, err = keystore.Open(context.Background(), vault+"/k", keystore.Options{})
	if !errors.Is(err, keystore.ErrPermission) {
		t.Fatalf("open without credentials: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"no Azure token", "DefaultAzureCredential tried", "AzureCLICredential", "AzureDeveloperCLICredential"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Fatalf("error has more than one line: %q", msg)
	}
	t.Log(msg)
}

func TestMain(m *testing.M) {
	// The SDK's IMDS probe and CLI credentials must never see a real
	// identity from the machine running the tests.
	for _, v := range []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"} {
		os.Unsetenv(v)
	}
	os.Exit(m.Run())
}

// A token the vault does not accept (another tenant, another resource)
// and a Managed HSM refusing a request: each says what is wrong in terms
// of the service asked.
func TestRealHostRefusals(t *testing.T) {
	s, err := fakeazkv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := backend(t, s)
	token := fakeazkv.Token
	b.Credential = func() (azcore.TokenCredential, error) {
		return tokenFunc(func(policy.TokenRequestOptions) (azcore.AccessToken, error) {
			return azcore.AccessToken{Token: token, ExpiresOn: time.Now().Add(time.Hour)}, nil
		}), nil
	}
	const hsm = "azurekv://jwkctl-hsm.managedhsm.azure.net/keys"
	k := generate(t, keystore.Options{}, hsm+"/h", jose.ES256, 0)
	s.SetFaults(fakeazkv.Faults{Forbid: "sign"})
	_, err = k.Sign(rand.Reader, sha256Digest("x"), crypto.SHA256)
	s.SetFaults(fakeazkv.Faults{})
	if !errors.Is(err, keystore.ErrPermission) || !strings.Contains(err.Error(), "Microsoft.KeyVault/managedHsm/keys/sign/action (Managed HSM local RBAC") {
		t.Fatalf("Managed HSM without sign permission: %v", err)
	}
	b.Reset()
	token = "a-token-for-another-tenant"
	_, err = keystore.Open(context.Background(), k.URI().String(), keystore.Options{})
	if !errors.Is(err, keystore.ErrPermission) || !strings.Contains(err.Error(), "did not accept the token") {
		t.Fatalf("wrong token: %v", err)
	}
}

func sha256Digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}
