package keyimport_test

import (
	"encoding/base64"
	"errors"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/jwkctl/jwkctl/keyimport"
	"github.com/jwkctl/jwkctl/keystore"
)

func TestParseDotNetXML(t *testing.T) {
	k := testRSA(t, 0)
	x := dotNetXML(k)
	pretty := strings.NewReplacer("><", ">\n  <", "</RSAKeyValue>", "\n</RSAKeyValue>").Replace(x)
	for name, data := range map[string]string{
		"as .NET writes it":     x,
		"with prologue and BOM": bom + `<?xml version="1.0" encoding="utf-8"?>` + "\r\n" + pretty,
	} {
		t.Run(name, func(t *testing.T) {
			p, err := keyimport.Parse([]byte(data), keyimport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			samePublic(t, p.Private, &k.PublicKey)
			if p.Format != keyimport.FormatDotNetRSAXML || p.Kid != "" || p.Alg != "" {
				t.Errorf("format %q kid %q alg %q", p.Format, p.Kid, p.Alg)
			}
		})
	}
}

func TestParseDotNetXMLRejects(t *testing.T) {
	k := testRSA(t, 0)
	x := dotNetXML(k)
	replace := func(elem, val string) string {
		return regexp.MustCompile("<"+elem+">[^<]*</"+elem+">").ReplaceAllString(x, "<"+elem+">"+val+"</"+elem+">")
	}
	drop := func(elems ...string) string {
		s := x
		for _, e := range elems {
			s = regexp.MustCompile("<"+e+">[^<]*</"+e+">").ReplaceAllString(s, "")
		}
		return s
	}
	wrongDP := base64.StdEncoding.EncodeToString(new(big.Int).Add(k.Precomputed.Dp, big.NewInt(2)).Bytes())
	for name, tc := range map[string]struct {
		data string
		want error
		says string
	}{
		"public only":       {drop("P", "Q", "DP", "DQ", "InverseQ", "D"), keyimport.ErrPublicKey, "only the public"},
		"no P":              {drop("P"), keyimport.ErrUnknownFormat, "without <P>"},
		"DP wrong":          {replace("DP", wrongDP), keystore.ErrWeakKey, "<DP> does not agree"},
		"D not base64":      {replace("D", "***"), keyimport.ErrUnknownFormat, "<D> is not base64"},
		"another element":   {"<KeyValue><Modulus>AQAB</Modulus></KeyValue>", keyimport.ErrUnknownFormat, "not .NET's <RSAKeyValue>"},
		"not well-formed":   {x[:len(x)/2], keyimport.ErrUnknownFormat, "not well-formed"},
		"Q does not fit N":  {replace("Q", base64.StdEncoding.EncodeToString(k.Primes[0].Bytes())), nil, ""},
		"exponent too long": {replace("Exponent", base64.StdEncoding.EncodeToString(make([]byte, 9))+"AQ=="), nil, ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := keyimport.Parse([]byte(tc.data), keyimport.Options{})
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Parse = %v; want %v saying %q", err, tc.want, tc.says)
			}
			noSecret(t, err, base64.StdEncoding.EncodeToString(k.D.Bytes())[:20], base64.StdEncoding.EncodeToString(k.Primes[0].Bytes())[:20])
		})
	}
}
