package commands

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// health is a readiness probe: it passes against a live agent serving the
// named profile (printing the kid go-jose computes for the profile's key),
// and fails with one line otherwise, without ever asking for a token.
func TestHealthProbe(t *testing.T) {
	cfg, old := rotateSetup(t, nil)
	kid := thumbprint(t, old)
	sock := startTestAgent(t, cfg, false)
	tcp := startTestAgent(t, cfg, true)

	out, errOut, code := runCLI(t, "health", "--agent", sock.addr)
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("health on the socket: %d %q %s", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "health", "--agent", sock.addr, "--profile", "prod")
	if code != 0 || !strings.Contains(out, "serves prod with kid "+kid) {
		t.Fatalf("health --profile prod: %d %q %s", code, out, errOut)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown profile", []string{"--agent", sock.addr, "--profile", "nope"}, "does not serve profile nope"},
		{"TCP without the secret", []string{"--agent", tcp.addr, "--profile", "prod"}, "--agent-secret-file"},
		{"nobody there", []string{"--agent", "unix:" + filepath.Join(t.TempDir(), "none.sock")}, "none.sock"},
		{"not loopback", []string{"--agent", "192.0.2.1:8899"}, "loopback"},
	} {
		out, errOut, code := runCLI(t, append([]string{"health"}, tc.args...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and one line naming %q", tc.name, code, out, errOut, tc.want)
		}
	}

	out, errOut, code = runCLI(t, "health", "--agent", tcp.addr, "--agent-secret-file", tcp.secret, "--profile", "prod")
	if code != 0 || !strings.Contains(out, "kid "+kid) {
		t.Fatalf("health over TCP with the secret: %d %q %s", code, out, errOut)
	}
}

// A listener that accepts and never answers: health gives up after
// --timeout with a line that says so.
func TestHealthTimeout(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "mute.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, errOut, code := runCLI(t, "health", "--agent", "unix:"+ln.Addr().String(), "--timeout", "200ms")
	if code != 1 || !strings.Contains(errOut, "did not answer within 200ms") {
		t.Fatalf("health against a mute agent: %d %s", code, errOut)
	}
}
