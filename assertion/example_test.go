package assertion_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/assertion"
	"github.com/jwkctl/jwkctl/signer"
)

func ExampleNewClient() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // in real use: keystore.Open
	s, _ := signer.New(key, jose.ES256)
	c, _ := assertion.NewClient(s, assertion.Config{
		ClientID: "my-helseid-client",
		Audience: "https://helseid-sts.test.nhn.no",
		Now:      func() time.Time { return time.Unix(1_800_000_000, 0) },
	})
	jws, _ := c.Sign()

	var claims assertion.Claims
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(jws, ".")[1])
	_ = json.Unmarshal(payload, &claims)
	fmt.Println(claims.Issuer, claims.Audience, claims.Expiry-claims.IssuedAt)
	// Output: my-helseid-client https://helseid-sts.test.nhn.no 10
}

func ExampleDPoP_Proof() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := signer.New(key, jose.ES256)
	d, _ := assertion.NewDPoP(s, assertion.DPoPConfig{})
	proof, _ := d.Proof(assertion.ProofRequest{
		Method:      "GET",
		URL:         "https://cpapi.test.grunndata.nhn.no/api/v1/communicationparty/123?x=1",
		AccessToken: "the-access-token",
	})

	var claims assertion.DPoPClaims
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(proof, ".")[1])
	_ = json.Unmarshal(payload, &claims)
	fmt.Println(claims.Method, claims.URL, claims.ATH == assertion.ATH("the-access-token"))
	// Output: GET https://cpapi.test.grunndata.nhn.no/api/v1/communicationparty/123 true
}
