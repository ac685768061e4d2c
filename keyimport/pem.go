package keyimport

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"strings"

	"github.com/youmark/pkcs8"

	"github.com/jwkctl/jwkctl/keystore"
)

// Formats of binary DER input, which Parse also reads.
const (
	FormatPKCS8DER = "PKCS#8 DER"
	FormatPKCS1DER = "PKCS#1 DER"
	FormatSEC1DER  = "SEC1 EC DER"
)

// parsePEM reads the one private key among the PEM blocks in data; EC
// PARAMETERS (openssl ecparam -genkey writes them first) and certificates
// beside the key are skipped.
func parsePEM(data []byte, opts Options) (*Parsed, error) {
	var keys []*pem.Block
	var others []string
	for rest := data; ; {
		b, r := pem.Decode(rest)
		if b == nil {
			break
		}
		rest = r
		switch b.Type {
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			keys = append(keys, b)
		case "EC PARAMETERS":
		default:
			others = append(others, b.Type)
		}
	}
	switch {
	case len(keys) > 1:
		return nil, errorf(ErrKid, "the PEM holds %d private keys; put the one to import in a file of its own", len(keys))
	case len(keys) == 0 && len(others) == 0:
		return nil, errorf(ErrUnknownFormat, "PEM armour (-----BEGIN) that does not decode")
	case len(keys) == 0:
		return nil, pemNotAKey(others[0])
	}
	b := keys[0]
	if strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, errorf(ErrUnknownFormat, "this is a PEM key with legacy encryption (Proc-Type: 4,ENCRYPTED), which jwkctl does not read; "+
			"convert it to encrypted PKCS#8 with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD.pem -out NEW.pem")
	}
	var key any
	var err error
	var format string
	switch b.Type {
	case "PRIVATE KEY":
		format = FormatPKCS8
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		format = FormatPKCS1
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		format = FormatSEC1
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		format = FormatEncPKCS8
		key, err = decryptPKCS8(b.Bytes, opts.Passphrase)
		if err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, errorf(ErrUnknownFormat, "a %s whose contents do not parse (%v)", format, err)
	}
	p, err := finish(key, "", "", nil)
	if err != nil {
		return nil, err
	}
	p.Format = format
	return p, nil
}

func pemNotAKey(typ string) error {
	switch typ {
	case "CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE":
		return errorf(ErrCertificate, "this is a PEM certificate, not a key; import the private key it was made for")
	case "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST":
		return errorf(ErrCertificate, "this is a PEM certificate request, not a key; import the private key it was made for")
	case "PUBLIC KEY":
		return errorf(ErrPublicKey, "this is a public key (SPKI PEM); import the private key")
	case "RSA PUBLIC KEY":
		return errorf(ErrPublicKey, "this is a public key (PKCS#1 PEM); import the private key")
	case "OPENSSH PRIVATE KEY":
		return errorf(ErrUnknownFormat, "this is an OpenSSH private key; convert a copy to PKCS#8 with: ssh-keygen -p -m PKCS8 -f COPY")
	case "DSA PRIVATE KEY":
		return errorf(ErrUnsupportedKey, "a DSA key cannot sign client assertions; want an RSA or EC private key")
	}
	return errorf(ErrUnknownFormat, "a PEM %q block, not a private key", typ)
}

// Bounds on the work an encrypted PKCS#8 file may ask for before its
// passphrase is checked: OpenSSL writes 2048 PBKDF2 iterations, careful
// tools a few hundred thousand.
const (
	maxPBKDF2Iterations = 10_000_000
	maxScryptMemory     = 256 << 20
)

var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
)

