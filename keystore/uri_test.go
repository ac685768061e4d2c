package keystore_test

import (
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/jwkctl/jwkctl/keystore"
)

func TestParseFile(t *testing.T) {
	tests := []struct{ in, path, str string }{
		{"file:keys/client.json", "keys/client.json", "file:keys/client.json"},
		{"file:///etc/jwkctl/k.json", "/etc/jwkctl/k.json", "file:///etc/jwkctl/k.json"},
		{"file://localhost/etc/k.json", "/etc/k.json", "file:///etc/k.json"},
		{"file:/abs/k.json", "/abs/k.json", "file:///abs/k.json"},
		{"file:my%20keys/k.json", "my keys/k.json", "file:my%20keys/k.json"},
		{"FILE:k.json", "k.json", "file:k.json"},
		{"file:keys/", "keys/", "file:keys/"},
	}
	for _, tt := range tests {
		u, err := keystore.Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if u.Scheme != "file" || u.Path != tt.path || u.String() != tt.str {
			t.Errorf("Parse(%q) = %s %q %q, want path %q string %q", tt.in, u.Scheme, u.Path, u.String(), tt.path, tt.str)
		}
	}
}

func TestParsePKCS11(t *testing.T) {
	u, err := keystore.Parse("pkcs11:token=My%20Token;object=helseid;id=%01%02%ff;serial=abc123;slot-id=3?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:HSM_PIN")
	if err != nil {
		t.Fatal(err)
	}
	a := u.PKCS11
	if a.Token != "My Token" || a.Object != "helseid" || !a.HasID || string(a.ID) != "\x01\x02\xff" ||
		a.Serial != "abc123" || a.SlotID == nil || *a.SlotID != 3 ||
		a.ModulePath != "/usr/lib/softhsm/libsofthsm2.so" || a.PinSource != "env:HSM_PIN" {
		t.Fatalf("attrs = %+v", a)
	}
	want := "pkcs11:token=My%20Token;serial=abc123;slot-id=3;object=helseid;id=%01%02%FF?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:HSM_PIN"
	if u.String() != want {
		t.Errorf("String() = %s\nwant       %s", u, want)
	}
	// RFC 7512 §3.3 examples parse.
	for _, ex := range []string{
		"pkcs11:",
		"pkcs11:object=my-pubkey;type=public",
		"pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
		"pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
		"pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
		"pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
		"pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
		"pkcs11:slot-description=Sun%20Metaslot",
		"pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23",
		"pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
		"pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert",
		"pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b",
	} {
		_, err := keystore.Parse(ex)
		// The last example uses vendor attributes without the x- prefix our
		// parser requires; everything else must parse.
		if strings.Contains(ex, "vendor-aaa") {
			if err == nil {
				t.Errorf("unprefixed vendor attribute accepted: %s", ex)
			}
			continue
		}
		if err != nil {
			t.Errorf("RFC 7512 example %q: %v", ex, err)
		}
	}
}

func TestPinValueNeverPrinted(t *testing.T) {
	const pin = "s3cr3t-PIN-1234"
	u, err := keystore.Parse("pkcs11:token=t;object=o?pin-value=" + pin)
	if err != nil {
		t.Fatal(err)
	}
	if u.PKCS11.PinValue != pin {
		t.Fatalf("pin-value not parsed")
	}
	if strings.Contains(u.String(), pin) || !strings.Contains(u.String(), "pin-value=REDACTED") {
		t.Fatalf("String() = %s", u)
	}
	for _, bad := range []string{
		"pkcs11:token=t;bogus=1?pin-value=" + pin,
		"pkcs11:token=t?pin-value=" + pin + "&pin-value=" + pin,
		"pkcs11:token=t?pin-value=" + pin + "&pin-source=env:X",
		"pkcs11:token=t?pin-value=" + pin + "&module-path=%zz",
		"pkcs11:token=t?pin-value" + pin,
	} {
		_, err := keystore.Parse(bad)
		if err == nil {
			t.Errorf("accepted %q", bad)
			continue
		}
		if strings.Contains(err.Error(), pin) {
			t.Errorf("error reveals the PIN: %v", err)
		}
	}
}

