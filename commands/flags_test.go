package commands

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// Every flag of every command can also be set from the environment, as
// JWKCTL_…, so services and CI never need secrets or settings in argv; and
// every flag that takes a value names it in the help.
func TestEveryFlagHasAnEnvVar(t *testing.T) {
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			name := path + " " + cmd.Name
			for _, f := range cmd.Flags {
				ev, ok := f.(interface{ GetEnvVars() []string })
				if !ok {
					t.Errorf("%s --%s: flag type %T has no env vars", name, f.Names()[0], f)
					continue
				}
				vars := ev.GetEnvVars()
				// --config reads $JWKCTL_CONFIG itself (a missing file there
				// is no error when no profile is asked for); its usage says so.
				usage := ""
				if u, ok := f.(interface{ GetUsage() string }); ok {
					usage = u.GetUsage()
				}
				if len(vars) == 0 && !strings.Contains(usage, "$"+envPrefix) {
					t.Errorf("%s --%s has no JWKCTL_… env var", name, f.Names()[0])
				}
				// Help shows "--flag NAME", not urfave's bare "--flag value".
				if _, isBool := f.(*cli.BoolFlag); !isBool && strings.Count(usage, "`") < 2 {
					t.Errorf("%s --%s: its usage names no `PLACEHOLDER`", name, f.Names()[0])
				}
				for _, v := range vars {
					if !strings.HasPrefix(v, envPrefix) {
						t.Errorf("%s --%s: env var %s lacks the %s prefix", name, f.Names()[0], v, envPrefix)
					}
				}
			}
			walk(name, cmd.Subcommands)
		}
	}
	walk("jwkctl", App().Commands)
}
