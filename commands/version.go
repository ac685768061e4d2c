package commands

import (
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// Version, when set at build time with
// -ldflags "-X github.com/jwkctl/jwkctl/commands.Version=v1.2.3", wins
// over the module version the Go toolchain records.
var Version = ""

// versionText is what --version prints after "jwkctl ": the version (the
// -ldflags one, else the module's: a tag, a pseudo-version or "(devel)")
// and, when the binary was built from a VCS checkout, the revision, its
// date and whether the tree had changes:
//
//	v0.3.1 (rev abc1234, 2026-12-01, modified)
func versionText(bi *debug.BuildInfo, ok bool, ldflags string) string {
	v := ldflags
	if v == "" && ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	if !ok {
		return v
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 7 {
		rev = rev[:7]
	}
	parts := []string{"rev " + rev}
	if t, err := time.Parse(time.RFC3339, at); err == nil {
		parts = append(parts, t.UTC().Format(time.DateOnly))
	}
	if modified {
		parts = append(parts, "modified")
	}
	return fmt.Sprintf("%s (%s)", v, strings.Join(parts, ", "))
}

// appVersion is versionText for this binary.
func appVersion() string {
	bi, ok := debug.ReadBuildInfo()
	return versionText(bi, ok, Version)
}

func printVersion(c *cli.Context) {
	fmt.Fprintf(c.App.Writer, "%s %s\n", c.App.Name, c.App.Version)
}
