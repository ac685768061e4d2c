// Package keyimport reads a private signing key from whatever file a user
// has: a private JWK or JWK Set, the HelseID configuration NHN Selvbetjening
// offers for download, PEM (PKCS#1, PKCS#8, SEC1, encrypted PKCS#8), a
// PBES2 JWE (compact or JSON serialization, as jwkctl and step write them)
// or .NET's RSA XML. The format is told from the content, never the file
// name, and every key is checked with keystore.CheckPrivateKey. Errors name
// what the input is and what to do, and never quote key material.
//
//	p, err := keyimport.Parse(data, keyimport.Options{Passphrase: pass})
//	if err != nil { … }
//	fmt.Printf("read a %s key\n", p.Format)
package keyimport
