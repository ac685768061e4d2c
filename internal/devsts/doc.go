// Package devsts is a small HelseID-like security token service for local
// use, documentation and tests. It is NOT for production: everything lives
// in memory and its signing key is made at start.
//
// It serves OpenID discovery, its JWKS, and a token endpoint for the
// client-credentials grant with private_key_jwt client assertions (RFC
// 7523, typ client-authentication+jwt) and DPoP (RFC 9449, with server
// nonces), and it issues signed JWT access tokens. An assertion's aud is
// checked as draft-ietf-oauth-rfc7523bis has it: the issuer alone (a
// string, or an array holding nothing else); the token endpoint is still
// taken as a single string. A demo resource shows a
// DPoP-protected API call end to end.
//
//	s, stop, _ := devsts.Start(devsts.Config{})
//	defer stop()
//	s.RegisterClient("demo", []jose.JSONWebKey{publicJWK}, []string{devsts.DemoScope})
package devsts
