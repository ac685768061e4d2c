package keyimport_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/keyimport"
	"github.com/jwkctl/jwkctl/keystore"
)

var bom = "\xEF\xBB\xBF"

var (
	rsaOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// testRSA returns one of two RSA-2048 keys, generated once per run.
func testRSA(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for range 2 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys[i]
}

func testEC(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// privateJWK marshals key with go-jose, independently of the parser.
func privateJWK(t testing.TB, key any, kid, alg, use string) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: use})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func samePublic(t testing.TB, got crypto.Signer, want crypto.PublicKey) {
	t.Helper()
	if !want.(interface{ Equal(crypto.PublicKey) bool }).Equal(got.Public()) {
		t.Fatal("imported key's public part differs from the source's")
	}
}

// noSecret fails if err quotes any of the secrets.
func noSecret(t testing.TB, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error quotes key material: %v", err)
		}
	}
}

func b64u(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }

func TestParsePrivateJWK(t *testing.T) {
	k := testRSA(t, 0)
	ec := testEC(t, elliptic.P384())
	for name, tc := range map[string]struct {
		data      string
		want      crypto.PublicKey
		alg       jose.SignatureAlgorithm
		kid       string
		warnings  []string
		wantFormt string
	}{
		"RSA with alg and kid":  {privateJWK(t, k, "k1", "PS256", "sig"), &k.PublicKey, jose.PS256, "k1", nil, keyimport.FormatJWK},
		"EC, BOM, CRLF, blanks": {bom + "\r\n  " + privateJWK(t, ec, "", "", "") + "\r\n\r\n", &ec.PublicKey, "", "", nil, keyimport.FormatJWK},
		"use enc warns":         {privateJWK(t, k, "", "", "enc"), &k.PublicKey, "", "", []string{`the JWK says use "enc"`}, keyimport.FormatJWK},
		"key_ops without sign": {strings.Replace(privateJWK(t, ec, "", "", ""), `{`, `{"key_ops":["verify","decrypt"],`, 1),
			&ec.PublicKey, "", "", []string{`key_ops lacks "sign"`}, keyimport.FormatJWK},
		"key_ops with sign": {strings.Replace(privateJWK(t, ec, "", "", ""), `{`, `{"key_ops":["sign"],`, 1), &ec.PublicKey, "", "", nil, keyimport.FormatJWK},
		"percent-encoded":   {url.QueryEscape(privateJWK(t, k, "pk", "RS256", "sig")), &k.PublicKey, jose.RS256, "pk", nil, keyimport.FormatJWK},
		"alg RSA-OAEP warns, not refused": {privateJWK(t, k, "", "RSA-OAEP", "enc"), &k.PublicKey, "", "",
			[]string{`the JWK says use "enc"`, `the key says alg "RSA-OAEP", an encryption algorithm; its alg is left for you to choose`}, keyimport.FormatJWK},
		"JWK Set of one": {`{"keys":[` + privateJWK(t, ec, "only", "ES384", "sig") + `]}`, &ec.PublicKey, jose.ES384, "only", nil, keyimport.FormatJWKSet},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := keyimport.Parse([]byte(tc.data), keyimport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			samePublic(t, p.Private, tc.want)
			if p.Alg != tc.alg || p.Kid != tc.kid || p.Format != tc.wantFormt {
				t.Errorf("alg, kid, format = %q, %q, %q; want %q, %q, %q", p.Alg, p.Kid, p.Format, tc.alg, tc.kid, tc.wantFormt)
			}
			if strings.Join(p.Warnings, "|") != strings.Join(tc.warnings, "|") {
				t.Errorf("warnings = %q, want %q", p.Warnings, tc.warnings)
			}
		})
	}
}

func TestParseFixtures(t *testing.T) {
	for _, name := range []string{"rsa2048.jwk", "p256.jwk", "selvbetjening-style.jwk", "single-key.jwks"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "keys", name))
		if err != nil {
			t.Fatal(err)
		}
		var pub jose.JSONWebKey
		if strings.HasSuffix(name, ".jwks") {
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(data, &set); err != nil {
				t.Fatal(err)
			}
			pub = set.Keys[0]
		} else if err := json.Unmarshal(data, &pub); err != nil {
			t.Fatal(err)
		}
		p, err := keyimport.Parse(data, keyimport.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		samePublic(t, p.Private, pub.Public().Key)
		if p.Kid != pub.KeyID || string(p.Alg) != pub.Algorithm {
			t.Errorf("%s: kid %q alg %q, want %q %q", name, p.Kid, p.Alg, pub.KeyID, pub.Algorithm)
		}
	}
}

