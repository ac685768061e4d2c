package commands

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
)

// cpScope is the CommunicationParty API's Bearer scope, as in NHN's
// samples for a client_credentials client.
const cpScope = "nhn:cp-api/access"

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64Int(n *big.Int) string { return b64u(n.Bytes()) }

// handRSAJWK writes a private RSA JWK by hand, as Selvbetjening's
// privateJwk holds one, from a key crypto/rsa made: no jwkctl or go-jose
// code involved.
func handRSAJWK(k *rsa.PrivateKey, kid, alg string) string {
	k.Precompute()
	extra := ""
	if alg != "" {
		extra = fmt.Sprintf(`,"alg":%q`, alg)
	}
	return fmt.Sprintf(`{"d":%q,"dp":%q,"dq":%q,"e":%q,"kid":%q,"kty":"RSA","n":%q,"p":%q,"q":%q,"qi":%q%s}`,
		b64Int(k.D), b64Int(k.Precomputed.Dp), b64Int(k.Precomputed.Dq), b64Int(big.NewInt(int64(k.E))), kid,
		b64Int(k.N), b64Int(k.Primes[0]), b64Int(k.Primes[1]), b64Int(k.Precomputed.Qinv), extra)
}

// handECJWK writes a private P-256 JWK by hand.
func handECJWK(t *testing.T, k *ecdsa.PrivateKey, kid string) string {
	t.Helper()
	e, err := k.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	pub := e.PublicKey().Bytes() // 0x04 ‖ x ‖ y
	return fmt.Sprintf(`{"crv":"P-256","d":%q,"kid":%q,"kty":"EC","x":%q,"y":%q}`,
		b64u(e.Bytes()), kid, b64u(pub[1:33]), b64u(pub[33:]))
}

