package azurekv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/jwkctl/jwkctl/keystore"
)

// List returns the keys of a vault (each at its current version), the
// versions of one key, or one version.
func (b *Backend) List(ctx context.Context, prefix *keystore.URI, opts keystore.Options) ([]keystore.KeyInfo, error) {
	v, err := b.open(prefix, opts)
	if err != nil {
		return nil, err
	}
	switch {
	case v.n.Version != "":
		resp, err := v.c.GetKey(ctx, v.n.Key, v.n.Version, nil)
		if err != nil && !isDisabled(err) {
			return nil, v.mapErr(err, "read", v.n.Key, v.n.Version, opRead)
		}
		enabled := err == nil
		return []keystore.KeyInfo{v.info(ctx, v.n.Key, v.n.Version, &azkeys.KeyAttributes{Enabled: to.Ptr(enabled)}, resp.KeyBundle)}, nil
	case v.n.Key != "":
		var out []keystore.KeyInfo
		pager := v.c.NewListKeyPropertiesVersionsPager(v.n.Key, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, v.mapErr(err, "list versions of", v.n.Key, "", opList)
			}
			for _, p := range page.Value {
				ver, err := v.kidOf(p.KID, v.n.Key, "")
				if err != nil {
					return nil, err
				}
				out = append(out, v.info(ctx, v.n.Key, ver, p.Attributes, azkeys.KeyBundle{}))
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: %s does not exist in the vault", keystore.ErrNotFound, v.n.KeyURI())
		}
		return out, nil
	}
	var out []keystore.KeyInfo
	pager := v.c.NewListKeyPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, v.mapErr(err, "list keys in", "", "", opList)
		}
		for _, p := range page.Value {
			if p.KID == nil || (p.Managed != nil && *p.Managed) {
				continue // a certificate's key is the certificate's business
			}
			name := nameOf(string(*p.KID))
			if _, err := v.kidOf(p.KID, name, ""); err != nil || name == "" {
				return nil, fmt.Errorf("azurekv: listing %s, the vault answered with key %q of another vault", v.n.KeyURI(), string(*p.KID))
			}
			out = append(out, v.info(ctx, name, "", p.Attributes, azkeys.KeyBundle{}))
		}
	}
	return out, nil
}

// nameOf is the key name in a kid (https://host/keys/NAME[/VERSION]).
func nameOf(kid string) string {
	u, err := url.Parse(kid)
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "keys" {
		return ""
	}
	return parts[1]
}

// info describes one key version; an enabled one is opened for its public
// key (and so its kid). kb is the key when already read.
func (v *vault) info(ctx context.Context, name, version string, attrs *azkeys.KeyAttributes, kb azkeys.KeyBundle) keystore.KeyInfo {
	in := keystore.KeyInfo{URI: v.uriOf(name, version), State: "ENABLED"}
	if attrs != nil && attrs.Enabled != nil && !*attrs.Enabled {
		in.State = "DISABLED"
		return in
	}
	var k *Key
	var err error
	if kb.Key != nil {
		k, err = v.keyFrom(kb, name, version)
	} else {
		k, err = v.openKey(ctx, name, version)
	}
	switch {
	case err == nil:
		in.URI, in.Public = k.uri, k.pub
	case errors.Is(err, keystore.ErrPermission):
		// Listing may be allowed where reading the key is not (an access
		// policy with list but not get): say why the kid is missing.
		in.State += " (no public key: needs " + opRead.vault + ", or get on keys)"
	default:
		in.State += " (not usable: " + err.Error() + ")"
	}
	return in
}

// Delete deletes the key with all its versions: Key Vault cannot delete
// one version. A URI naming a version is refused when the key has other
// versions, so deleting one key never takes others with it. With soft
// delete on (the default, and mandatory for new vaults) the key stays
// recoverable until its scheduled purge date, which is logged.
func (b *Backend) Delete(ctx context.Context, u *keystore.URI, opts keystore.Options) error {
	v, err := b.open(u, opts)
	if err != nil {
		return err
	}
	if v.n.Key == "" {
		return fmt.Errorf("%w: name the key to delete: %s/NAME", keystore.ErrBadURI, v.n.KeyURI())
	}
	if v.n.Version != "" {
		var others []string
		pager := v.c.NewListKeyPropertiesVersionsPager(v.n.Key, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return v.mapErr(err, "list versions of", v.n.Key, "", opList)
			}
			for _, p := range page.Value {
				ver, err := v.kidOf(p.KID, v.n.Key, "")
				if err != nil {
					return err
				}
				if !strings.EqualFold(ver, v.n.Version) {
					others = append(others, ver)
				}
			}
		}
		if len(others) > 0 {
			return fmt.Errorf("azurekv: %s has %d other version(s) besides %s, and Key Vault deletes a key with all its versions; nothing was deleted (disable this version with jwkctl keys disable, or delete the whole key as %s)",
				v.n.KeyURI(), len(others), v.n.Version, v.n.KeyURI())
		}
	}
	resp, err := v.c.DeleteKey(ctx, v.n.Key, nil)
	if err != nil {
		return v.mapErr(err, "delete", v.n.Key, "", opDelete)
	}
	if resp.Key != nil {
		if _, err := v.kidOf(resp.Key.KID, v.n.Key, ""); err != nil {
			return err
		}
	}
	log := opts.Logger()
	switch {
	case resp.ScheduledPurgeDate != nil:
		days := ""
		if resp.Attributes != nil && resp.Attributes.RecoverableDays != nil {
			days = fmt.Sprintf(" (%d days of soft delete)", *resp.Attributes.RecoverableDays)
		}
		log.Warn(fmt.Sprintf("%s is deleted but recoverable until %s%s: az keyvault key recover brings it back; after that date Key Vault purges it for good",
			v.n.KeyURI(), resp.ScheduledPurgeDate.UTC().Format(time.RFC3339), days))
	case resp.RecoveryID != nil:
		log.Warn(fmt.Sprintf("%s is deleted but recoverable (az keyvault key recover) until the vault's retention period ends", v.n.KeyURI()))
	default:
		log.Warn(fmt.Sprintf("%s is deleted for good (the vault has no soft delete)", v.n.KeyURI()))
	}
	return nil
}

// SetEnabled sets a key version's enabled attribute (the key's current
// version when the URI names none). A disabled version refuses to sign.
func (b *Backend) SetEnabled(ctx context.Context, u *keystore.URI, enabled bool, opts keystore.Options) error {
	v, err := b.open(u, opts)
	if err != nil {
		return err
	}
	if v.n.Key == "" {
		return fmt.Errorf("%w: name the key: %s/NAME[/VERSION]", keystore.ErrBadURI, v.n.KeyURI())
	}
	what := "disable"
	if enabled {
		what = "enable"
	}
	resp, err := v.c.UpdateKey(ctx, v.n.Key, v.n.Version, azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(enabled)}}, nil)
	if err != nil {
		return v.mapErr(err, what, v.n.Key, v.n.Version, opUpdate)
	}
	if resp.Key == nil {
		return fmt.Errorf("azurekv: %s %s: the answer names no key", what, v.n)
	}
	if _, err := v.kidOf(resp.Key.KID, v.n.Key, v.n.Version); err != nil {
		return err
	}
	if resp.Attributes == nil || resp.Attributes.Enabled == nil || *resp.Attributes.Enabled != enabled {
		return fmt.Errorf("azurekv: %s %s: the vault's answer does not show the key %sd", what, v.n, what)
	}
	return nil
}
