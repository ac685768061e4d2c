package pkcs11

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/jwkctl/jwkctl/internal/inputfile"
	"github.com/jwkctl/jwkctl/keystore"
)

// ModuleEnv names the PKCS#11 module when the URI has no module-path.
const ModuleEnv = "JWKCTL_PKCS11_MODULE"

// target is what a pkcs11: URI asks for, resolved: which module, which
// token, which PIN, which object.
type target struct {
	module string
	// The token attributes the URI gives (RFC 7512): the token must match
	// every one of them.
	label        string // token label
	serial       string // token serial
	manufacturer string
	model        string
	slotID       *uint
	pin          string
	object       string
	id           []byte
	hasID        bool
}

// tokenName is how messages name the token: by every attribute the URI
// gives.
func (t target) tokenName() string {
	name := "token"
	if t.label != "" {
		name += fmt.Sprintf(" %q", t.label)
	}
	var with []string
	if t.serial != "" {
		with = append(with, fmt.Sprintf("serial %q", t.serial))
	}
	if t.manufacturer != "" {
		with = append(with, fmt.Sprintf("manufacturer %q", t.manufacturer))
	}
	if t.model != "" {
		with = append(with, fmt.Sprintf("model %q", t.model))
	}
	if t.slotID != nil {
		with = append(with, fmt.Sprintf("slot-id %d", *t.slotID))
	}
	if len(with) > 0 {
		name += " with " + strings.Join(with, ", ")
	}
	return name
}

// resolve reads the module, token selector and PIN of a pkcs11: URI.
// Errors never contain the PIN.
func resolve(u *keystore.URI, opts keystore.Options, needPIN bool) (target, error) {
	if u == nil || u.Scheme != keystore.SchemePKCS11 || u.PKCS11 == nil {
		return target{}, fmt.Errorf("%w: want a pkcs11: URI", keystore.ErrBadURI)
	}
	a := u.PKCS11
	t := target{
		label: a.Token, serial: a.Serial, manufacturer: a.Manufacturer, model: a.Model, slotID: a.SlotID,
		object: a.Object, id: a.ID, hasID: a.HasID,
	}
	// Every token attribute given must match (RFC 7512 §2.3); the token is
	// found by its serial or label and the others are checked.
	switch {
	case a.SlotID != nil && a.Token == "" && a.Serial == "":
		return t, fmt.Errorf("%w: select the token by token=LABEL or serial=…, not slot-id: slot numbers change when devices are added", keystore.ErrBadURI)
	case t.label == "" && t.serial == "":
		return t, fmt.Errorf("%w: the pkcs11 URI names no token: add token=LABEL (see softhsm2-util --show-slots or pkcs11-tool --list-tokens)", keystore.ErrBadURI)
	}
	t.module = a.ModulePath
	if t.module == "" {
		t.module = os.Getenv(ModuleEnv)
	}
	if t.module == "" {
		return t, fmt.Errorf("%w: no PKCS#11 module: add module-path=/path/to/lib.so to the URI or set %s", keystore.ErrBadURI, ModuleEnv)
	}
	if !needPIN {
		return t, nil
	}
	switch {
	case a.PinValue != "":
		opts.Logger().Warn("the PIN is in the key URI (pin-value); it can leak through shell history and process listings: use pin-source=file:… or pin-source=env:…")
		t.pin = a.PinValue
	case a.PinSource != "":
		pin, err := readPinSource(a.PinSource)
		if err != nil {
			return t, err
		}
		t.pin = pin
	default:
		return t, fmt.Errorf("%w: no PIN for %s: add ?pin-source=env:JWKCTL_PKCS11_PIN (or pin-source=file:/path) to the URI", keystore.ErrPIN, t.tokenName())
	}
	return t, nil
}

func readPinSource(src string) (string, error) {
	kind, arg, _ := strings.Cut(src, ":")
	switch kind {
	case "env":
		pin, ok := os.LookupEnv(arg)
		if !ok || pin == "" {
			return "", fmt.Errorf("%w: pin-source=env:%s but %s is not set", keystore.ErrPIN, arg, arg)
		}
		return pin, nil
	case "file":
		f, err := os.Open(arg)
		if errors.Is(err, fs.ErrNotExist) {
			// Not a PIN problem yet: say what is missing.
			return "", fmt.Errorf("pkcs11: the pin-source file %s does not exist (write the token's user PIN into it, mode 0600)", arg)
		}
		if err != nil {
			return "", fmt.Errorf("%w: pin-source file: %v", keystore.ErrPIN, err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return "", fmt.Errorf("%w: pin-source file: %v", keystore.ErrPIN, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%w: PIN file %s has mode %04o; fix it with: chmod 600 %s", keystore.ErrInsecure, arg, fi.Mode().Perm(), arg)
		}
		// Capped: /dev/zero or a FIFO fed without end is refused, not read
		// until memory runs out.
		b, err := inputfile.ReadFrom(f, arg, inputfile.MaxPassphrase, "a PIN file")
		if err != nil {
			return "", fmt.Errorf("%w: pin-source file: %w", keystore.ErrPIN, err)
		}
		pin := strings.TrimRight(string(b), "\r\n")
		if pin == "" {
			return "", fmt.Errorf("%w: PIN file %s is empty", keystore.ErrPIN, arg)
		}
		return pin, nil
	}
	return "", fmt.Errorf("%w: pin-source must be file:/path or env:VARIABLE", keystore.ErrBadURI)
}

// keyURI is the URI of a key on the token, without any PIN value.
func keyURI(base *keystore.URI, label string, id []byte) *keystore.URI {
	a := *base.PKCS11
	a.Object, a.ID, a.HasID, a.PinValue, a.Type = label, id, len(id) > 0, "", ""
	a.Other = nil
	return &keystore.URI{Scheme: keystore.SchemePKCS11, PKCS11: &a}
}
