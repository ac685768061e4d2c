// Package profile reads and writes jwkctl's named profiles: a YAML file
// (DefaultPath, usually ~/.config/jwkctl/config.yaml) that maps a name
// such as "helseid-test" to an issuer, client id, key URI, scopes and the
// other client settings, so commands need not repeat flags. Profiles never
// hold secrets. Save is atomic, so key rotation can switch a profile's key
// without a window where the file is half written.
//
//	f, _ := profile.Load(path)
//	p, _ := f.Get("helseid-test")
//	p.Key = "pkcs11:token=prod;object=client-2025"
//	_ = f.Save(path)
package profile