func TestParseGCPKMS(t *testing.T) {
	const key = "projects/p-1/locations/europe-north1/keyRings/ring/cryptoKeys/helseid"
	u, err := keystore.Parse("gcpkms://" + key + "/cryptoKeyVersions/3")
	if err != nil {
		t.Fatal(err)
	}
	n := u.GCPKMS
	if n.Project != "p-1" || n.Location != "europe-north1" || n.KeyRing != "ring" || n.CryptoKey != "helseid" || n.Version != "3" {
		t.Fatalf("%+v", n)
	}
	if n.KeyName() != key || n.VersionName() != key+"/cryptoKeyVersions/3" || u.String() != "gcpkms://"+key+"/cryptoKeyVersions/3" {
		t.Errorf("names: %s %s %s", n.KeyName(), n.VersionName(), u)
	}
	u, err = keystore.Parse("gcpkms://" + key)
	if err != nil || u.GCPKMS.Version != "" || u.GCPKMS.VersionName() != "" {
		t.Errorf("key without version: %v %+v", err, u)
	}
	u, err = keystore.Parse("gcpkms://projects/p/locations/l/keyRings/r")
	if err != nil || u.GCPKMS.KeyName() != "" || u.GCPKMS.Name() != "projects/p/locations/l/keyRings/r" {
		t.Errorf("key ring: %v %+v", err, u)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"", "keys/client.json", "C:\\keys\\k.json", "http://example.com/k.json",
		"file:", "file://", "file:///", "file://evil.example/k.json", "file:k.json?x=1", "file:%zz",
		"pkcs11:token=a;token=b", "pkcs11:type=secret", "pkcs11:slot-id=x", "pkcs11:=v", "pkcs11:token=t#frag",
		"pkcs11:?pin-source=ftp:x", "pkcs11:?pin-source=env:",
		"gcpkms:projects/p", "gcpkms://projects/p/locations/l", "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/x",
		"gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/extra",
	} {
		_, err := keystore.Parse(in)
		if !errors.Is(err, keystore.ErrBadURI) {
			t.Errorf("Parse(%q) = %v, want ErrBadURI", in, err)
		}
	}
	_, err := keystore.Parse("keys/client.json")
	if err == nil || !strings.Contains(err.Error(), "did you mean file:keys/client.json") {
		t.Errorf("no scheme hint: %v", err)
	}
}

// FuzzParse: no input panics; anything accepted prints to a URI that parses
// back to the same value (pin-value aside, which prints redacted); a
// pin-value never shows in String() or in an error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"file:keys/a.json", "file:///a/b.json", "pkcs11:token=t;object=o;id=%01?module-path=/x.so&pin-source=env:P",
		"pkcs11:token=t?pin-value=1234", "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
		"pkcs11:x-vendor=1?x-q=2", "file:a%3Ab",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := keystore.Parse(s)
		if err != nil {
			if !errors.Is(err, keystore.ErrBadURI) {
				t.Fatalf("error does not wrap ErrBadURI: %v", err)
			}
			return
		}
		pin := ""
		if u.PKCS11 != nil {
			pin = u.PKCS11.PinValue
		}
		out := u.String()
		if pin != "" && len(pin) > 3 && strings.Contains(out, pin) && !strings.Contains("pin-value=REDACTED", pin) {
			t.Fatalf("String() %q reveals pin %q", out, pin)
		}
		v, err := keystore.Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) ok but Parse(String() = %q): %v", s, out, err)
		}
		if v.PKCS11 != nil && pin != "" {
			v.PKCS11.PinValue = pin
		}
		if !reflect.DeepEqual(u, v) {
			t.Fatalf("round trip changed the URI:\n%q → %#v\n%q → %#v", s, u, out, v)
		}
	})
}

// Text that is not a key URI never comes back in an error with its
// pin-value.
func TestUnparsedPINValueMasked(t *testing.T) {
	for _, in := range []string{"token=T;object=k?pin-value=123456", "C:\\keys?pin-value=123456&x=1", "a:pin-value=123456"} {
		_, err := keystore.Parse(in)
		if err == nil {
			t.Fatalf("%q parsed", in)
		}
		if strings.Contains(err.Error(), "123456") {
			t.Errorf("Parse(%q): %v", in, err)
		}
	}
}

