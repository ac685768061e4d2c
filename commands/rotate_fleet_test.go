package commands

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/jwkctl/jwkctl/agent"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
)

// testAgent is a jwkctl serve agent in this process, serving the config's
// profiles as serve does, on a Unix socket or (with a secret) on loopback.
type testAgent struct {
	a      *agent.Agent
	addr   string
	secret string // the secret file of a TCP agent
	cfg    string
}

func startTestAgent(t *testing.T, cfg string, tcp bool) *testAgent {
	t.Helper()
	m := agent.NewMetrics()
	log := slog.New(slog.DiscardHandler)
	profiles, err := loadAgentProfiles(t.Context(), cfg, nil, keystore.Options{}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	ta := &testAgent{a: agent.New(agent.Config{Metrics: m, Logger: log}, profiles), cfg: cfg}
	t.Cleanup(ta.a.Close)
	listen, secret := "unix:"+filepath.Join(t.TempDir(), "agent.sock"), ""
	if tcp {
		listen = "127.0.0.1:0"
		ta.secret = filepath.Join(t.TempDir(), "agent.secret")
		if secret, err = agent.WriteSecret(ta.secret); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := agent.Listen(listen, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ta.a.Handler(secret)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ta.addr = listen
	if tcp {
		ta.addr = ln.Addr().String()
	}
	return ta
}

// reload is what SIGHUP does to serve: the config file read again.
func (ta *testAgent) reload(t *testing.T) {
	t.Helper()
	profiles, err := loadAgentProfiles(t.Context(), ta.cfg, nil, keystore.Options{}, ta.a.Metrics(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ta.a.Reload(profiles)
}

// thumbprint is the key's RFC 7638 kid, computed by go-jose.
func thumbprint(t *testing.T, uri string) string {
	t.Helper()
	k, err := keystore.Open(t.Context(), uri, keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: k.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// The fleet rotation end to end against the dev STS: run --no-activate
// prints the new key as JSON and leaves the profile alone; activate
// switches it; a retire naming the agents is refused while one of them
// still signs with the old kid (or cannot be asked), and goes through
// once they were reloaded.
func TestRotateFleetNoActivateActivateAgentsCLI(t *testing.T) {
	cfg, old := rotateSetup(t, nil)
	oldKid := thumbprint(t, old)
	sock := startTestAgent(t, cfg, false)
	tcp := startTestAgent(t, cfg, true)

	if _, errOut, code := runCLI(t, "rotate", "run", "--profile", "prod", "--no-activate", "--retire"); code != ExitUsage || !strings.Contains(errOut, "--retire") {
		t.Fatalf("--no-activate --retire: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "rotate", "plan", "--profile", "prod", "--overlap", "0"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := runCLI(t, "rotate", "activate", "--profile", "prod"); code != 1 || !strings.Contains(errOut, "at step planned, before the canary") {
		t.Fatalf("activate a planned rotation: %d %s", code, errOut)
	}

	out, errOut, code := runCLI(t, "rotate", "run", "--profile", "prod", "--no-activate")
	if code != 0 {
		t.Fatalf("run --no-activate: %d\n%s%s", code, out, errOut)
	}
	var held map[string]any
	if err := json.Unmarshal([]byte(out), &held); err != nil {
		t.Fatalf("run --no-activate stdout is not JSON: %v\n%s", err, out)
	}
	newKey, _ := held["new_key"].(string)
	if newKey == "" || newKey == old || held["new_kid"] != thumbprint(t, newKey) || held["old_kid"] != oldKid || held["old_key"] != old ||
		held["profile"] != "prod" || held["step"] != "confirmed" || held["overlap"] != "0s" || held["overlap_ends_earliest"] == nil {
		t.Fatalf("run --no-activate JSON: %s", out)
	}
	newKid := held["new_kid"].(string)
	if pf, _ := profile.Load(cfg); pf.Profiles["prod"].Key != old {
		t.Fatalf("run --no-activate switched the profile to %s", pf.Profiles["prod"].Key)
	}
	if !strings.Contains(errOut, "jwkctl rotate activate --profile prod") {
		t.Errorf("run --no-activate does not say what is next: %s", errOut)
	}
	out, _, _ = runCLI(t, "rotate", "status", "--profile", "prod", "-o", "json")
	if !strings.Contains(out, `"held_for_rollout": true`) || !strings.Contains(out, `"step": "confirmed"`) {
		t.Fatalf("journal after --no-activate: %s", out)
	}
	// Run again, it answers the same (for a configuration management run
	// that lost the first answer).
	if again, _, code := runCLI(t, "rotate", "run", "--profile", "prod", "--no-activate"); code != 0 || !strings.Contains(again, `"new_kid": "`+newKid+`"`) {
		t.Fatalf("run --no-activate again: %d %s", code, again)
	}

	if out, errOut, code := runCLI(t, "rotate", "activate", "--profile", "prod"); code != 0 || !strings.Contains(squeeze(out), "step activated") {
		t.Fatalf("activate: %d\n%s%s", code, out, errOut)
	}
	if pf, _ := profile.Load(cfg); pf.Profiles["prod"].Key != newKey {
		t.Fatalf("after activate the profile uses %s, want %s", pf.Profiles["prod"].Key, newKey)
	}

	if out, errOut, code := runCLI(t, "rotate", "run", "--profile", "prod", "--no-activate"); code != 1 || out != "" || !strings.Contains(errOut, "already activated") {
		t.Fatalf("run --no-activate after activate: %d %s %s", code, out, errOut)
	}

	both := []string{"--agents", sock.addr, "--agents", "http://" + tcp.addr, "--agent-secret-file", tcp.secret}
	retire := func(args ...string) (string, string, int) {
		return runCLI(t, append([]string{"rotate", "resume", "--profile", "prod", "--yes"}, args...)...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"agents on the old key", append([]string{"--retire"}, both...), "the agent at " + sock.addr + " signs with the old key (kid " + oldKid + ") for profile prod"},
		{"TCP agent without its secret", []string{"--retire", "--agents", tcp.addr}, "give --agent-secret-file"},
		{"unreachable agent", []string{"--retire", "--agents", "unix:" + filepath.Join(t.TempDir(), "none.sock")}, "cannot tell which key an agent signs with"},
		{"agent on the old key, forced", append([]string{"--force-retire"}, both...), "signs with the old key (kid " + oldKid + ")"},
	} {
		out, errOut, code := retire(tc.args...)
		if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
			t.Fatalf("%s: %d\n%s%s", tc.name, code, out, errOut)
		}
		if _, err := keystore.Open(t.Context(), old, keystore.Options{}); err != nil {
			t.Fatalf("%s: the old key was retired: %v", tc.name, err)
		}
	}
	if _, errOut, code := retire("--agents", sock.addr); code != ExitUsage {
		t.Fatalf("--agents without --retire: %d %s", code, errOut)
	}

	// The hosts were switched: the agents reload and sign with the new key.
	sock.reload(t)
	tcp.reload(t)
	gone := "unix:" + filepath.Join(t.TempDir(), "gone.sock")
	if _, errOut, code := retire(append([]string{"--retire", "--agents", gone}, both...)...); code != 1 || !strings.Contains(errOut, gone) {
		t.Fatalf("retire with one agent unreachable: %d %s", code, errOut)
	}
	out, errOut, code = retire(append([]string{"--force-retire", "--agents", gone}, both...)...)
	if code != 0 || !strings.Contains(out, "agent "+sock.addr+" signs with the new key for prod") || !strings.Contains(out, "agent "+gone+" not asked") {
		t.Fatalf("retire after the reload: %d\n%s%s", code, out, errOut)
	}
	if _, err := keystore.Open(t.Context(), old, keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("the old key after retire: %v", err)
	}
	if _, err := os.Stat(keystore.MustParse(newKey).Path); err != nil {
		t.Fatalf("the new key: %v", err)
	}
}

// --agents takes the addresses token --agent takes, a socket path, and a
// loopback http:// URL; anything else is a usage error.
func TestRotateAgentAddr(t *testing.T) {
	for in, want := range map[string]string{
		"unix:/run/jwkctl/jwkctl.sock": "unix:/run/jwkctl/jwkctl.sock",
		"/tmp/host2.sock":              "unix:/tmp/host2.sock",
		"127.0.0.1:8899":               "127.0.0.1:8899",
		"http://127.0.0.1:8899/":       "127.0.0.1:8899",
		"http://[::1]:8899":            "[::1]:8899",
	} {
		if got, err := agentAddr(in); err != nil || got != want {
			t.Errorf("agentAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"host2", "http://127.0.0.1:8899/healthz", "https://127.0.0.1:8899", "jwkctl.sock", "10.0.0.5:8899", "http://agent.example:8899"} {
		if got, err := agentAddr(bad); err == nil {
			t.Errorf("agentAddr(%q) = %q, want an error", bad, got)
		}
	}
}