func TestParseJWKSetPicksByKid(t *testing.T) {
	a, b := testRSA(t, 0), testEC(t, elliptic.P256())
	set := `{"keys":[` + privateJWK(t, a, "rsa-1", "PS256", "sig") + `,` + privateJWK(t, b, "ec-1", "ES256", "sig") + `]}`

	_, err := keyimport.Parse([]byte(set), keyimport.Options{})
	if !errors.Is(err, keyimport.ErrKid) || !strings.Contains(err.Error(), `"rsa-1", "ec-1"`) {
		t.Fatalf("no kid: %v, want ErrKid listing the kids", err)
	}
	p, err := keyimport.Parse([]byte(set), keyimport.Options{Kid: "ec-1"})
	if err != nil {
		t.Fatal(err)
	}
	samePublic(t, p.Private, &b.PublicKey)
	if p.Kid != "ec-1" || p.Alg != jose.ES256 || p.Format != keyimport.FormatJWKSet {
		t.Errorf("got kid %q alg %q format %q", p.Kid, p.Alg, p.Format)
	}
	_, err = keyimport.Parse([]byte(set), keyimport.Options{Kid: "nope"})
	if !errors.Is(err, keyimport.ErrKid) || !strings.Contains(err.Error(), `"rsa-1", "ec-1"`) {
		t.Fatalf("unknown kid: %v", err)
	}
	ecD, err2 := b.Bytes()
	if err2 != nil {
		t.Fatal(err2)
	}
	noSecret(t, err, b64u(a.D), base64.RawURLEncoding.EncodeToString(ecD))

	// Kid must agree with a single key's kid too, not be ignored.
	if _, err := keyimport.Parse([]byte(privateJWK(t, b, "ec-1", "", "")), keyimport.Options{Kid: "other"}); !errors.Is(err, keyimport.ErrKid) {
		t.Fatalf("single JWK with another kid: %v", err)
	}
	// A set may hold a key jwkctl cannot use, beside the one picked.
	mixed := `{"keys":[{"kty":"oct","kid":"hmac","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"},` + privateJWK(t, b, "ec-1", "", "") + `]}`
	if p, err := keyimport.Parse([]byte(mixed), keyimport.Options{Kid: "ec-1"}); err != nil || p.Kid != "ec-1" {
		t.Fatalf("mixed set: %v", err)
	}
}

// dotNetXML writes k as .NET's RSA.ToXmlString(true) does, from the key's
// own fields.
func dotNetXML(k *rsa.PrivateKey) string {
	b := func(i *big.Int) string { return base64.StdEncoding.EncodeToString(i.Bytes()) }
	e := big.NewInt(int64(k.E))
	dp := new(big.Int).Mod(k.D, new(big.Int).Sub(k.Primes[0], big.NewInt(1)))
	dq := new(big.Int).Mod(k.D, new(big.Int).Sub(k.Primes[1], big.NewInt(1)))
	qinv := new(big.Int).ModInverse(k.Primes[1], k.Primes[0])
	return "<RSAKeyValue><Modulus>" + b(k.N) + "</Modulus><Exponent>" + b(e) + "</Exponent><P>" + b(k.Primes[0]) +
		"</P><Q>" + b(k.Primes[1]) + "</Q><DP>" + b(dp) + "</DP><DQ>" + b(dq) + "</DQ><InverseQ>" + b(qinv) +
		"</InverseQ><D>" + b(k.D) + "</D></RSAKeyValue>"
}

