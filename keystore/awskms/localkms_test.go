package awskms_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/awskms"
	"github.com/jwkctl/jwkctl/keystore/awskms/localkms"
	"github.com/jwkctl/jwkctl/signer"
	"github.com/jwkctl/jwkctl/signer/signertest"
)

// The backend against local-kms, an AWS KMS emulator jwkctl did not
// write: every key spec, the conformance suite, and the key's life.
func TestLocalKMS(t *testing.T) {
	ep, reg := localkms.Endpoint(t)
	opts := keystore.Options{Endpoint: ep}
	ctx := context.Background()
	uri := func(alias string) string { return "awskms:///alias/" + alias + "?region=" + reg }
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		bits int
	}{
		{"rsa2048", jose.PS256, 2048}, {"rsa4096", jose.RS256, 4096},
		{"p256", jose.ES256, 0}, {"p384", jose.ES384, 0}, {"p521", jose.ES512, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alias := localkms.Unique("jwkctl-test-" + tc.name)
			spec, _ := keystore.SpecFor(tc.alg, tc.bits)
			k, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(uri(alias)), Spec: spec, Options: opts})
			if err != nil {
				t.Fatal(err)
			}
			if tc.bits == 0 {
				signertest.Run(t, k)
			} else {
				signertest.Run(t, pkcs1Only{k})
				pssLongestSalt(t, k)
			}
			// A second generate with the same alias is refused.
			if err := keystore.CheckGenerate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(uri(alias)), Spec: spec, Options: opts}); !errors.Is(err, keystore.ErrExists) {
				t.Fatalf("alias reused: %v", err)
			}
		})
	}
	alias := localkms.Unique("jwkctl-test-life")
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	k, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(uri(alias)), Spec: spec, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	infos, err := keystore.List(ctx, uri(alias), opts)
	if err != nil || len(infos) != 1 || infos[0].State != "Enabled" || infos[0].Public == nil {
		t.Fatalf("list: %+v %v", infos, err)
	}
	sg, _ := signer.New(k, jose.ES256)
	if err := keystore.SetEnabled(ctx, uri(alias), false, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := sg.SignPayload([]byte("x"), jose.ES256); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("sign with a disabled key: %v", err)
	}
	if err := keystore.SetEnabled(ctx, uri(alias), true, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := sg.SignPayload([]byte("x"), jose.ES256); err != nil {
		t.Fatal(err)
	}
	if err := keystore.Delete(ctx, uri(alias), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := sg.SignPayload([]byte("x"), jose.ES256); err == nil {
		t.Fatal("a key pending deletion signed")
	}
	if err := keystore.Delete(ctx, uri(alias), opts); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	// A key for encryption is refused with a clear error.
	c, err := awskms.Dial(ctx, awskms.Target{Endpoint: ep, Region: reg})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	if err != nil {
		t.Fatal(err)
	}
	_, err = keystore.Open(ctx, "awskms:///"+aws.ToString(enc.KeyMetadata.Arn), opts)
	if err == nil || !strings.Contains(err.Error(), "ENCRYPT_DECRYPT key, not SIGN_VERIFY") {
		t.Fatalf("open an encryption key: %v", err)
	}
	if _, err := keystore.Open(ctx, uri(localkms.Unique("jwkctl-test-missing")), opts); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("open a missing alias: %v", err)
	}
}

// local-kms signs RSASSA_PSS_* with the longest salt the key allows, where
// AWS KMS (and RFC 7518 §3.5) use a salt as long as the hash: its PS*
// signatures do not verify as JWS, so PS* is covered by the fake only.
// This notices if a local-kms upgrade changes that.
func pssLongestSalt(t *testing.T, k keystore.Key) {
	t.Helper()
	digest := sha256.Sum256([]byte("pss"))
	sig, err := k.Sign(rand.Reader, digest[:], &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public().(*rsa.PublicKey)
	if rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) != nil {
		t.Fatal("local-kms's PSS signature does not verify at all")
	}
	if rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: 32}) == nil {
		t.Fatal("local-kms now signs PSS with a hash-length salt, as AWS does: run the whole signertest.Run against it")
	}
}

// pkcs1Only is an RSA key restricted to RS*, for local-kms (see
// pssLongestSalt).
type pkcs1Only struct{ keystore.Key }

func (pkcs1Only) Algs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512}
}

func (k pkcs1Only) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if _, ok := opts.(*rsa.PSSOptions); ok {
		return nil, errors.New("PSS is not tested against local-kms")
	}
	return k.Key.Sign(r, digest, opts)
}