// decryptPKCS8 decrypts an ENCRYPTED PRIVATE KEY (RFC 5958, PBES2) with
// github.com/youmark/pkcs8, after checking the KDF's cost is bounded.
func decryptPKCS8(der, pass []byte) (any, error) {
	var info struct {
		Algo pkix.AlgorithmIdentifier
		Data []byte
	}
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return nil, errorf(ErrUnknownFormat, "an encrypted PKCS#8 PEM whose contents do not parse")
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, errorf(ErrUnknownFormat, "an encrypted PKCS#8 PEM with PKCS#5 v1 or PKCS#12 encryption, which jwkctl does not read; "+
			"re-encrypt it with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD.pem -out NEW.pem")
	}
	var params struct {
		KDF    pkix.AlgorithmIdentifier
		Scheme pkix.AlgorithmIdentifier
	}
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil {
		return nil, errorf(ErrUnknownFormat, "an encrypted PKCS#8 PEM with unreadable PBES2 parameters")
	}
	switch {
	case params.KDF.Algorithm.Equal(oidPBKDF2):
		var kdf struct {
			Salt       []byte
			Iterations int
			KeyLength  int                      `asn1:"optional"`
			PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
		}
		if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf); err != nil {
			return nil, errorf(ErrUnknownFormat, "an encrypted PKCS#8 PEM with unreadable PBKDF2 parameters")
		}
		if kdf.Iterations <= 0 || kdf.Iterations > maxPBKDF2Iterations {
			return nil, errorf(ErrUnknownFormat, "the encrypted PKCS#8 PEM asks for %d PBKDF2 iterations; at most %d are allowed", kdf.Iterations, maxPBKDF2Iterations)
		}
	case params.KDF.Algorithm.Equal(oidScrypt):
		var kdf struct {
			Salt        []byte
			N, R, P     int
			KeyLenOptnl int `asn1:"optional"`
		}
		if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf); err != nil {
			return nil, errorf(ErrUnknownFormat, "an encrypted PKCS#8 PEM with unreadable scrypt parameters")
		}
		if kdf.N <= 1 || kdf.R <= 0 || kdf.P <= 0 || kdf.P > 16 || kdf.N > maxScryptMemory/128/kdf.R {
			return nil, errorf(ErrUnknownFormat, "the encrypted PKCS#8 PEM asks scrypt for more than %d MiB or unusual parameters", maxScryptMemory>>20)
		}
	default:
		return nil, errorf(ErrUnknownFormat, "an encrypted PKCS#8 PEM with a key derivation jwkctl does not know (OID %s)", params.KDF.Algorithm)
	}
	if len(pass) == 0 {
		return nil, &kindError{msg: "keyimport: the encrypted PKCS#8 PEM needs its passphrase", kinds: []error{ErrEncrypted, keystore.ErrPassphrase}}
	}
	key, err := pkcs8.ParsePKCS8PrivateKey(der, pass)
	if err != nil {
		if strings.Contains(err.Error(), "unsupported") {
			return nil, errorf(ErrUnknownFormat, "an encrypted PKCS#8 PEM with a cipher or PRF jwkctl cannot read (%v); "+
				"re-encrypt it with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD.pem -out NEW.pem", err)
		}
		return nil, errorf(keystore.ErrPassphrase, "cannot decrypt the encrypted PKCS#8 PEM: wrong passphrase")
	}
	return key, nil
}

// parseDER reads a binary DER key (openssl … -outform DER); certificates
// and public keys are named as such.
func parseDER(der []byte) (*Parsed, error) {
	try := []struct {
		format string
		parse  func([]byte) (any, error)
	}{
		{FormatPKCS8DER, x509.ParsePKCS8PrivateKey},
		{FormatPKCS1DER, func(b []byte) (any, error) { return x509.ParsePKCS1PrivateKey(b) }},
		{FormatSEC1DER, func(b []byte) (any, error) { return x509.ParseECPrivateKey(b) }},
	}
	for _, t := range try {
		if key, err := t.parse(der); err == nil {
			p, err := finish(key, "", "", nil)
			if err != nil {
				return nil, err
			}
			p.Format = t.format
			return p, nil
		}
	}
	if _, err := x509.ParseCertificate(der); err == nil {
		return nil, errorf(ErrCertificate, "this is a DER certificate, not a key; import the private key it was made for")
	}
	if _, err := x509.ParsePKIXPublicKey(der); err == nil {
		return nil, errorf(ErrPublicKey, "this is a public key (SPKI DER); import the private key")
	}
	if _, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return nil, errorf(ErrPublicKey, "this is a public key (PKCS#1 DER); import the private key")
	}
	var info struct {
		Algo pkix.AlgorithmIdentifier
		Data []byte
	}
	if rest, err := asn1.Unmarshal(der, &info); err == nil && len(rest) == 0 && info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, errorf(ErrUnknownFormat, "this is a binary (DER) encrypted PKCS#8 key; convert it to PEM with: openssl pkcs8 -inform DER -in OLD.der -topk8 -v2 aes-256-cbc -out NEW.pem")
	}
	return nil, errorf(ErrUnknownFormat, "binary data that is no DER key")
}