// download builds a HelseID configuration as Selvbetjening offers it;
// set changes members (nil deletes one).
func download(t testing.TB, privateJWK, rsaXML any, set map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"clientName":             "jwkctl test client",
		"authority":              "https://helseid-sts.test.nhn.no",
		"clientId":               "15f46f78-4c0c-4b6c-9f3a-6f1d0c1b2a3e",
		"grantTypes":             []string{"client_credentials"},
		"scopes":                 []string{"nhn:cp-api/access"},
		"redirectUris":           []string{},
		"postLogoutRedirectUris": []string{},
		"secretType":             "private_key_jwt:RsaPrivateKeyJwtSecret",
		"rsaPrivateKey":          rsaXML,
		"rsaKeySizeBits":         2048,
		"privateJwk":             privateJWK,
		"pkceRequired":           false,
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseDownload(t *testing.T) {
	k := testRSA(t, 0)
	ec := testEC(t, elliptic.P256())
	jwk := privateJWK(t, k, "6f46b6b7719444dcba70952d6c9e1953", "RS256", "sig")
	for name, tc := range map[string]struct {
		data []byte
		want crypto.PublicKey
		kid  string
		alg  jose.SignatureAlgorithm
	}{
		"privateJwk string":             {download(t, jwk, nil, nil), &k.PublicKey, "6f46b6b7719444dcba70952d6c9e1953", jose.RS256},
		"with BOM":                      {append([]byte(bom), download(t, jwk, nil, nil)...), &k.PublicKey, "6f46b6b7719444dcba70952d6c9e1953", jose.RS256},
		"privateJwk percent-encoded":    {download(t, url.QueryEscape(jwk), nil, nil), &k.PublicKey, "6f46b6b7719444dcba70952d6c9e1953", jose.RS256},
		"privateJwk path-escaped + BOM": {append([]byte(bom), download(t, url.PathEscape(jwk), nil, nil)...), &k.PublicKey, "6f46b6b7719444dcba70952d6c9e1953", jose.RS256},
		"privateJwk and the same XML":   {download(t, jwk, dotNetXML(k), nil), &k.PublicKey, "6f46b6b7719444dcba70952d6c9e1953", jose.RS256},
		"EC privateJwk":                 {download(t, privateJWK(t, ec, "e", "ES256", "sig"), nil, map[string]any{"rsaKeySizeBits": nil}), &ec.PublicKey, "e", jose.ES256},
		"rsaPrivateKey XML only":        {download(t, nil, dotNetXML(k), nil), &k.PublicKey, "", ""},
		"XML only, empty privateJwk":    {append([]byte(bom), download(t, "", dotNetXML(k), nil)...), &k.PublicKey, "", ""},
		"privateJwk as an object":       {download(t, json.RawMessage(jwk), nil, nil), &k.PublicKey, "6f46b6b7719444dcba70952d6c9e1953", jose.RS256},
		"as System.Text.Json writes it": {dotNetJSON(download(t, sortedJWK(t, k), dotNetXML(k), nil)), &k.PublicKey, "", ""},
		"rsaPrivateKey as PEM": {download(t, nil, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})), nil),
			&k.PublicKey, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			if !keyimport.IsDownload(tc.data) {
				t.Fatal("IsDownload = false")
			}
			d, err := keyimport.ParseDownload(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if d.ClientID != "15f46f78-4c0c-4b6c-9f3a-6f1d0c1b2a3e" || d.Authority != "https://helseid-sts.test.nhn.no" ||
				d.ClientName != "jwkctl test client" || strings.Join(d.Scopes, " ") != "nhn:cp-api/access" ||
				strings.Join(d.GrantTypes, " ") != "client_credentials" || d.SecretType != "private_key_jwt:RsaPrivateKeyJwtSecret" {
				t.Errorf("members: %+v", d)
			}
			samePublic(t, d.Key.Private, tc.want)
			if d.Key.Kid != tc.kid || d.Key.Alg != tc.alg || d.Key.Format != keyimport.FormatDownload {
				t.Errorf("kid %q alg %q format %q", d.Key.Kid, d.Key.Alg, d.Key.Format)
			}
			if len(d.Key.Warnings) != 0 {
				t.Errorf("warnings: %q", d.Key.Warnings)
			}
			p, err := keyimport.Parse(tc.data, keyimport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			samePublic(t, p.Private, tc.want)
			if p.Format != keyimport.FormatDownload || p.Kid != tc.kid {
				t.Errorf("Parse: format %q kid %q", p.Format, p.Kid)
			}
		})
	}
}

// sortedJWK is a private RSA JWK as Selvbetjening's privateJwk holds it:
// members in alphabetical order, no kid, no alg.
func sortedJWK(t testing.TB, k *rsa.PrivateKey) string {
	t.Helper()
	b := func(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }
	k.Precompute()
	m := map[string]string{"kty": "RSA", "n": b(k.N), "e": b(big.NewInt(int64(k.E))), "d": b(k.D), "p": b(k.Primes[0]),
		"q": b(k.Primes[1]), "dp": b(k.Precomputed.Dp), "dq": b(k.Precomputed.Dq), "qi": b(k.Precomputed.Qinv)}
	out, err := json.Marshal(m) // encoding/json sorts map keys
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// dotNetJSON rewrites encoding/json's output the way .NET's
// System.Text.Json escapes strings by default: quotes inside strings as
// \u0022, <, > and + as \u003C, \u003E, \u002B.
func dotNetJSON(b []byte) []byte {
	r := strings.NewReplacer(`\"`, `\u0022`, `\u003c`, `\u003C`, `\u003e`, `\u003E`, `+`, `\u002B`)
	return []byte(r.Replace(string(b)))
}

func TestParseDownloadSizeMismatchWarns(t *testing.T) {
	k := testRSA(t, 0)
	d, err := keyimport.ParseDownload(download(t, privateJWK(t, k, "", "", ""), nil, map[string]any{"rsaKeySizeBits": 4096}))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Key.Warnings) != 1 || !strings.Contains(d.Key.Warnings[0], "rsaKeySizeBits 4096") {
		t.Fatalf("warnings %q", d.Key.Warnings)
	}
}

