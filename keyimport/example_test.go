package keyimport_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/jwkctl/jwkctl/keyimport"
)

// A HelseID configuration as Selvbetjening offers it for download: the
// private JWK is a JSON string inside it, and the file starts with a byte
// order mark.
func ExampleParse() {
	jwk, err := os.ReadFile(filepath.Join("..", "testdata", "keys", "p256.jwk"))
	if err != nil {
		panic(err)
	}
	download := "\uFEFF" + `{"clientName":"Example","authority":"https://helseid-sts.test.nhn.no",` +
		`"clientId":"15f46f78-0000-4000-8000-000000000000","grantTypes":["client_credentials"],` +
		`"scopes":["nhn:cp-api/access"],"secretType":"private_key_jwt:RsaPrivateKeyJwtSecret",` +
		`"rsaPrivateKey":null,"privateJwk":` + strconv.Quote(string(jwk)) + `}`

	p, err := keyimport.Parse([]byte(download), keyimport.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Format, p.Spec())

	// A public key is no key to import; the error says what the file is.
	_, err = keyimport.Parse([]byte(`{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}`), keyimport.Options{})
	fmt.Println(err)
	// Output:
	// Selvbetjening download EC P-256
	// keyimport: this is a public JWK (kty EC, no "d"); import the private JWK
}
