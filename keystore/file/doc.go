// Package file is the embedded default key store: each key is a private
// JWK in a JSON file, the format NHN Selvbetjening offers for download, or
// a JWE of it (PBES2-HS512+A256KW, A256GCM) when a passphrase is given.
// Files are written atomically with mode 0600 and are never overwritten; a
// key file others can read is refused.
//
//	key, err := keystore.Generate(ctx, keystore.GenerateRequest{
//		URI:  keystore.MustParse("file:keys/client.json"),
//		Spec: spec, // keystore.SpecFor(jose.PS256, 4096)
//	})
package file
