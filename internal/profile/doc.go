// Package profile reads and writes jwkctl's named profiles: a YAML file
// (DefaultPath, usually ~/.config/jwkctl/config.yaml) that maps a name
// such as "helseid-test" to an issuer, client id, key URI, scopes and the
// other client settings, so commands need not repeat flags. Profiles never
// hold secrets. Relative paths in a profile are relative to the config
// file's directory; Load makes them absolute, so every command means the
// same keys from any working directory, and refuses a config file that
// anyone but its owner (or root) can change. Save is atomic, so key
// rotation can switch a profile's key without a window where the file is
// half written; it edits the file Load read in place, changing only what
// changed and keeping the user's comments and formatting, and keeps
// relative paths relative. It writes the file a symbolic link leads to
// (the link stays) and keeps the file's mode, owner and group. Lock guards
// a read-change-write of a config file that others may change too.
//
//	f, _ := profile.Load(path)
//	p, _ := f.Get("helseid-test")
//	p.Key = "pkcs11:token=prod;object=client-2025"
//	_ = f.Save(path)
package profile