// handDownload is a HelseID configuration as Selvbetjening offers it, with
// privateJwk as given (a JSON value: a string, null…).
func handDownload(authority, clientID, privateJwk string) string {
	return fmt.Sprintf(`{
  "clientName": "Min EPJ – test",
  "authority": %q,
  "clientId": %q,
  "grantTypes": ["client_credentials"],
  "scopes": [%q],
  "redirectUris": [],
  "postLogoutRedirectUris": [],
  "secretType": "private_key_jwt:RsaPrivateKeyJwtSecret",
  "rsaPrivateKey": null,
  "rsaKeySizeBits": 2048,
  "privateJwk": %s,
  "pkceRequired": false
}
`, authority, clientID, cpScope, privateJwk)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// sha1Kid is a kid in the style of NHN's samples: base64 SHA-1-sized.
func sha1Kid(t *testing.T) string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func uuidLike(t *testing.T) string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// publicOf is the public JWK Selvbetjening registers, with kid.
func publicOf(t *testing.T, pub any, kid string) jose.JSONWebKey {
	t.Helper()
	j := jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"}
	if kid == "" {
		tp, err := j.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		j.KeyID = b64u(tp)
	}
	return j
}

// startCPAPI starts a dev STS with a stand-in for the CommunicationParty
// API that needs scope nhn:cp-api/access.
func startCPAPI(t *testing.T) *devsts.Server {
	t.Helper()
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	sts.Handle("GET /cp/communicationparty/{herId}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, aerr := sts.Authorize(r, cpScope)
		if aerr != nil {
			aerr.Write(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"herId":%q,"calledBy":%q,"dpopBound":%v}`, r.PathValue("herId"), c.ClientID, c.JKT != "")
	}))
	return sts
}

// dirState is every file under dir (hidden ones too) with its mode and
// a hash of its content, to show a failed command changed nothing.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameState(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, v := range after {
		if before[p] != v {
			t.Errorf("%s changed or appeared: %q → %q", p, before[p], v)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s disappeared", p)
		}
	}
}

// The seed scenario: a download from Selvbetjening → jwkctl init → token
// and an API call against the dev STS, for RSA and EC keys, with and
// without a BOM, privateJwk as a string and percent-encoded, the kid kept
// or not. A second run changes nothing.
func TestInitFromDownloadThenTokenAndCall(t *testing.T) {
	sts := startCPAPI(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		ec, bom, pct bool
		keepKid      bool
		wantAlg      string
	}{
		{name: "rsa-rs512-kept-kid", keepKid: true, wantAlg: "RS512"},
		{name: "rsa-bom-percent", bom: true, pct: true, wantAlg: "RS512"},
		{name: "ec-bom-kept-kid", ec: true, bom: true, keepKid: true, wantAlg: "ES256"},
		{name: "ec-percent", ec: true, pct: true, wantAlg: "ES256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "jwkctl", "config.yaml")
			t.Setenv("JWKCTL_CONFIG", cfg)
			clientID, dlKid := uuidLike(t), sha1Kid(t)
			var jwk string
			var pub any
			if tc.ec {
				jwk, pub = handECJWK(t, ecKey, dlKid), ecKey.Public()
			} else {
				jwk, pub = handRSAJWK(rsaKey, dlKid, "RS512"), rsaKey.Public()
			}
			field := jwk
			if tc.pct {
				field = url.QueryEscape(jwk)
			}
			doc := handDownload(sts.Issuer(), clientID, jsonString(field))
			if tc.bom {
				doc = "\ufeff" + doc
			}
			from := filepath.Join(dir, "HelseID Configuration "+clientID+".json")
			if err := os.WriteFile(from, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			// Selvbetjening registered the key under the download's kid; a
			// key registered from jwkctl's public JWK carries the thumbprint.
			regKid := ""
			if tc.keepKid {
				regKid = dlKid
			}
			reg := publicOf(t, pub, regKid)
			if err := sts.RegisterClient(clientID, []jose.JSONWebKey{reg}, []string{cpScope}); err != nil {
				t.Fatal(err)
			}
			args := []string{"init", "--from", from, "--profile", "cp", "--check"}
			if tc.keepKid {
				args = append(args, "--keep-kid")
			}
			out, errOut, code := runCLI(t, append(args, "--delete-download")...)
			if code != 0 {
				t.Fatalf("init: exit %d\n%s", code, errOut)
			}
			var printed jose.JSONWebKey
			if err := json.Unmarshal([]byte(out), &printed); err != nil || !printed.IsPublic() || printed.KeyID != reg.KeyID {
				t.Fatalf("init printed %q (%v), want the public JWK with kid %s", out, err, reg.KeyID)
			}
			if !strings.Contains(errOut, "check: "+sts.Issuer()+" issued a Bearer token") || !strings.Contains(errOut, `profile cp is ready (kid `+reg.KeyID+`)`) {
				t.Errorf("init stderr:\n%s", errOut)
			}
			if _, err := os.Stat(from); !os.IsNotExist(err) {
				t.Errorf("the download is still there after --delete-download: %v", err)
			}
			if !strings.Contains(errOut, "no secure erase") {
				t.Errorf("no word that deleting is no secure erase:\n%s", errOut)
			}
			d := jwkMember(t, jwk, "d")
			if strings.Contains(out+errOut, d) {
				t.Fatal("init printed the private key")
			}
			f, err := profile.Load(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p := f.Profiles["cp"]
			if p == nil || p.Issuer != sts.Issuer() || p.ClientID != clientID || strings.Join(p.Scopes, " ") != cpScope ||
				p.Alg != tc.wantAlg || p.DPoP == nil || *p.DPoP || p.Kid != "" || f.Default != "cp" {
				t.Fatalf("profile %+v (default %q)", p, f.Default)
			}
			keyFile := strings.TrimPrefix(p.Key, "file:")
			if filepath.Dir(keyFile) != filepath.Join(filepath.Dir(cfg), "keys") {
				t.Errorf("key %s is not in the keys dir next to the config", p.Key)
			}
			if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v", err)
			}

			out, errOut, code = runCLI(t, "token", "--profile", "cp")
			if code != 0 || !strings.Contains(out, `"token_type": "Bearer"`) {
				t.Fatalf("token --profile cp: exit %d\n%s\n%s", code, out, errOut)
			}
			out, errOut, code = runCLI(t, "call", "--profile", "cp", sts.Issuer()+"/cp/communicationparty/8142987")
			if code != 0 || out != fmt.Sprintf(`{"herId":"8142987","calledBy":%q,"dpopBound":false}`, clientID) {
				t.Fatalf("call: exit %d\n%s\n%s", code, out, errOut)
			}

			// Again, from a fresh copy of the download: nothing changes.
			if err := os.WriteFile(from, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			before := dirState(t, dir)
			if _, _, code = runCLI(t, append(args, "--keep-download", "--delete-download")...); code != ExitUsage {
				t.Errorf("--delete-download with --keep-download: exit %d", code)
			}
			out, errOut, code = runCLI(t, append(args, "--keep-download")...)
			if code != 0 || !strings.Contains(errOut, "already set up") || !strings.Contains(errOut, "nothing changed") {
				t.Fatalf("second init: exit %d\n%s", code, errOut)
			}
			if printed2 := out; printed2 == "" {
				t.Error("second init printed no public JWK")
			}
			sameState(t, before, dirState(t, dir))
		})
	}
}

// jwkMember is one member of a hand-written JWK.
func jwkMember(t *testing.T, jwk, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(jwk), &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[name].(string)
	if s == "" {
		t.Fatalf("no %s in the JWK", name)
	}
	return s
}

// A second run with another key, or with profile values that differ,
// is refused and changes nothing.
func TestInitRefusesOtherKeyOrProfile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	t.Setenv("JWKCTL_CONFIG", cfg)
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clientID := uuidLike(t)
	first := filepath.Join(dir, "first.json")
	os.WriteFile(first, []byte(handDownload("https://helseid-sts.test.nhn.no", clientID, jsonString(handECJWK(t, k1, "k1")))), 0o600)
	if _, errOut, code := runCLI(t, "init", "--from", first, "--profile", "p", "--keep-download"); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	for _, tc := range []struct {
		name, doc string
		extra     []string
		want      string
	}{
		{"another key, same profile", handDownload("https://helseid-sts.test.nhn.no", clientID, jsonString(handECJWK(t, k2, "k2"))), []string{"--profile", "p"}, "already holds another key"},
		{"another key, other profile", handDownload("https://helseid-sts.test.nhn.no", clientID, jsonString(handECJWK(t, k2, "k2"))), []string{"--key", "file:" + filepath.Join(dir, "keys", "p.json"), "--profile", "q"}, "already holds another key"},
		{"same key, other issuer", handDownload("https://helseid-sts.nhn.no", clientID, jsonString(handECJWK(t, k1, "k1"))), []string{"--profile", "p"}, "other issuer than"},
		{"same key, other client", handDownload("https://helseid-sts.test.nhn.no", uuidLike(t), jsonString(handECJWK(t, k1, "k1"))), []string{"--profile", "p"}, "other client_id than"},
		{"same key, kept kid", handDownload("https://helseid-sts.test.nhn.no", clientID, jsonString(handECJWK(t, k1, "k1"))), []string{"--profile", "p", "--keep-kid"}, `recorded with kid`},
		{"other key file, existing profile", handDownload("https://helseid-sts.test.nhn.no", clientID, jsonString(handECJWK(t, k1, "k1"))), []string{"--profile", "p", "--key", "file:" + filepath.Join(dir, "keys", "other.json")}, `already exists`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := filepath.Join(dir, "again.json")
			os.WriteFile(from, []byte(tc.doc), 0o600)
			defer os.Remove(from)
			before := dirState(t, dir)
			args := append([]string{"init", "--from", from, "--keep-download"}, tc.extra...)
			out, errOut, code := runCLI(t, args...)
			if code != 1 || out != "" || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "jwkctl: ") {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			sameState(t, before, dirState(t, dir))
		})
	}
}

// Every malformed download gets one jwkctl: line, exit 1, and leaves the
// directory as it was: no key, no profile, no temp or lock file.
func TestInitBadDownloadsChangeNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	t.Setenv("JWKCTL_CONFIG", cfg)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := jsonString(handECJWK(t, k, "kid-1"))
	auth := "https://helseid-sts.test.nhn.no"
	noClient := strings.Replace(handDownload(auth, "x", good), `"clientId": "x",`, "", 1)
	// A config, a key and a lock file from an earlier init are there too.
	earlier := filepath.Join(t.TempDir(), "earlier.json")
	os.WriteFile(earlier, []byte(handDownload(auth, uuidLike(t), good)), 0o600)
	if _, errOut, code := runCLI(t, "init", "--from", earlier, "--delete-download"); code != 0 {
		t.Fatal(errOut)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"missing clientId", []byte(noClient), "clientId"},
		{"privateJwk not JSON", []byte(handDownload(auth, "c", jsonString("not a jwk"))), "privateJwk is not JSON"},
		{"both key fields empty", []byte(handDownload(auth, "c", "null")), "without a private key"},
		{"privateJwk empty string", []byte(handDownload(auth, "c", `""`)), "without a private key"},
		{"clientId a number", []byte(strings.Replace(handDownload(auth, "c", good), `"clientId": "c"`, `"clientId": 42`, 1)), "clientId is a JSON number"},
		{"scopes a string", []byte(strings.Replace(handDownload(auth, "c", good), `"scopes": ["`+cpScope+`"]`, `"scopes": "`+cpScope+`"`, 1)), "scopes is a JSON string"},
		{"privateJwk a number", []byte(handDownload(auth, "c", "7")), "privateJwk is a JSON number"},
		{"public JWK only", []byte(handDownload(auth, "c", jsonString(`{"kty":"EC","crv":"P-256","x":"`+jwkMember(t, handECJWK(t, k, ""), "x")+`","y":"`+jwkMember(t, handECJWK(t, k, ""), "y")+`"}`))), "public"},
		{"plain http authority", []byte(handDownload("http://sts.example.com", "c", good)), "plain http"},
		{"no authority", []byte(handDownload("", "c", good)), "no authority"},
		{"not JSON", []byte("clientId=abc\n"), "Selvbetjening download"},
		{"a bare private JWK", []byte(handECJWK(t, k, "kid-1")), "holds a bare private JWK, not the HelseID configuration"},
		{"empty", nil, "Selvbetjening download"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := filepath.Join(dir, "download.json")
			if err := os.WriteFile(from, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(from)
			before := dirState(t, dir)
			out, errOut, code := runCLI(t, "init", "--from", from, "--delete-download")
			if code != 1 || out != "" || !strings.HasPrefix(errOut, "jwkctl: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q (want %q)", code, out, errOut, tc.want)
			}
			if strings.Contains(errOut, jwkMember(t, handECJWK(t, k, ""), "d")) {
				t.Fatal("the error shows the private key")
			}
			sameState(t, before, dirState(t, dir))
		})
	}
	for _, special := range []string{"/dev/zero", "fifo", "100 MB"} {
		t.Run(special, func(t *testing.T) {
			path := special
			if special == "100 MB" {
				// A download followed by 100 MB of nothing (a sparse file).
				path = filepath.Join(t.TempDir(), "big.json")
				if err := os.WriteFile(path, []byte(handDownload(auth, uuidLike(t), good)), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(path, 100<<20); err != nil {
					t.Fatal(err)
				}
			}
			if special == "fifo" {
				path = filepath.Join(t.TempDir(), "fifo")
				if err := mkfifo(path); err != nil {
					t.Skip("no FIFOs here:", err)
				}
				go func() {
					w, err := os.OpenFile(path, os.O_WRONLY, 0)
					if err != nil {
						return
					}
					defer w.Close()
					chunk := make([]byte, 64<<10)
					for range 40 {
						if _, err := w.Write(chunk); err != nil {
							return
						}
					}
				}()
			}
			before := dirState(t, dir)
			out, errOut, code := runCLI(t, "init", "--from", path)
			if code != 1 || out != "" || !strings.Contains(errOut, "too much") || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			sameState(t, before, dirState(t, dir))
		})
	}
}

// Cloud KMS cannot take in a key: init says so before anything is made.
func TestInitIntoKMSIsRefused(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "config.yaml"))
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	from := filepath.Join(dir, "d.json")
	os.WriteFile(from, []byte(handDownload("https://helseid-sts.test.nhn.no", "c", jsonString(handECJWK(t, k, "x")))), 0o600)
	before := dirState(t, dir)
	_, errOut, code := runCLI(t, "init", "--from", from, "--key", "gcpkms://projects/p/locations/europe-north1/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1")
	if code != 1 || !strings.Contains(errOut, "cannot be imported") || !strings.Contains(errOut, "jwkctl keys generate") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	sameState(t, before, dirState(t, dir))
}

// handRSAXML writes a key as .NET's RSA.ToXmlString(true) does.
func handRSAXML(k *rsa.PrivateKey) string {
	k.Precompute()
	b := func(n *big.Int) string { return base64.StdEncoding.EncodeToString(n.Bytes()) }
	return "<RSAKeyValue><Modulus>" + b(k.N) + "</Modulus><Exponent>" + b(big.NewInt(int64(k.E))) + "</Exponent><P>" + b(k.Primes[0]) +
		"</P><Q>" + b(k.Primes[1]) + "</Q><DP>" + b(k.Precomputed.Dp) + "</DP><DQ>" + b(k.Precomputed.Dq) + "</DQ><InverseQ>" +
		b(k.Precomputed.Qinv) + "</InverseQ><D>" + b(k.D) + "</D></RSAKeyValue>"
}

// An older download holds the key only as .NET XML in rsaPrivateKey: init
// takes it from there (it has no kid, so there is none to keep). A
// failing --check says the profile is written and why the token failed.
func TestInitFromXMLOnlyDownload(t *testing.T) {
	sts := startCPAPI(t)
	dir := t.TempDir()
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "config.yaml"))
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	clientID := uuidLike(t)
	doc := strings.Replace(handDownload(sts.Issuer(), clientID, "null"), `"rsaPrivateKey": null`, `"rsaPrivateKey": `+jsonString(handRSAXML(k)), 1)
	from := filepath.Join(dir, "xml.json")
	os.WriteFile(from, []byte(doc), 0o600)
	before := dirState(t, dir)
	if _, errOut, code := runCLI(t, "init", "--from", from, "--keep-kid"); code != 1 || !strings.Contains(errOut, "no kid to keep") {
		t.Fatalf("--keep-kid without a kid: %d %s", code, errOut)
	}
	sameState(t, before, dirState(t, dir))

	// Not registered yet: the check fails, and says what is done.
	_, errOut, code := runCLI(t, "init", "--from", from, "--profile", "xml", "--check", "--keep-download")
	if code != 1 || !strings.Contains(errOut, "the profile is written, but the token request failed") || !strings.Contains(errOut, "invalid_client") {
		t.Fatalf("init --check, client unknown: %d %s", code, errOut)
	}
	if err := sts.RegisterClient(clientID, []jose.JSONWebKey{publicOf(t, &k.PublicKey, "")}, []string{cpScope}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "init", "--from", from, "--profile", "xml", "--check", "--keep-download")
	if code != 0 || !strings.Contains(errOut, "already set up") || !strings.Contains(errOut, "issued a Bearer token") {
		t.Fatalf("init --check after registering: %d %s", code, errOut)
	}
	var pub jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &pub); err != nil || pub.Algorithm != "PS256" || pub.KeyID != thumbprintOf(t, &k.PublicKey) {
		t.Errorf("public JWK %s", out)
	}
}

// With --passphrase-file the key file is encrypted, the profile names the
// passphrase file, and the profile signs; the passphrase is never shown.
func TestInitEncryptedKeyFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	t.Setenv("JWKCTL_CONFIG", cfg)
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("init-passphrase-not-shown\n"), 0o600)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	from := filepath.Join(dir, "d.json")
	os.WriteFile(from, []byte(handDownload("https://helseid-sts.test.nhn.no", uuidLike(t), jsonString(handECJWK(t, k, "kid-9")))), 0o600)
	args := []string{"init", "--from", from, "--profile", "enc", "--passphrase-file", pass, "--keep-download", "--keep-kid"}
	out, errOut, code := runCLI(t, args...)
	if code != 0 || strings.Contains(out+errOut, "init-passphrase-not-shown") {
		t.Fatalf("init: %d %s", code, errOut)
	}
	f, err := profile.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Profiles["enc"]
	if p == nil || p.PassphraseFile != pass {
		t.Fatalf("profile %+v", p)
	}
	b, _ := os.ReadFile(strings.TrimPrefix(p.Key, "file:"))
	if strings.Contains(string(b), `"d"`) || strings.Count(string(b), ".") != 4 {
		t.Fatal("the key file is not encrypted")
	}
	out, errOut, code = runCLI(t, "assertion", "--key", p.Key, "--passphrase-file", pass, "--client-id", "c", "--audience", "https://a.example")
	if code != 0 {
		t.Fatal(errOut)
	}
	if kid := headerKidAndVerify(t, out, &k.PublicKey); kid != "kid-9" {
		t.Errorf("kid %q", kid)
	}
	before := dirState(t, dir)
	if _, errOut, code = runCLI(t, args...); code != 0 || !strings.Contains(errOut, "already set up") {
		t.Fatalf("second init: %d %s", code, errOut)
	}
	sameState(t, before, dirState(t, dir))
}

// The profile's dpop entry follows the scopes, and is written even when
// false: HelseID's issuers get DPoP by default, which a Bearer scope such
// as nhn:cp-api/access must not.
func TestInitDPoPFollowsTheScopes(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for scope, want := range map[string]bool{cpScope: false, "nhn:cp-api/access-v2-dpop": true} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "config.yaml")
		t.Setenv("JWKCTL_CONFIG", cfg)
		from := filepath.Join(dir, "d.json")
		doc := strings.Replace(handDownload("https://helseid-sts.test.nhn.no", uuidLike(t), jsonString(handECJWK(t, k, "x"))), cpScope, scope, 1)
		os.WriteFile(from, []byte(doc), 0o600)
		if _, errOut, code := runCLI(t, "init", "--from", from, "--profile", "p", "--keep-download"); code != 0 {
			t.Fatal(errOut)
		}
		f, err := profile.Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if p := f.Profiles["p"]; p.DPoP == nil || *p.DPoP != want || p.WantsDPoP() != want {
			t.Errorf("scope %s: dpop entry %v, want %v", scope, p.DPoP, want)
		}
	}
}

// init adds its profile to an existing config through the profile
// machinery: the user's comments, other profiles and default stay, and the
// file keeps its mode.
func TestInitKeepsTheConfigsComments(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	t.Setenv("JWKCTL_CONFIG", cfg)
	orig := "# my clients\ndefault: other # the one I use most\nprofiles:\n  # the old one\n  other:\n    issuer: https://sts.example\n    client_id: old\n    key: file:keys/old.json\n"
	os.WriteFile(cfg, []byte(orig), 0o640)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	from := filepath.Join(dir, "d.json")
	os.WriteFile(from, []byte(handDownload("https://helseid-sts.test.nhn.no", uuidLike(t), jsonString(handECJWK(t, k, "x")))), 0o600)
	if _, errOut, code := runCLI(t, "init", "--from", from, "--profile", "new", "--keep-download"); code != 0 {
		t.Fatal(errOut)
	}
	b, _ := os.ReadFile(cfg)
	if !strings.HasPrefix(string(b), orig) || !strings.Contains(string(b), "  new:\n") {
		t.Errorf("config now:\n%s", b)
	}
	if fi, _ := os.Stat(cfg); fi.Mode().Perm() != 0o640 {
		t.Errorf("config mode %v", fi.Mode())
	}
}