func TestParseAzureKV(t *testing.T) {
	for _, tc := range []struct{ in, host, key, version, str, kind string }{
		{"azurekv://myvault.vault.azure.net/keys/helseid", "myvault.vault.azure.net", "helseid", "", "azurekv://myvault.vault.azure.net/keys/helseid", "vault"},
		{"AZUREKV://MyVault.Vault.Azure.Net/keys/HelseID/0123456789abcdef0123456789abcdef", "myvault.vault.azure.net", "HelseID", "0123456789abcdef0123456789abcdef",
			"azurekv://myvault.vault.azure.net/keys/HelseID/0123456789abcdef0123456789abcdef", "vault"},
		{"azurekv://my-hsm.managedhsm.azure.net/keys/k-1/", "my-hsm.managedhsm.azure.net", "k-1", "", "azurekv://my-hsm.managedhsm.azure.net/keys/k-1", "managedhsm"},
		{"azurekv://myvault.vault.azure.net", "myvault.vault.azure.net", "", "", "azurekv://myvault.vault.azure.net/keys", "vault"},
		{"azurekv://myvault.vault.azure.net/keys", "myvault.vault.azure.net", "", "", "azurekv://myvault.vault.azure.net/keys", "vault"},
		{"azurekv://127.0.0.1:8443/keys/k", "127.0.0.1:8443", "k", "", "azurekv://127.0.0.1:8443/keys/k", ""},
		{"azurekv://example.com/keys/k", "example.com", "k", "", "azurekv://example.com/keys/k", ""},
		{"azurekv://x.vault.azure.net/keys/k", "x.vault.azure.net", "k", "", "azurekv://x.vault.azure.net/keys/k", ""}, // vault names have 3 or more characters
		{"azurekv://vault.azure.net.evil.example/keys/k", "vault.azure.net.evil.example", "k", "", "azurekv://vault.azure.net.evil.example/keys/k", ""},
	} {
		u, err := keystore.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		a := u.AzureKV
		if u.Scheme != keystore.SchemeAzureKV || a.Host != tc.host || a.Key != tc.key || a.Version != tc.version || u.String() != tc.str || a.Kind() != tc.kind {
			t.Errorf("Parse(%q) = %+v %q kind %q", tc.in, a, u, a.Kind())
		}
		if back, err := keystore.Parse(u.String()); err != nil || back.String() != u.String() {
			t.Errorf("%s does not parse back: %v", u, err)
		}
	}
	for _, bad := range []string{
		"azurekv:myvault.vault.azure.net/keys/k",
		"azurekv://myvault.vault.azure.net/secrets/k",
		"azurekv://myvault.vault.azure.net/keys/under_score",
		"azurekv://myvault.vault.azure.net/keys/k/v/sign",
		"azurekv://myvault.vault.azure.net/keys/k?api-version=7.4",
		"azurekv://user@myvault.vault.azure.net/keys/k",
		"azurekv://.vault.azure.net/keys/k",
		"azurekv:///keys/k",
	} {
		if _, err := keystore.Parse(bad); !errors.Is(err, keystore.ErrBadURI) {
			t.Errorf("Parse(%q) = %v, want ErrBadURI", bad, err)
		}
	}
}

// Every scheme, and text with none, keeps the value after pin-value out
// of its error, whatever ends the value and however the name is spelt.
func TestParseErrorsHidePIN(t *testing.T) {
	// TAIL is what follows a character that ends a pkcs11 attribute; it
	// may be PIN too.
	const pin, tail = "SECR", "TAIL"
	for _, in := range []string{
		"file:/tmp/x?pin-value=" + pin + "56",
		"file:///tmp/x#pin-value=" + pin + "56",
		"file://h?pin-value=" + pin + "/x",
		"gcpkms://projects/p?pin-value=" + pin + "56",
		"token=a?pin-value=" + pin + "#" + tail,
		"token=a?pin-value=" + pin + ";" + tail,
		"token=a?pin-value=" + pin + "?" + tail,
		"token=a?PIN-VALUE=" + pin + "&x",
		"token=a?pin%2Dvalue=" + pin + "&x",
		"token=a?pin-value%3D" + pin + "&x",
		"pin-value=" + pin + ":x",
		"pkcs11:slot-id=pin-value=" + pin,
		"pkcs11:token=t?x-a=1&pin-value?" + pin + "=1",
		"C:\\keys?pin-value=" + pin + "?x",
		"awskms://pin-value=" + pin + "/alias/k",
		"awskms:///alias/k?region=pin-value=" + pin,
		"awskms:///alias/pin-value=" + pin + "?region=eu-north-1",
		"awskms:///pin-value%3D" + pin,
		"azurekv://v1.vault.azure.net/keys/k?pin-value=" + pin + "56",
		"azurekv://pin-value=" + pin + "/keys/k",
		"azurekv://v1.vault.azure.net/keys/pin-value=" + pin,
	} {
		_, err := keystore.Parse(in)
		if !errors.Is(err, keystore.ErrBadURI) {
			t.Errorf("Parse(%q) = %v, want ErrBadURI", in, err)
			continue
		}
		if strings.Contains(err.Error(), pin) || strings.Contains(err.Error(), tail) {
			t.Errorf("Parse(%q) reveals the PIN: %v", in, err)
		}
	}
}

