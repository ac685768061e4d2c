// Package signer is the one place where JOSE meets crypto.Signer. It checks
// that an algorithm fits a key, signs with RSA-PSS salt length equal to the
// hash length, turns ECDSA DER signatures into the fixed-size r‖s that JWS
// needs, and builds the public JWK with kid = RFC 7638 thumbprint.
//
//	key, _ := keystore.Open(ctx, "file:keys/client.json", keystore.Options{})
//	s, _ := signer.New(key, jose.PS256)
//	jwk := s.Public() // upload this to Selvbetjening
//	sig, _ := s.SignPayload(signingInput, jose.PS256)
package signer
