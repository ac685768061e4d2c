// Package assertion signs the JWTs a client sends to prove who it is: RFC
// 7523 client assertions (private_key_jwt, HelseID profile by default) and
// RFC 9449 DPoP proofs. Both go through a signer.Signer, so the private key
// stays in its backend, and every JWT gets a fresh 256-bit random jti.
//
//	c, _ := assertion.NewClient(s, assertion.Config{
//		ClientID: "my-client",
//		Audience: "https://helseid-sts.test.nhn.no",
//	})
//	jwt, _ := c.Sign()
package assertion
