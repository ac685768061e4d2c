package keyimport_test

import (
	"testing"

	"github.com/jwkctl/jwkctl/keyimport"
)

// BenchmarkParse: reading a key is dominated by checking it
// (keystore.CheckPrivateKey); the format detection adds little.
func BenchmarkParse(b *testing.B) {
	k := testRSA(b, 0)
	for name, data := range map[string][]byte{
		"JWK":          []byte(privateJWK(b, k, "", "", "")),
		"download":     download(b, privateJWK(b, k, "", "", ""), nil, nil),
		"download+XML": download(b, privateJWK(b, k, "", "", ""), dotNetXML(k), nil),
		"XML":          []byte(dotNetXML(k)),
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := keyimport.Parse(data, keyimport.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
