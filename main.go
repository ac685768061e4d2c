// Command jwkctl manages an OAuth client's signing key: generate it in a
// file, HSM or KMS, export the public JWK, sign client assertions and DPoP
// proofs, get tokens and rotate the key.
package main

import (
	"os"

	"github.com/jwkctl/jwkctl/commands"
)

func main() {
	os.Exit(commands.Main(commands.App(), os.Args))
}
