package keyimport

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/xml"
	"math/big"
	"strings"

	"github.com/jwkctl/jwkctl/keystore"
)

// rsaKeyValue is .NET's RSA.ToXmlString(true) format: big-endian
// integers, standard base64.
type rsaKeyValue struct {
	XMLName  xml.Name `xml:"RSAKeyValue"`
	Modulus  string   `xml:"Modulus"`
	Exponent string   `xml:"Exponent"`
	P        string   `xml:"P"`
	Q        string   `xml:"Q"`
	DP       string   `xml:"DP"`
	DQ       string   `xml:"DQ"`
	InverseQ string   `xml:"InverseQ"`
	D        string   `xml:"D"`
}

// parseXML reads an <RSAKeyValue>. Format is left for the caller to set.
// The CRT members DP, DQ and InverseQ are checked against P, Q and D, not
// trusted.
func parseXML(data []byte) (*Parsed, error) {
	var v rsaKeyValue
	if err := xml.Unmarshal(data, &v); err != nil {
		// encoding/xml's messages can quote the input.
		if strings.Contains(err.Error(), "expected element type") {
			return nil, errorf(ErrUnknownFormat, "XML, but not .NET's <RSAKeyValue>")
		}
		return nil, errorf(ErrUnknownFormat, "XML that is not well-formed")
	}
	ints := map[string]*big.Int{}
	for _, f := range []struct{ name, val string }{
		{"Modulus", v.Modulus}, {"Exponent", v.Exponent}, {"P", v.P}, {"Q", v.Q},
		{"DP", v.DP}, {"DQ", v.DQ}, {"InverseQ", v.InverseQ}, {"D", v.D},
	} {
		s := strings.Join(strings.Fields(f.val), "")
		if s == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err != nil {
				return nil, errorf(ErrUnknownFormat, ".NET RSA XML whose <%s> is not base64", f.name)
			}
		}
		ints[f.name] = new(big.Int).SetBytes(b)
	}
	if ints["Modulus"] == nil || ints["Exponent"] == nil {
		return nil, errorf(ErrUnknownFormat, ".NET RSA XML without <Modulus> and <Exponent>")
	}
	if ints["D"] == nil {
		return nil, errorf(ErrPublicKey, ".NET RSA XML with only the public <Modulus> and <Exponent>; import the private key (with <D>)")
	}
	for _, name := range []string{"P", "Q"} {
		if ints[name] == nil {
			return nil, errorf(ErrUnknownFormat, ".NET RSA XML without <%s>", name)
		}
	}
	e := ints["Exponent"]
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, errorf(keystore.ErrWeakKey, ".NET RSA XML with an unusable <Exponent>")
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: ints["Modulus"], E: int(e.Int64())},
		D:         ints["D"],
		Primes:    []*big.Int{ints["P"], ints["Q"]},
	}
	if err := checkSize(&k.PublicKey); err != nil {
		return nil, err
	}
	one := big.NewInt(1)
	crt := []struct {
		name string
		want func() *big.Int
	}{
		{"DP", func() *big.Int { return new(big.Int).Mod(k.D, new(big.Int).Sub(k.Primes[0], one)) }},
		{"DQ", func() *big.Int { return new(big.Int).Mod(k.D, new(big.Int).Sub(k.Primes[1], one)) }},
		{"InverseQ", func() *big.Int { return new(big.Int).ModInverse(k.Primes[1], k.Primes[0]) }},
	}
	for _, c := range crt {
		if k.Primes[0].Cmp(one) <= 0 || k.Primes[1].Cmp(one) <= 0 {
			break // CheckPrivateKey refuses it
		}
		got := ints[c.name]
		if got == nil {
			continue
		}
		if want := c.want(); want == nil || got.Cmp(want) != 0 {
			return nil, errorf(keystore.ErrWeakKey, ".NET RSA XML whose <%s> does not agree with <P>, <Q> and <D>", c.name)
		}
	}
	// Precompute leaves an inconsistent key as it is, for Validate (in
	// finish) to refuse; a consistent one is then validated at no cost.
	k.Precompute()
	return finish(k, "", "", nil)
}
