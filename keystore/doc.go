// Package keystore names keys by URI and hands out crypto.Signers whose
// private half stays in its backend: a file (keystore/file), a PKCS#11 HSM
// (keystore/pkcs11) or Cloud KMS (keystore/gcpkms). Backends register
// themselves in init(); a program imports the ones it wants for side effects.
//
//	import _ "github.com/jwkctl/jwkctl/keystore/file"
//
//	key, err := keystore.Open(ctx, "file:keys/client.json", keystore.Options{})
//
// Optional abilities (Importer, Lister, Deleter, io.Closer) are small extra
// interfaces a backend may implement.
package keystore
