// Package lazyre compiles regular expressions on first use.
//
// Go runs every linked package's initialisers at every start of the
// process. A package-level regexp.MustCompile is paid by every jwkctl
// command, also by those that never match it: the first compile in a
// process faults in regexp's code and Unicode tables, about 3 ms on a
// small VM for the key URI expressions alone. jwkctl's `token` and
// `assertion` run from cron and scripts, where that start-up counts.
package lazyre

import (
	"regexp"
	"sync"
)

// New returns a function that compiles expr the first time it is called
// and returns the same *regexp.Regexp after that. It panics, like
// regexp.MustCompile, if expr does not compile; tests that use the
// expression catch that.
func New(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
