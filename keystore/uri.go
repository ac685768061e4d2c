package keystore

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jwkctl/jwkctl/internal/lazyre"
)

// URI names a key in one of the backends:
//
//	file:relative/path.json
//	file:///absolute/path.json
//	pkcs11:token=LABEL;object=NAME;id=%01?module-path=/usr/lib/x.so&pin-source=env:PIN
//	gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V
//	awskms:///alias/NAME?region=R (or a key ID, key ARN or alias ARN)
//	azurekv://VAULT.vault.azure.net/keys/NAME[/VERSION]
//
// String prints the URI with any pin-value redacted, so a URI is always safe
// to log or show in an error.
type URI struct {
	Scheme string
	// Path is the file path of a file: URI (relative or absolute).
	Path string
	// PKCS11 holds the attributes of a pkcs11: URI (RFC 7512).
	PKCS11 *PKCS11Attrs
	// GCPKMS holds the resource name of a gcpkms: URI.
	GCPKMS *KMSName
	// AWSKMS names the key of an awskms: URI.
	AWSKMS *AWSKMSName
	// AzureKV holds the vault and key of an azurekv: URI.
	AzureKV *AzureKVName
}

// The URI schemes jwkctl knows. A scheme is known even when its backend is
// not built in; opening such a URI fails with ErrBackendUnavailable.
const (
	SchemeFile   = "file"
	SchemePKCS11 = "pkcs11"
	SchemeGCPKMS = "gcpkms"
	SchemeAWSKMS = "awskms"
	// SchemeAzureKV is Azure Key Vault and Managed HSM.
	SchemeAzureKV = "azurekv"
)

// Parse parses a key URI. Errors wrap ErrBadURI and never contain a PIN.
func Parse(s string) (*URI, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || scheme == "" {
		m := MaskPINValue(s)
		return nil, fmt.Errorf("%w %q: no scheme (did you mean file:%s?)", ErrBadURI, m, m)
	}
	switch strings.ToLower(scheme) {
	case SchemeFile:
		return parseFile(rest)
	case SchemePKCS11:
		return parsePKCS11(rest)
	case SchemeGCPKMS:
		return parseGCPKMS(rest)
	case SchemeAWSKMS:
		return parseAWSKMS(rest)
	case SchemeAzureKV:
		return parseAzureKV(rest)
	}
	if len(scheme) == 1 { // C:\keys on Windows, or a typo
		m := MaskPINValue(s)
		return nil, fmt.Errorf("%w %q: no scheme (did you mean file:%s?)", ErrBadURI, m, m)
	}
	return nil, fmt.Errorf("%w: unknown scheme %q (use file:, pkcs11:, gcpkms://, awskms:/// or azurekv://)", ErrBadURI, MaskPINValue(scheme))
}

// MustParse is Parse for constants in tests and examples; it panics on error.
func MustParse(s string) *URI {
	u, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// String returns the URI in canonical form, with pin-value redacted.
func (u *URI) String() string {
	if u == nil {
		return ""
	}
	switch u.Scheme {
	case SchemeFile:
		return fileString(u.Path)
	case SchemePKCS11:
		if u.PKCS11 != nil {
			return u.PKCS11.String()
		}
	case SchemeGCPKMS:
		if u.GCPKMS != nil {
			return "gcpkms://" + u.GCPKMS.Name()
		}
	case SchemeAWSKMS:
		if u.AWSKMS != nil {
			return u.AWSKMS.String()
		}
	case SchemeAzureKV:
		if u.AzureKV != nil {
			return u.AzureKV.String()
		}
	}
	return u.Scheme + ":"
}

// --- file: ---

func parseFile(rest string) (*URI, error) {
	p := rest
	if strings.HasPrefix(p, "//") {
		host, path, _ := strings.Cut(p[2:], "/")
		if host != "" && host != "localhost" {
			return nil, fmt.Errorf("%w: file URI names host %q; only local files are supported", ErrBadURI, MaskPINValue(host))
		}
		p = "/" + path
	}
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return nil, fmt.Errorf("%w: file URI %q has a query or fragment", ErrBadURI, MaskPINValue("file:"+rest))
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return nil, fmt.Errorf("%w: file URI %q: bad percent-encoding", ErrBadURI, MaskPINValue("file:"+rest))
	}
	if dec == "" || dec == "/" {
		return nil, fmt.Errorf("%w: file URI has no path (e.g. file:keys/client.json)", ErrBadURI)
	}
	if strings.ContainsRune(dec, 0) {
		return nil, fmt.Errorf("%w: file URI path contains a NUL byte", ErrBadURI)
	}
	return &URI{Scheme: SchemeFile, Path: dec}, nil
}

func fileString(p string) string {
	esc := (&url.URL{Path: p}).EscapedPath()
	if strings.HasPrefix(p, "/") {
		return "file://" + esc
	}
	// A relative path whose first segment has a colon would be misread as a
	// scheme by url.URL; we print our own form, which Parse reads back.
	return "file:" + esc
}

// --- gcpkms: ---

