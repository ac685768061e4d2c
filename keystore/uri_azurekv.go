package keystore

import (
	"fmt"
	"strings"

	"github.com/jwkctl/jwkctl/internal/lazyre"
)

// AzureKVName is an Azure Key Vault or Managed HSM key:
// azurekv://HOST/keys/NAME/VERSION. Key and Version may be empty (a vault
// to list, or a key's current version).
type AzureKVName struct {
	// Host is the vault's DNS name, lower case: myvault.vault.azure.net or
	// myhsm.managedhsm.azure.net.
	Host, Key, Version string
}

// Key Vault's own rules: key names are 1–127 letters, digits and dashes;
// versions are 32 hex digits (any alphanumerics are accepted here, the
// service decides). The host is any DNS name or loopback address; the
// backend refuses one that is not a vault unless an endpoint override for
// tests is set (see AzureKVName.Kind).
var azkvRe = lazyre.New(`^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(?:/keys(?:/([A-Za-z0-9-]{1,127})(?:/([A-Za-z0-9]{1,64}))?)?)?/?$`)

func parseAzureKV(rest string) (*URI, error) {
	name, ok := strings.CutPrefix(rest, "//")
	if !ok {
		return nil, fmt.Errorf("%w: azurekv URIs look like azurekv://VAULT.vault.azure.net/keys/NAME[/VERSION]", ErrBadURI)
	}
	m := azkvRe().FindStringSubmatch(name)
	if m == nil || strings.Contains(m[1], "..") || strings.HasPrefix(m[1], ".") || strings.HasPrefix(m[1], "-") {
		return nil, fmt.Errorf("%w: %q is not an Azure Key Vault key (want azurekv://VAULT.vault.azure.net/keys/NAME[/VERSION] or azurekv://HSM.managedhsm.azure.net/keys/NAME[/VERSION])", ErrBadURI, MaskPINValue("azurekv://"+name))
	}
	return &URI{Scheme: SchemeAzureKV, AzureKV: &AzureKVName{
		Host: strings.ToLower(m[1] + m[2]), Key: m[3], Version: m[4],
	}}, nil
}

// The DNS suffixes of Key Vault and Managed HSM in the public, China and
// US Government clouds.
var (
	vaultSuffixes      = []string{".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net"}
	managedHSMSuffixes = []string{".managedhsm.azure.net", ".managedhsm.azure.cn", ".managedhsm.usgovcloudapi.net"}
	// Vault and Managed HSM names: 3–24 letters, digits and dashes,
	// starting with a letter, not ending with a dash.
	vaultLabelRe = lazyre.New(`^[a-z][a-z0-9-]{1,22}[a-z0-9]$`)
)

// Kind is "vault" for a Key Vault host, "managedhsm" for a Managed HSM
// host, or "" for any other host.
func (n *AzureKVName) Kind() string {
	for kind, suffixes := range map[string][]string{"vault": vaultSuffixes, "managedhsm": managedHSMSuffixes} {
		for _, s := range suffixes {
			if label, ok := strings.CutSuffix(n.Host, s); ok && vaultLabelRe().MatchString(label) {
				return kind
			}
		}
	}
	return ""
}

// KeyURI is the key without its version.
func (n *AzureKVName) KeyURI() string {
	if n.Key == "" {
		return "azurekv://" + n.Host + "/keys"
	}
	return "azurekv://" + n.Host + "/keys/" + n.Key
}

// String is the canonical URI.
func (n *AzureKVName) String() string {
	if n.Version == "" || n.Key == "" {
		return n.KeyURI()
	}
	return n.KeyURI() + "/" + n.Version
}