func TestMaskPINValue(t *testing.T) {
	for in, want := range map[string]string{
		"pkcs11:token=t?pin-value=1#2&module-path=/m.so": "pkcs11:token=t?pin-value=REDACTED",
		"x?PIN%2dVALUE%3d1234":                           "x?PIN%2dVALUE=REDACTED",
		"%70in-value=1":                                  "%70in-value=REDACTED",
		"pkcs11:token=t?pin-source=file:/p":              "pkcs11:token=t?pin-source=file:/p",
		"pin-valu=1":                                     "pin-valu=1",
		"pin-value":                                      "pin-value",
	} {
		if got := keystore.MaskPINValue(in); got != want {
			t.Errorf("MaskPINValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseHidesPIN: whatever surrounds it and however its name is
// spelt, no part (of four bytes or more) of the value of a pin-value
// attribute (up to the next & or ;) shows in Parse's error, raw, quoted or
// percent-decoded.
func FuzzParseHidesPIN(f *testing.F) {
	for _, s := range [][4]string{
		{"file:/tmp/x?", "pin-value=", "123456", ""},
		{"gcpkms://projects/p?", "pin-value=", "777777", ""},
		{"token=a?", "pin-value=", "SECR#ET", ""},
		{"pkcs11:token=a?", "PIN-VALUE=", "SECRET", "&pin-source=env:X"},
		{"pkcs11:slot-id=", "pin%2Dvalue%3d", "S;ECR", "?x"},
		{"file://h?", "pin-value=", "SECRET", "/k.json"},
		{"", "pin-value=", "SECRET", ":x"},
		{"pkcs11:token=t?", "pin-value=", "%zzSECRET", ""},
		{"pkcs11:token=t?pin-value=1&", "pin-value=", "SECRET", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, prefix, name, value, suffix string) {
		if n, err := url.PathUnescape(name); err != nil || strings.ToLower(n) != "pin-value=" {
			t.Skip()
		}
		secret := value
		if i := strings.IndexAny(value, "&;"); i >= 0 {
			secret = value[:i]
		}
		if len(secret) < 4 {
			t.Skip() // short values turn up in any message
		}
		msg := parseError(prefix + name + value + suffix)
		if msg == "" {
			return
		}
		// The same text may come from elsewhere in the input or from the
		// message itself: then the input with another value shows it too.
		other := strings.Repeat("\x01", len(secret)) + value[len(secret):]
		otherMsg := parseError(prefix + name + other + suffix)
		for _, form := range pinForms(secret) {
			for i := 0; i+4 <= len(form); i++ {
				part := form[i : i+4]
				if strings.Contains(msg, part) && !strings.Contains(otherMsg, part) {
					t.Fatalf("Parse(%q): error shows part of the PIN (%q): %s", prefix+name+value+suffix, part, msg)
				}
			}
		}
	})
}

func parseError(s string) string {
	if _, err := keystore.Parse(s); err != nil {
		return err.Error()
	}
	return ""
}

// pinForms are the ways a PIN could appear in a message: as typed, as %q
// prints it, and percent-decoded.
func pinForms(s string) []string {
	forms := []string{s, strings.Trim(strconv.Quote(s), `"`)}
	if d, err := url.PathUnescape(s); err == nil && len(d) >= 4 {
		forms = append(forms, d, strings.Trim(strconv.Quote(d), `"`))
	}
	return forms
}
