//go:build !unix

package agent

// Without Unix file modes there is no umask to set; sockets and secret
// files rely on the directory's access control.
func umask(int) int { return 0 }

// openNoFollow has no portable equivalent here; holdsSecret compares the
// opened file with the one it checked.
const openNoFollow = 0

// CheckSocketGroup has nothing to check without Unix groups.
func CheckSocketGroup(addr, group string) error { return nil }