// KMSName is a Cloud KMS resource: a key ring, a crypto key or a crypto key
// version. CryptoKey and Version may be empty.
type KMSName struct {
	Project, Location, KeyRing, CryptoKey, Version string
}

var kmsRe = lazyre.New(`^projects/([^/\s]+)/locations/([^/\s]+)/keyRings/([^/\s]+)(?:/cryptoKeys/([^/\s]+)(?:/cryptoKeyVersions/([0-9]+))?)?$`)

func parseGCPKMS(rest string) (*URI, error) {
	name, ok := strings.CutPrefix(rest, "//")
	if !ok {
		return nil, fmt.Errorf("%w: gcpkms URIs look like gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V", ErrBadURI)
	}
	m := kmsRe().FindStringSubmatch(name)
	if m == nil {
		return nil, fmt.Errorf("%w: %q is not a Cloud KMS key name (want projects/P/locations/L/keyRings/R[/cryptoKeys/K[/cryptoKeyVersions/V]])", ErrBadURI, MaskPINValue(name))
	}
	return &URI{Scheme: SchemeGCPKMS, GCPKMS: &KMSName{
		Project: m[1], Location: m[2], KeyRing: m[3], CryptoKey: m[4], Version: m[5],
	}}, nil
}

// KeyRingName is projects/P/locations/L/keyRings/R.
func (n *KMSName) KeyRingName() string {
	return "projects/" + n.Project + "/locations/" + n.Location + "/keyRings/" + n.KeyRing
}

// KeyName is …/cryptoKeys/K, or "" for a key ring.
func (n *KMSName) KeyName() string {
	if n.CryptoKey == "" {
		return ""
	}
	return n.KeyRingName() + "/cryptoKeys/" + n.CryptoKey
}

// VersionName is …/cryptoKeyVersions/V, or "" when no version is named.
func (n *KMSName) VersionName() string {
	if n.Version == "" || n.CryptoKey == "" {
		return ""
	}
	return n.KeyName() + "/cryptoKeyVersions/" + n.Version
}

// Name is the most specific resource name.
func (n *KMSName) Name() string {
	if v := n.VersionName(); v != "" {
		return v
	}
	if k := n.KeyName(); k != "" {
		return k
	}
	return n.KeyRingName()
}

// --- pkcs11: (RFC 7512) ---

// PKCS11Attrs are the attributes of a pkcs11: URI. Values are decoded.
type PKCS11Attrs struct {
	// Path attributes.
	Token, Manufacturer, Serial, Model string
	Object, Type                       string
	ID                                 []byte
	HasID                              bool
	SlotID                             *uint
	// Query attributes.
	ModulePath, ModuleName string
	// PinSource is "file:/path" or "env:VAR".
	PinSource string
	// PinValue is a literal PIN. It works, but a PIN in a URI ends up in
	// shell history and process listings; backends warn about it.
	PinValue string
	// Other holds vendor attributes (x-…) and library-/slot- attributes we
	// carry but do not interpret, in order.
	Other []Attr
}

// Attr is one attribute kept verbatim.
type Attr struct {
	Query       bool
	Name, Value string
}

var pathAttrs = map[string]bool{
	"token": true, "manufacturer": true, "serial": true, "model": true,
	"library-manufacturer": true, "library-description": true, "library-version": true,
	"object": true, "type": true, "id": true,
	"slot-description": true, "slot-manufacturer": true, "slot-id": true,
}

var queryAttrs = map[string]bool{
	"pin-source": true, "pin-value": true, "module-name": true, "module-path": true,
}

func parsePKCS11(rest string) (*URI, error) {
	a := &PKCS11Attrs{}
	if strings.Contains(rest, "#") {
		return nil, fmt.Errorf("%w: pkcs11 URI must not have a fragment", ErrBadURI)
	}
	path, query, _ := strings.Cut(rest, "?")
	seen := map[string]bool{}
	if err := eachAttr(path, ";", false, seen, a); err != nil {
		return nil, err
	}
	if err := eachAttr(query, "&", true, seen, a); err != nil {
		return nil, err
	}
	if a.PinSource != "" {
		if err := checkPinSource(a.PinSource); err != nil {
			return nil, err
		}
	}
	if a.PinSource != "" && a.PinValue != "" {
		return nil, fmt.Errorf("%w: pkcs11 URI has both pin-source and pin-value; give one", ErrBadURI)
	}
	return &URI{Scheme: SchemePKCS11, PKCS11: a}, nil
}

func checkPinSource(src string) error {
	kind, arg, _ := strings.Cut(src, ":")
	switch kind {
	case "file":
		if arg != "" {
			return nil
		}
	case "env":
		if arg != "" && !strings.ContainsAny(arg, "=\x00") {
			return nil
		}
	}
	return fmt.Errorf("%w: pin-source must be file:/path or env:VARIABLE", ErrBadURI)
}