func TestParseDownloadRejects(t *testing.T) {
	k, other := testRSA(t, 0), testRSA(t, 1)
	jwk := privateJWK(t, k, "", "", "")
	secrets := []string{b64u(k.D), base64.StdEncoding.EncodeToString(k.D.Bytes()), b64u(k.Primes[0])}
	for name, tc := range map[string]struct {
		data []byte
		want error
		says string
	}{
		"no clientId":             {download(t, jwk, nil, map[string]any{"clientId": nil}), keyimport.ErrDownload, "no clientId"},
		"empty clientId":          {download(t, jwk, nil, map[string]any{"clientId": ""}), keyimport.ErrDownload, "no clientId"},
		"privateJwk not JSON":     {download(t, "not json "+b64u(k.D), nil, nil), keyimport.ErrDownload, "privateJwk is not JSON"},
		"privateJwk cut short":    {download(t, jwk[:len(jwk)/2], nil, nil), keyimport.ErrDownload, "privateJwk is not JSON"},
		"both key fields empty":   {download(t, "", "", nil), keyimport.ErrNoPrivateKey, "privateJwk and rsaPrivateKey are empty"},
		"both key fields null":    {download(t, nil, nil, nil), keyimport.ErrNoPrivateKey, "without a private key"},
		"clientId a number":       {download(t, jwk, nil, map[string]any{"clientId": 42}), keyimport.ErrDownload, "clientId is a JSON number, not a string"},
		"scopes a string":         {download(t, jwk, nil, map[string]any{"scopes": "a b"}), keyimport.ErrDownload, "scopes is a JSON string, not a list of strings"},
		"rsaKeySizeBits a string": {download(t, jwk, nil, map[string]any{"rsaKeySizeBits": "4096"}), keyimport.ErrDownload, "rsaKeySizeBits is a JSON string"},
		"privateJwk a number":     {download(t, 7, nil, nil), keyimport.ErrDownload, "privateJwk is a JSON number"},
		"rsaPrivateKey an object": {download(t, nil, map[string]any{"Modulus": "x"}, nil), keyimport.ErrDownload, "rsaPrivateKey is a JSON object"},
		"privateJwk public only":  {download(t, privateJWK(t, &k.PublicKey, "", "", ""), nil, nil), keyimport.ErrPublicKey, "public JWK (kty RSA"},
		"keys disagree":           {download(t, jwk, dotNetXML(other), nil), keyimport.ErrDownload, "hold different keys"},
		"not JSON":                {[]byte(bom + "clientId=1"), keyimport.ErrDownload, "invalid JSON at byte 1"},
		"a JSON array":            {[]byte(`[{"clientId":"x"}]`), keyimport.ErrDownload, "a JSON array where an object is expected"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := keyimport.ParseDownload(tc.data)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("ParseDownload = %v; want %v saying %q", err, tc.want, tc.says)
			}
			noSecret(t, err, secrets...)
			if name == "not JSON" || name == "a JSON array" {
				return
			}
			// Parse tells it is a download and says the same.
			_, err = keyimport.Parse(tc.data, keyimport.Options{})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Parse = %v; want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}

func TestIsDownload(t *testing.T) {
	for data, want := range map[string]bool{
		`{"clientId":"c","privateJwk":null}`:     true,
		bom + `{"clientId":"c","secretType":""}`: true,
		`{"clientId":"c","rsaPrivateKey":"x"}`:   true,
		`{"clientId":"c"}`:                       false,
		`{"privateJwk":"{}"}`:                    false,
		`{"kty":"RSA"}`:                          false,
		`not json`:                               false,
	} {
		if got := keyimport.IsDownload([]byte(data)); got != want {
			t.Errorf("IsDownload(%s) = %v", data, got)
		}
	}
}

func TestParseRejectsJWK(t *testing.T) {
	k := testRSA(t, 0)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		data string
		want error
		says string
	}{
		"public JWK (kty RSA": {privateJWK(t, &k.PublicKey, "", "", ""), keyimport.ErrPublicKey, "public"},
		"oct":                 {`{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}`, keyimport.ErrUnsupportedKey, "symmetric (kty oct) key cannot sign client assertions"},
		"Ed25519": {`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}`,
			keyimport.ErrUnsupportedKey, "Ed25519"},
		"RSA-1024":         {privateJWK(t, small, "", "", ""), keystore.ErrWeakKey, "1024 bits"},
		"alg does not fit": {privateJWK(t, k, "", "ES256", ""), nil, "does not fit"},
		"no kty":           {`{"d":"` + b64u(k.D) + `"}`, keyimport.ErrUnknownFormat, "neither a JWK"},
		"d of wrong type":  {strings.Replace(privateJWK(t, k, "", "", ""), `"d":"`, `"d":7,"x":"`, 1), keyimport.ErrUnknownFormat, "wrong type"},
		"empty set":        {`{"keys":[]}`, keyimport.ErrUnknownFormat, "no keys"},
		"empty":            {bom + "  \n", keyimport.ErrUnknownFormat, "empty"},
		"JWS":              {"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", keyimport.ErrUnknownFormat, "signed JWT"},
		"broken JSON":      {`{"kty":"RSA","d":"` + b64u(k.D) + `"`, keyimport.ErrUnknownFormat, "invalid JSON at byte"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := keyimport.Parse([]byte(tc.data), keyimport.Options{})
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Parse = %v; want %v saying %q", err, tc.want, tc.says)
			}
			noSecret(t, err, b64u(k.D), "nWGxne_9WmC6hEr0", "[]uint8", "c2VjcmV0")
		})
	}
}

