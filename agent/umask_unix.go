//go:build unix

package agent

import "syscall"

func umask(m int) int { return syscall.Umask(m) }

// openNoFollow makes an open fail on a symbolic link, and not block on a
// FIFO.
const openNoFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
