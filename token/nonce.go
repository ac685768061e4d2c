package token

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// nonceStore remembers the last DPoP-Nonce each server (origin) sent, so
// the next proof carries it and saves a round trip.
type nonceStore struct {
	mu sync.Mutex
	m  map[string]string
}

func newNonceStore() *nonceStore { return &nonceStore{m: map[string]string{}} }

func (s *nonceStore) get(origin string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[origin]
}

// remember stores the DPoP-Nonce header of a response, if it has one.
func (s *nonceStore) remember(origin string, h http.Header) bool {
	n := h.Get("DPoP-Nonce")
	if n == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[origin] = n
	return true
}

// originOf is scheme://host[:port] in lower case.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}