func eachAttr(s, sep string, query bool, seen map[string]bool, a *PKCS11Attrs) error {
	if s == "" {
		return nil
	}
	for _, kv := range strings.Split(s, sep) {
		if kv == "" {
			continue
		}
		name, raw, ok := strings.Cut(kv, "=")
		name = strings.ToLower(name)
		if !ok || name == "" {
			return fmt.Errorf("%w: pkcs11 attribute %q has no value", ErrBadURI, redactAttr(name, kv))
		}
		val, err := url.PathUnescape(raw)
		if err != nil {
			return fmt.Errorf("%w: pkcs11 attribute %q: bad percent-encoding", ErrBadURI, MaskPINValue(name))
		}
		known := pathAttrs
		if query {
			known = queryAttrs
		}
		if !known[name] && !strings.HasPrefix(name, "x-") {
			where := "path"
			if query {
				where = "query"
			}
			return fmt.Errorf("%w: unknown pkcs11 %s attribute %q", ErrBadURI, where, MaskPINValue(name))
		}
		key := name
		if query {
			key = "?" + name
		}
		if seen[key] {
			return fmt.Errorf("%w: pkcs11 attribute %q given twice", ErrBadURI, MaskPINValue(name))
		}
		seen[key] = true
		switch name {
		case "token":
			a.Token = val
		case "manufacturer":
			a.Manufacturer = val
		case "serial":
			a.Serial = val
		case "model":
			a.Model = val
		case "object":
			a.Object = val
		case "type":
			switch val {
			case "private", "public", "cert", "secret-key", "data":
			default:
				return fmt.Errorf("%w: pkcs11 type must be private, public, cert, secret-key or data", ErrBadURI)
			}
			a.Type = val
		case "id":
			a.ID, a.HasID = []byte(val), true
		case "slot-id":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return fmt.Errorf("%w: pkcs11 slot-id %q is not a number", ErrBadURI, MaskPINValue(val))
			}
			id := uint(n)
			a.SlotID = &id
		case "module-path":
			a.ModulePath = val
		case "module-name":
			a.ModuleName = val
		case "pin-source":
			a.PinSource = val
		case "pin-value":
			a.PinValue = val
		default:
			// An empty value says nothing; keeping it would not survive
			// printing (String leaves empty attributes out).
			if val != "" {
				a.Other = append(a.Other, Attr{Query: query, Name: name, Value: val})
			}
		}
	}
	return nil
}

// redactAttr keeps a pin-value out of an error message.
func redactAttr(name, kv string) string {
	if strings.HasPrefix(name, "pin-value") {
		return "pin-value=…"
	}
	return MaskPINValue(kv)
}

// String prints the attributes as a pkcs11: URI with pin-value redacted.
func (a *PKCS11Attrs) String() string {
	var path, query []string
	add := func(dst *[]string, name, val string) {
		if val != "" {
			*dst = append(*dst, name+"="+pctEncode([]byte(val), false))
		}
	}
	add(&path, "token", a.Token)
	add(&path, "manufacturer", a.Manufacturer)
	add(&path, "serial", a.Serial)
	add(&path, "model", a.Model)
	if a.SlotID != nil {
		path = append(path, "slot-id="+strconv.FormatUint(uint64(*a.SlotID), 10))
	}
	add(&path, "object", a.Object)
	if a.HasID {
		path = append(path, "id="+pctEncode(a.ID, true))
	}
	add(&path, "type", a.Type)
	for _, o := range a.Other {
		if !o.Query {
			add(&path, o.Name, o.Value)
		}
	}
	add(&query, "module-name", a.ModuleName)
	add(&query, "module-path", a.ModulePath)
	add(&query, "pin-source", a.PinSource)
	if a.PinValue != "" {
		query = append(query, "pin-value=REDACTED")
	}
	for _, o := range a.Other {
		if o.Query {
			add(&query, o.Name, o.Value)
		}
	}
	s := "pkcs11:" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// pctEncode encodes a value for a pkcs11 URI: RFC 7512 unreserved characters
// and a few safe pchars stay literal, everything else is %XX. With all set,
// every byte is encoded (the usual form for id).
func pctEncode(b []byte, all bool) string {
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	for _, c := range b {
		if !all && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("-._~:[]@!$'()*+,/", c) >= 0) {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	return sb.String()
}

// MaskPINValue returns s with everything after its first pin-value name
// replaced by REDACTED, for text that may hold a key URI and goes into a
// message. It masks to the end of s, not to the end of the attribute: a
// PIN typed in a shell can hold any of the characters that would end it
// (#, ;, &, ?), so whatever follows the name may be PIN. The name is found
// in any case and with any of its characters percent-encoded (PIN-VALUE,
// pin%2Dvalue). Text without a pin-value comes back unchanged.
func MaskPINValue(s string) string {
	for i := 0; i < len(s); i++ {
		end, ok := matchPINName(s, i)
		if !ok {
			continue
		}
		if end == len(s) {
			return s
		}
		return s[:end] + "=REDACTED"
	}
	return s
}

// matchPINName reports whether the name pin-value starts at s[i], each of
// its characters literal in either case or percent-encoded, and returns
// the index just past it.
func matchPINName(s string, i int) (int, bool) {
	const name = "pin-value"
	for j := 0; j < len(name); j++ {
		if i >= len(s) {
			return 0, false
		}
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		if lower(c) != name[j] {
			return 0, false
		}
		i++
	}
	return i, true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