// TestParseJWKOnlyJWKs: ParseJWK, for callers whose files are JWKs, takes
// no other format for one.
func TestParseJWKOnlyJWKs(t *testing.T) {
	k := testRSA(t, 0)
	p, err := keyimport.ParseJWK([]byte(bom+privateJWK(t, k, "a", "PS384", "sig")), keyimport.Options{Kid: "a"})
	if err != nil {
		t.Fatal(err)
	}
	samePublic(t, p.Private, &k.PublicKey)
	if p.Format != keyimport.FormatJWK || p.Kid != "a" || p.Alg != jose.PS384 {
		t.Errorf("format %q kid %q alg %q", p.Format, p.Kid, p.Alg)
	}
	for name, data := range map[string][]byte{
		".NET XML": []byte(dotNetXML(k)),
		"download": download(t, privateJWK(t, k, "", "", ""), nil, nil),
		"PEM":      []byte("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"),
	} {
		if _, err := keyimport.ParseJWK(data, keyimport.Options{}); !errors.Is(err, keyimport.ErrUnknownFormat) {
			t.Errorf("%s: %v, want ErrUnknownFormat", name, err)
		}
	}
}

// TestParseUTF16: Windows editors save "Unicode" text as UTF-16 with a
// byte order mark.
func TestParseUTF16(t *testing.T) {
	ec := testEC(t, elliptic.P256())
	text := privateJWK(t, ec, "w", "", "")
	for _, le := range []bool{true, false} {
		data := []byte{0xFE, 0xFF}
		if le {
			data = []byte{0xFF, 0xFE}
		}
		for _, u := range utf16.Encode([]rune(text + "\r\n")) {
			if le {
				data = append(data, byte(u), byte(u>>8))
			} else {
				data = append(data, byte(u>>8), byte(u))
			}
		}
		p, err := keyimport.Parse(data, keyimport.Options{})
		if err != nil {
			t.Fatalf("little-endian %v: %v", le, err)
		}
		samePublic(t, p.Private, &ec.PublicKey)
	}
}

// TestParseRefusesOversizedInput: more than 1 MiB is no key, whatever it
// holds; it is refused before any parsing.
func TestParseRefusesOversizedInput(t *testing.T) {
	big := append([]byte(`{"clientId":"c","privateJwk":"`), make([]byte, 1<<20)...)
	if _, err := keyimport.Parse(big, keyimport.Options{}); !errors.Is(err, keyimport.ErrUnknownFormat) || !strings.Contains(err.Error(), "too much for a key") {
		t.Fatalf("Parse = %v", err)
	}
	if _, err := keyimport.ParseDownload(big); !errors.Is(err, keyimport.ErrDownload) || !strings.Contains(err.Error(), "too much for a Selvbetjening download") {
		t.Fatalf("ParseDownload = %v", err)
	}
}
