package profile

import (
	"path/filepath"
	"strings"

	"github.com/jwkctl/jwkctl/keystore"
)

// resolve makes the relative paths of p absolute against dir, the config
// file's directory: the path of a file: key URI, a PKCS#11 URI's
// pin-source=file: and module-path (when it has a slash; a bare library
// name is left to the dynamic loader's search), passphrase_file and
// assertion_details_file.
func (p *Profile) resolve(dir string) {
	p.Key = resolveURI(p.Key, dir)
	p.DPoPKey = resolveURI(p.DPoPKey, dir)
	p.NextKey = resolveURI(p.NextKey, dir)
	p.PassphraseFile = resolvePath(p.PassphraseFile, dir)
	p.AssertionDetailsFile = resolvePath(p.AssertionDetailsFile, dir)
}

func resolvePath(p, dir string) string {
	if p == "" || filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// resolveURI returns uri with its relative paths made absolute against
// dir. A URI without relative paths, or one that does not parse (opening
// it will say why), is returned unchanged, byte for byte.
func resolveURI(uri, dir string) string {
	if uri == "" || dir == "" {
		return uri
	}
	u, err := keystore.Parse(uri)
	if err != nil {
		return uri
	}
	switch u.Scheme {
	case keystore.SchemeFile:
		if filepath.IsAbs(u.Path) {
			return uri
		}
		return (&keystore.URI{Scheme: keystore.SchemeFile, Path: filepath.Join(dir, u.Path)}).String()
	case keystore.SchemePKCS11:
		a := *u.PKCS11
		if a.PinValue != "" {
			return uri // refused by Validate; never re-printed (String redacts it)
		}
		changed := false
		if src, ok := strings.CutPrefix(a.PinSource, "file:"); ok && src != "" && !filepath.IsAbs(src) {
			a.PinSource, changed = "file:"+filepath.Join(dir, src), true
		}
		if m := a.ModulePath; m != "" && strings.Contains(m, "/") && !filepath.IsAbs(m) {
			a.ModulePath, changed = filepath.Join(dir, m), true
		}
		if changed {
			return (&keystore.URI{Scheme: keystore.SchemePKCS11, PKCS11: &a}).String()
		}
	}
	return uri
}

// restyle returns p as Save should write it into a file in dir, given w,
// the profile as that file had it: a value that is still what w's resolves
// to is written as in w, and a changed file path whose predecessor was
// relative stays relative to dir (rotation writing a new key next to the
// old one keeps a relative key: relative).
func restyle(p, w *Profile, dir string) *Profile {
	q := p.Clone()
	if w == nil {
		return q
	}
	q.Key = restyleURI(p.Key, w.Key, w.Key, dir)
	q.DPoPKey = restyleURI(p.DPoPKey, w.DPoPKey, w.Key, dir)
	q.NextKey = restyleURI(p.NextKey, w.NextKey, w.Key, dir)
	q.PassphraseFile = restylePath(p.PassphraseFile, w.PassphraseFile, dir)
	q.AssertionDetailsFile = restylePath(p.AssertionDetailsFile, w.AssertionDetailsFile, dir)
	return q
}

// restyleURI: v is the value to write, was the same entry as written in
// the file, and style the written value whose form a new value follows
// when was is empty (the profile's key). A file: key whose predecessor
// had a relative path gets a relative path; a PKCS#11 key keeps its
// pin-source=file: and module-path relative where its predecessor had
// them relative.
func restyleURI(v, was, style, dir string) string {
	if v == "" {
		return v
	}
	if was != "" && resolveURI(was, dir) == v {
		return was
	}
	if was == "" {
		was = style
	}
	wu, err := keystore.Parse(was)
	if err != nil {
		return v
	}
	u, err := keystore.Parse(v)
	if err != nil || u.Scheme != wu.Scheme {
		return v
	}
	switch u.Scheme {
	case keystore.SchemeFile:
		if filepath.IsAbs(wu.Path) || !filepath.IsAbs(u.Path) {
			return v
		}
		rel, ok := relativeTo(dir, u.Path, wu.Path)
		if !ok {
			return v
		}
		return (&keystore.URI{Scheme: keystore.SchemeFile, Path: rel}).String()
	case keystore.SchemePKCS11:
		return restylePKCS11(v, u.PKCS11, wu.PKCS11, dir)
	}
	return v
}

// restylePKCS11 writes the absolute pin-source=file: and module-path of a
// (the attributes of v) relative to dir where w, the URI it replaces, had
// them relative; a module path keeps a slash, so that it is not left to
// the dynamic loader's search.
func restylePKCS11(v string, a, w *keystore.PKCS11Attrs, dir string) string {
	if a.PinValue != "" || w.PinValue != "" {
		return v // refused by Validate; never re-printed (String redacts it)
	}
	b := *a
	changed := false
	if src, ok := strings.CutPrefix(b.PinSource, "file:"); ok && filepath.IsAbs(src) {
		if was, ok := strings.CutPrefix(w.PinSource, "file:"); ok && was != "" && !filepath.IsAbs(was) {
			if rel, ok := relativeTo(dir, src, was); ok {
				b.PinSource, changed = "file:"+rel, true
			}
		}
	}
	if m, was := b.ModulePath, w.ModulePath; filepath.IsAbs(m) && strings.Contains(was, "/") && !filepath.IsAbs(was) {
		if rel, ok := relativeTo(dir, m, was); ok {
			if !strings.Contains(rel, "/") {
				rel = "./" + rel
			}
			b.ModulePath, changed = rel, true
		}
	}
	if !changed {
		return v
	}
	return (&keystore.URI{Scheme: keystore.SchemePKCS11, PKCS11: &b}).String()
}

func restylePath(v, was, dir string) string {
	if v == "" {
		return v
	}
	if was != "" && resolvePath(was, dir) == v {
		return was
	}
	if was == "" || filepath.IsAbs(was) || !filepath.IsAbs(v) {
		return v
	}
	if rel, ok := relativeTo(dir, v, was); ok {
		return rel
	}
	return v
}

// relativeTo gives abs relative to dir, in the style of was (a relative
// path as written before): with its "./" if it had one. It declines (ok
// false) when abs lies outside dir, unless abs is in the same directory as
// was, so a new key elsewhere is written with its absolute path.
func relativeTo(dir, abs, was string) (string, bool) {
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		return "", false
	}
	outside := rel == ".." || strings.HasPrefix(rel, "../")
	if outside && filepath.Dir(abs) != filepath.Dir(filepath.Join(dir, was)) {
		return "", false
	}
	if strings.HasPrefix(was, "./") && !outside {
		rel = "./" + rel
	}
	return rel, true
}
