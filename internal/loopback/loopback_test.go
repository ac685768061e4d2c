package loopback

import "testing"

func TestHostPort(t *testing.T) {
	for in, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.1.2.3:1": true, "[::1]:443": true, "::1": true, "localhost:9": true,
		"LOCALHOST": true, "127.0.0.1": true, "localhost.:80": false,
		"127.evil.example:443": false, "127.0.0.1.nip.io:80": false, "localhost.example:80": false,
		"10.0.0.1:80": false, "[::ffff:10.0.0.1]:80": false, "0.0.0.0:80": false, ":8080": false, "": false,
		"cloudkms.googleapis.com:443": false,
	} {
		if got := HostPort(in); got != want {
			t.Errorf("HostPort(%q) = %v, want %v", in, got, want)
		}
	}
}
