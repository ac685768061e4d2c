package fakekms_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"hash/crc32"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	cloudkms "google.golang.org/api/cloudkms/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/gcpkms"
	"github.com/jwkctl/jwkctl/keystore/gcpkms/fakekms"
)

const (
	ring = "projects/p/locations/europe-north1/keyRings/r"
	key  = "gcpkms://" + ring + "/cryptoKeys/k"
)

var table = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) int64 { return int64(crc32.Checksum(b, table)) }

// official starts a fake and returns Google's generated REST client for
// Cloud KMS pointed at it: what the fake answers is what that client
// reads off the real service's wire.
func official(t *testing.T) (*fakekms.Server, string, *cloudkms.ProjectsLocationsKeyRingsCryptoKeysService) {
	t.Helper()
	s, addr, stop, err := fakekms.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	svc, err := cloudkms.NewService(context.Background(), option.WithEndpoint("http://"+addr+"/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	return s, addr, svc.Projects.Locations.KeyRings.CryptoKeys
}

func statusOf(t *testing.T, err error) (int, string) {
	t.Helper()
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		t.Fatalf("%v is not a googleapi.Error", err)
	}
	return ge.Code, ge.Body
}

// Google's REST client creates keys in the fake, reads their public keys
// and has digests and data signed; the signatures verify with the public
// key by the standard library, and every CRC32C field is present and
// right.
func TestOfficialRESTClient(t *testing.T) {
	_, _, keys := official(t)
	ctx := context.Background()
	for _, tc := range []struct {
		id, alg string
		hash    crypto.Hash
	}{
		{"p256", "EC_SIGN_P256_SHA256", crypto.SHA256},
		{"p384", "EC_SIGN_P384_SHA384", crypto.SHA384},
		{"pss", "RSA_SIGN_PSS_2048_SHA256", crypto.SHA256},
		{"pkcs1", "RSA_SIGN_PKCS1_3072_SHA256", crypto.SHA256},
		{"pss512", "RSA_SIGN_PSS_4096_SHA512", crypto.SHA512},
	} {
		t.Run(tc.id, func(t *testing.T) {
			created, err := keys.Create(ring, &cloudkms.CryptoKey{
				Purpose:         "ASYMMETRIC_SIGN",
				VersionTemplate: &cloudkms.CryptoKeyVersionTemplate{Algorithm: tc.alg, ProtectionLevel: "HSM"},
			}).CryptoKeyId(tc.id).Context(ctx).Do()
			if err != nil {
				t.Fatal(err)
			}
			if created.Name != ring+"/cryptoKeys/"+tc.id || created.Purpose != "ASYMMETRIC_SIGN" || created.VersionTemplate.Algorithm != tc.alg || created.VersionTemplate.ProtectionLevel != "HSM" {
				t.Fatalf("created %+v", created)
			}
			name := created.Name + "/cryptoKeyVersions/1"
			v, err := keys.CryptoKeyVersions.Get(name).Do()
			if err != nil || v.State != "ENABLED" || v.Algorithm != tc.alg || v.ProtectionLevel != "HSM" {
				t.Fatalf("version: %+v %v", v, err)
			}
			pk, err := keys.CryptoKeyVersions.GetPublicKey(name).Do()
			if err != nil {
				t.Fatal(err)
			}
			if pk.Name != name || pk.Algorithm != tc.alg || pk.ProtectionLevel != "HSM" || pk.PemCrc32c == 0 || pk.PemCrc32c != crc([]byte(pk.Pem)) {
				t.Fatalf("public key %+v", pk)
			}
			blk, _ := pem.Decode([]byte(pk.Pem))
			if blk == nil || blk.Type != "PUBLIC KEY" {
				t.Fatalf("PEM %q", pk.Pem)
			}
			pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("header.payload " + tc.id)
			h := tc.hash.New()
			h.Write(msg)
			digest := h.Sum(nil)
			d := &cloudkms.Digest{}
			switch tc.hash {
			case crypto.SHA256:
				d.Sha256 = base64.StdEncoding.EncodeToString(digest)
			case crypto.SHA384:
				d.Sha384 = base64.StdEncoding.EncodeToString(digest)
			case crypto.SHA512:
				d.Sha512 = base64.StdEncoding.EncodeToString(digest)
			}
			verify := func(t *testing.T, resp *cloudkms.AsymmetricSignResponse) {
				t.Helper()
				sig, err := base64.StdEncoding.DecodeString(resp.Signature)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Name != name || resp.ProtectionLevel != "HSM" || resp.SignatureCrc32c != crc(sig) {
					t.Fatalf("sign response %+v", resp)
				}
				switch k := pub.(type) {
				case *ecdsa.PublicKey:
					if !ecdsa.VerifyASN1(k, digest, sig) {
						t.Fatal("ECDSA signature does not verify")
					}
				case *rsa.PublicKey:
					if strings.Contains(tc.alg, "PSS") {
						err = rsa.VerifyPSS(k, tc.hash, digest, sig, &rsa.PSSOptions{SaltLength: tc.hash.Size()})
					} else {
						err = rsa.VerifyPKCS1v15(k, tc.hash, digest, sig)
					}
					if err != nil {
						t.Fatal(err)
					}
				default:
					t.Fatalf("public key %T", pub)
				}
			}
			resp, err := keys.CryptoKeyVersions.AsymmetricSign(name, &cloudkms.AsymmetricSignRequest{Digest: d, DigestCrc32c: crc(digest)}).Do()
			if err != nil {
				t.Fatal(err)
			}
			if !resp.VerifiedDigestCrc32c || resp.VerifiedDataCrc32c {
				t.Fatalf("verified flags %+v", resp)
			}
			verify(t, resp)
			resp, err = keys.CryptoKeyVersions.AsymmetricSign(name, &cloudkms.AsymmetricSignRequest{Data: base64.StdEncoding.EncodeToString(msg), DataCrc32c: crc(msg)}).Do()
			if err != nil {
				t.Fatal(err)
			}
			if !resp.VerifiedDataCrc32c || resp.VerifiedDigestCrc32c {
				t.Fatalf("verified flags %+v", resp)
			}
			verify(t, resp)
			// A digest whose CRC32C does not match is refused.
			_, err = keys.CryptoKeyVersions.AsymmetricSign(name, &cloudkms.AsymmetricSignRequest{Digest: d, DigestCrc32c: crc(digest) + 1}).Do()
			if code, body := statusOf(t, err); code != http.StatusBadRequest || !strings.Contains(body, `"INVALID_ARGUMENT"`) {
				t.Fatalf("wrong digest CRC: %d %s", code, body)
			}
		})
	}
}

// Listing, errors and the fault knobs, as Google's client sees them.
func TestOfficialRESTClientErrorsAndFaults(t *testing.T) {
	s, _, keys := official(t)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := keys.Create(ring, &cloudkms.CryptoKey{Purpose: "ASYMMETRIC_SIGN", VersionTemplate: &cloudkms.CryptoKeyVersionTemplate{Algorithm: "EC_SIGN_P256_SHA256"}}).CryptoKeyId(id).Do(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := keys.Create(ring, &cloudkms.CryptoKey{Purpose: "ASYMMETRIC_SIGN", VersionTemplate: &cloudkms.CryptoKeyVersionTemplate{Algorithm: "EC_SIGN_P256_SHA256"}}).CryptoKeyId("a").Do()
	if code, body := statusOf(t, err); code != http.StatusConflict || !strings.Contains(body, `"ALREADY_EXISTS"`) {
		t.Fatalf("create twice: %d %s", code, body)
	}
	var names []string
	if err := keys.List(ring).PageSize(2).Pages(context.Background(), func(p *cloudkms.ListCryptoKeysResponse) error {
		for _, k := range p.CryptoKeys {
			names = append(names, k.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, " ") != ring+"/cryptoKeys/a "+ring+"/cryptoKeys/b "+ring+"/cryptoKeys/c" {
		t.Fatalf("listed %v", names)
	}
	if _, err := keys.CryptoKeyVersions.Create(ring+"/cryptoKeys/a", &cloudkms.CryptoKeyVersion{}).Do(); err != nil {
		t.Fatal(err)
	}
	vl, err := keys.CryptoKeyVersions.List(ring + "/cryptoKeys/a").Do()
	if err != nil || len(vl.CryptoKeyVersions) != 2 || vl.CryptoKeyVersions[1].Name != ring+"/cryptoKeys/a/cryptoKeyVersions/2" {
		t.Fatalf("versions: %+v %v", vl, err)
	}
	_, err = keys.CryptoKeyVersions.GetPublicKey(ring + "/cryptoKeys/nope/cryptoKeyVersions/1").Do()
	if code, body := statusOf(t, err); code != http.StatusNotFound || !strings.Contains(body, `"NOT_FOUND"`) {
		t.Fatalf("missing key: %d %s", code, body)
	}
	v1 := ring + "/cryptoKeys/a/cryptoKeyVersions/1"
	dis, err := keys.CryptoKeyVersions.Patch(v1, &cloudkms.CryptoKeyVersion{State: "DISABLED"}).UpdateMask("state").Do()
	if err != nil || dis.State != "DISABLED" || dis.Name != v1 {
		t.Fatalf("disable: %+v %v", dis, err)
	}
	digest := sha256.Sum256([]byte("x"))
	signReq := &cloudkms.AsymmetricSignRequest{Digest: &cloudkms.Digest{Sha256: base64.StdEncoding.EncodeToString(digest[:])}, DigestCrc32c: crc(digest[:])}
	_, err = keys.CryptoKeyVersions.AsymmetricSign(v1, signReq).Do()
	if code, body := statusOf(t, err); code != http.StatusBadRequest || !strings.Contains(body, `"FAILED_PRECONDITION"`) {
		t.Fatalf("sign with a disabled version: %d %s", code, body)
	}
	if _, err := keys.CryptoKeyVersions.Patch(v1, &cloudkms.CryptoKeyVersion{State: "ENABLED"}).UpdateMask("state").Do(); err != nil {
		t.Fatal(err)
	}

	before := s.SignRPCs()
	for _, tc := range []struct {
		f     fakekms.Faults
		check func(*cloudkms.AsymmetricSignResponse, *cloudkms.PublicKey) bool
	}{
		{fakekms.Faults{OmitSignatureCRC: true, OmitPEMCRC: true}, func(r *cloudkms.AsymmetricSignResponse, p *cloudkms.PublicKey) bool {
			return r.SignatureCrc32c == 0 && p.PemCrc32c == 0
		}},
		{fakekms.Faults{CorruptSignatureCRC: true, CorruptPEMCRC: true}, func(r *cloudkms.AsymmetricSignResponse, p *cloudkms.PublicKey) bool {
			sig, _ := base64.StdEncoding.DecodeString(r.Signature)
			return r.SignatureCrc32c != 0 && r.SignatureCrc32c != crc(sig) && p.PemCrc32c != 0 && p.PemCrc32c != crc([]byte(p.Pem))
		}},
		{fakekms.Faults{UnverifiedDigest: true}, func(r *cloudkms.AsymmetricSignResponse, _ *cloudkms.PublicKey) bool { return !r.VerifiedDigestCrc32c }},
		{fakekms.Faults{WrongName: true}, func(r *cloudkms.AsymmetricSignResponse, p *cloudkms.PublicKey) bool {
			return r.Name != v1 && p.Name != v1
		}},
	} {
		s.SetFaults(tc.f)
		r, err := keys.CryptoKeyVersions.AsymmetricSign(v1, signReq).Do()
		if err != nil {
			t.Fatal(err)
		}
		p, err := keys.CryptoKeyVersions.GetPublicKey(v1).Do()
		if err != nil {
			t.Fatal(err)
		}
		if !tc.check(r, p) {
			t.Errorf("%+v: %+v %+v", tc.f, r, p)
		}
	}
	for status, code := range map[string]int{"UNAVAILABLE": 503, "PERMISSION_DENIED": 403, "DEADLINE_EXCEEDED": 504, "UNAUTHENTICATED": 401} {
		s.SetFaults(fakekms.Faults{FailWith: status})
		_, err := keys.CryptoKeyVersions.AsymmetricSign(v1, signReq).Do()
		if got, body := statusOf(t, err); got != code || !strings.Contains(body, `"status": "`+status+`"`) && !strings.Contains(body, `"status":"`+status+`"`) {
			t.Errorf("FailWith %s: %d %s", status, got, body)
		}
	}
	if n := s.SignRPCs() - before; n != 8 {
		t.Errorf("SignRPCs counted %d signatures, want 8", n)
	}
	s.SetFaults(fakekms.Faults{Delay: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := keys.CryptoKeyVersions.AsymmetricSign(v1, signReq).Context(ctx).Do(); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("delayed sign: %v after %v", err, time.Since(start))
	}
	s.SetFaults(fakekms.Faults{})
}

// Like Cloud KMS, the fake destroys only ENABLED or DISABLED versions; a
// second destroy is FAILED_PRECONDITION. gcpkms's Delete turns that into
// keystore.ErrNotFound ("already scheduled for destruction"), so a
// resumed retirement does not fail for ever.
func TestDestroyTwice(t *testing.T) {
	gcpkms.PollInterval = time.Millisecond
	s, addr, raw := official(t)
	ctx := context.Background()
	opts := keystore.Options{Endpoint: addr}
	spec, _ := keystore.SpecFor(jose.ES256, 0)
	k, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(key), Spec: spec, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	v1 := k.URI().String()
	name := strings.TrimPrefix(v1, "gcpkms://")
	if _, err := raw.CryptoKeyVersions.Destroy(name, &cloudkms.DestroyCryptoKeyVersionRequest{}).Do(); err != nil {
		t.Fatalf("first destroy: %v", err)
	}
	_, err = raw.CryptoKeyVersions.Destroy(name, &cloudkms.DestroyCryptoKeyVersionRequest{}).Do()
	if code, body := statusOf(t, err); code != http.StatusBadRequest || !strings.Contains(body, "FAILED_PRECONDITION") {
		t.Fatalf("second destroy: %d %s, want FAILED_PRECONDITION", code, body)
	}

	err = keystore.Delete(ctx, v1, opts)
	if !errors.Is(err, keystore.ErrNotFound) || !strings.Contains(err.Error(), "already scheduled for destruction") {
		t.Fatalf("delete of a destroy-scheduled version: %v", err)
	}

	// A disabled version can be destroyed; one still being generated
	// cannot, and that is not "not found".
	k2, err := keystore.Generate(ctx, keystore.GenerateRequest{URI: keystore.MustParse(key), Spec: spec, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.SetEnabled(ctx, k2.URI().String(), false, opts); err != nil {
		t.Fatal(err)
	}
	if err := keystore.Delete(ctx, k2.URI().String(), opts); err != nil {
		t.Fatalf("delete of a disabled version: %v", err)
	}
	s.SetFaults(fakekms.Faults{PendingPolls: 1000})
	v3, err := raw.CryptoKeyVersions.Create(strings.TrimPrefix(key, "gcpkms://"), &cloudkms.CryptoKeyVersion{}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if v3.State != "PENDING_GENERATION" {
		t.Fatalf("new version %+v", v3)
	}
	err = keystore.Delete(ctx, "gcpkms://"+v3.Name, opts)
	if err == nil || errors.Is(err, keystore.ErrNotFound) || !strings.Contains(err.Error(), "PENDING_GENERATION") {
		t.Fatalf("delete of a version still being generated: %v", err)
	}
}
