// Package loopback tells whether a host is this machine's loopback, the
// only place jwkctl talks or listens without TLS.
package loopback

import (
	"net"
	"strings"
)

// Host reports whether host — a name or an IP literal, brackets allowed —
// is "localhost" or a loopback address (127.0.0.0/8, ::1). Names that
// merely start with "127." are not, nor is the fully qualified
// "localhost.", which resolvers may send to DNS.
func Host(host string) bool {
	h := strings.ToLower(strings.Trim(host, "[]"))
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// HostPort is Host for "host:port"; a bare host is accepted too.
func HostPort(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return Host(host)
}
