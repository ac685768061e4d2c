//go:build !jwkctl_no_azurekv

package commands

// The Azure Key Vault backend. Build with -tags jwkctl_no_azurekv to leave
// it out: see docs/performance.md.
import _ "github.com/jwkctl/jwkctl/keystore/azurekv"
