package commands

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/agent"
	"github.com/jwkctl/jwkctl/internal/devsts"
	"github.com/jwkctl/jwkctl/internal/profile"
	"github.com/jwkctl/jwkctl/keystore"
)

// jwkctl serve with a profile from the config file; jwkctl token --agent
// gets a token from it without any key configuration.
func TestServeAndTokenFromAgent(t *testing.T) {
	dir := t.TempDir()
	key, pub := testKey(t)
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sts.EnableSelvbetjening()
	if err := sts.RegisterClient("agent-client", []jose.JSONWebKey{pub}, []string{devsts.DemoScope, devsts.SelvbetjeningScope}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	if err := f.Set("demo", &profile.Profile{Issuer: sts.Issuer(), ClientID: "agent-client", Key: key, DPoP: new(true), Scopes: []string{devsts.DemoScope}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	app := App()
	app.Writer, app.ErrWriter = io.Discard, pw
	done := make(chan int, 1)
	go func() {
		done <- MainContext(ctx, app, []string{"jwkctl", "serve", "--config", cfg, "--profile", "demo", "--listen", "unix:" + sock, "--key-expiry-interval", "6h"})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "key expiry known") {
			break // listening, and the key expiry metric is fed
		}
	}
	go io.Copy(io.Discard, pr)

	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", err, fi)
	}
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "none.yaml"))
	for range 3 {
		out, errOut, code := runCLI(t, "token", "--agent", "unix:"+sock, "--profile", "demo")
		if code != 0 {
			t.Fatalf("token --agent: %s", errOut)
		}
		var resp map[string]any
		if err := json.Unmarshal([]byte(out), &resp); err != nil || resp["token_type"] != "DPoP" || resp["access_token"] == "" {
			t.Fatalf("agent token: %s", out)
		}
	}
	// One token for the agent's callers (and one for the Selvbetjening
	// expiry check, with its own scope).
	if n := sts.TokensIssued(); n != 2 {
		t.Fatalf("STS issued %d tokens, want 2 (one for 3 agent requests, one for the expiry check)", n)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://agent/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`jwkctl_agent_key_expiry_seconds{profile="demo"} 3.15`, `jwkctl_agent_signatures_total{backend="file"}`, `jwkctl_agent_cache_hits_total{profile="demo"} 2`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	_, errOut, code := runCLI(t, "token", "--agent", "unix:"+sock, "--profile", "nope")
	if code == 0 || !strings.Contains(errOut, "unknown profile") {
		t.Fatalf("unknown profile: %d %s", code, errOut)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d", code)
	}
}

// The key expiry check costs every profile a token with the Selvbetjening
// scope, which most clients lack: it is off unless asked for.
func TestServeKeyExpiryCheckIsOptIn(t *testing.T) {
	for _, f := range serveCommand().Flags {
		if d, ok := f.(*cli.DurationFlag); ok && d.Name == "key-expiry-interval" {
			if d.Value != 0 {
				t.Fatalf("--key-expiry-interval defaults to %v, want off", d.Value)
			}
			return
		}
	}
	t.Fatal("no --key-expiry-interval flag")
}

// urfave/cli takes the first backticked word of a usage as the
// placeholder: the agent flags must show ADDR and FILE.
func TestTokenHelpAgentPlaceholders(t *testing.T) {
	out, errOut, code := runCLI(t, "token", "--help")
	if code != 0 {
		t.Fatalf("token --help: %d %s", code, errOut)
	}
	for _, want := range []string{"--agent ADDR ", "--agent-secret-file FILE "} {
		if !strings.Contains(out, want) {
			t.Errorf("token --help lacks %q", want)
		}
	}
	if strings.Contains(out, "--agent jwkctl serve") {
		t.Error("token --help shows `jwkctl serve` as the --agent placeholder")
	}
}

// An encrypted file key whose profile names no passphrase_file is opened
// with the passphrase from JWKCTL_PASSPHRASE (or --passphrase-file), as
// the other commands do.
func TestServeEncryptedKeyFromEnv(t *testing.T) {
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte("serve-secret-phrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := "file:" + filepath.Join(dir, "enc.json")
	out, errOut, code := runCLI(t, "keys", "generate", "--key", key, "--alg", "ES256", "--passphrase-file", passFile)
	if code != 0 {
		t.Fatalf("generate: %s", errOut)
	}
	var pub jose.JSONWebKey
	if err := json.Unmarshal([]byte(out), &pub); err != nil {
		t.Fatal(err)
	}
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := sts.RegisterClient("enc-client", []jose.JSONWebKey{pub}, []string{devsts.DemoScope}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	if err := f.Set("enc", &profile.Profile{Issuer: sts.Issuer(), ClientID: "enc-client", Key: key, Scopes: []string{devsts.DemoScope}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	args := []string{"--config", cfg, "--listen", "unix:" + sock}

	// Without the passphrase the agent does not start, and says why.
	if log, listening, _ := startServe(t, args...); listening || !strings.Contains(log, "encrypted") {
		t.Fatalf("serve without the passphrase: listening %v\n%s", listening, log)
	}
	t.Setenv("JWKCTL_PASSPHRASE", "serve-secret-phrase")
	logs, listening, code := startServe(t, args...)
	if !listening {
		t.Fatalf("serve exited %d:\n%s", code, logs)
	}
	t.Setenv("JWKCTL_CONFIG", filepath.Join(dir, "none.yaml"))
	out, errOut, code = runCLI(t, "token", "--agent", "unix:"+sock, "--profile", "enc", "--raw")
	if code != 0 || out == "" {
		t.Fatalf("token from the agent: %d %s\nagent log:\n%s", code, errOut, logs)
	}
	if strings.Contains(logs, "serve-secret-phrase") {
		t.Fatal("the passphrase reached the log")
	}
}

// agentConfig writes a config file in dir with profile "demo" for a client
// registered at a dev STS.
func agentConfig(t *testing.T, dir string) string {
	t.Helper()
	key, pub := testKey(t)
	sts, stop, err := devsts.Start(devsts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	if err := sts.RegisterClient("agent-client", []jose.JSONWebKey{pub}, []string{devsts.DemoScope}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	f := &profile.File{}
	if err := f.Set("demo", &profile.Profile{Issuer: sts.Issuer(), ClientID: "agent-client", Key: key, Scopes: []string{devsts.DemoScope}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startServe runs `jwkctl serve args…` until the test ends. It returns
// once the agent listens, with its log so far; or, if serve exits first,
// its exit code (listening is then false).
func startServe(t *testing.T, args ...string) (log string, listening bool, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	pr, pw := io.Pipe()
	app := App()
	app.Writer, app.ErrWriter = io.Discard, pw
	done := make(chan int, 1)
	go func() {
		done <- MainContext(ctx, app, append([]string{"jwkctl", "serve"}, args...))
		pw.Close()
	}()
	var logs strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		logs.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "agent listening") {
			go io.Copy(io.Discard, pr)
			t.Cleanup(func() {
				cancel()
				if code := <-done; code != 0 {
					t.Errorf("serve exited %d", code)
				}
			})
			return logs.String(), true, 0
		}
	}
	cancel()
	return logs.String(), false, <-done
}

// freeLoopbackAddr is a loopback TCP address nothing listens on (likely
// still free when serve binds it).
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A TCP agent writes its secret only over an earlier agent secret: never
// over another file at --secret-file (the key, say), never through a
// symbolic link; and the error for the default place, next to the config
// file, names --secret-file.
func TestServeSecretFileRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := agentConfig(t, dir)
	victim := filepath.Join(dir, "victim.json")
	const keyJSON = `{"kty":"EC","d":"private"}` + "\n"
	if err := os.WriteFile(victim, []byte(keyJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.secret")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{{victim, "not an agent secret"}, {link, "symbolic link"}} {
		log, listening, code := startServe(t, "--config", cfg, "--listen", freeLoopbackAddr(t), "--secret-file", tc.file)
		if listening || code != 1 || !strings.Contains(log, "--secret-file") || !strings.Contains(log, tc.want) {
			t.Errorf("serve --secret-file %s: listening %v, exit %d\n%s", filepath.Base(tc.file), listening, code, log)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != keyJSON {
		t.Fatalf("the key file was overwritten (%d bytes now)", len(b))
	}

	// The default place: agent.secret next to the config file.
	readme := filepath.Join(dir, "agent.secret")
	if err := os.WriteFile(readme, []byte("not a secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log, listening, code := startServe(t, "--config", cfg, "--listen", freeLoopbackAddr(t))
	if listening || code != 1 || !strings.Contains(log, "unless given --secret-file FILE") || strings.Count(strings.TrimSpace(log), "\n") != 0 {
		t.Errorf("serve with agent.secret taken: listening %v, exit %d\n%s", listening, code, log)
	}
	if b, _ := os.ReadFile(readme); string(b) != "not a secret\n" {
		t.Fatalf("agent.secret was overwritten (%d bytes now)", len(b))
	}
}

// A read-only config directory (a ConfigMap in Kubernetes): the error
// names --secret-file.
func TestServeSecretFileReadOnlyDefault(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into a read-only directory")
	}
	dir := t.TempDir()
	cfg := agentConfig(t, dir)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	log, listening, code := startServe(t, "--config", cfg, "--listen", freeLoopbackAddr(t))
	if listening || code != 1 || !strings.Contains(log, "permission denied") || !strings.Contains(log, "--secret-file") {
		t.Errorf("serve with a read-only config directory: listening %v, exit %d\n%s", listening, code, log)
	}
}

// --socket-group with a socket directory the group cannot enter: the
// agent starts, and warns.
func TestServeWarnsUnreachableSocketGroup(t *testing.T) {
	g, err := user.LookupGroupId(strconv.Itoa(os.Getegid()))
	if err != nil {
		t.Skip("no name for our group:", err)
	}
	dir := t.TempDir()
	cfg := agentConfig(t, dir)
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(run, "jwkctl.sock")
	log, listening, code := startServe(t, "--config", cfg, "--listen", "unix:"+sock, "--socket-group", g.Name)
	if !listening {
		t.Fatalf("serve exited %d\n%s", code, log)
	}
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "directory "+run+" (") {
		t.Errorf("no warning about %s:\n%s", run, log)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket: %v %v", fi, err)
	}
}

func TestServedProfiles(t *testing.T) {
	app := App()
	var got []string
	for _, c := range app.Commands {
		if c.Name == "serve" {
			c.Action = func(ctx *cli.Context) error { got = servedProfiles(ctx); return nil }
		}
	}
	t.Setenv("JWKCTL_PROFILE", "")
	if code := Main(app, []string{"jwkctl", "serve", "--profile", "a,b", "--profile", "c", "--profile", "d e"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("profiles %q", got)
	}
}

// A new key at the same URI changes the profile's fingerprint, so a
// reload drops tokens bound to the old key.
func TestAgentFingerprintFollowsTheKey(t *testing.T) {
	dir := t.TempDir()
	cfg := agentConfig(t, dir)
	f, err := profile.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := strings.TrimPrefix(f.Profiles["demo"].Key, "file:")
	log := slog.New(slog.DiscardHandler)
	load := func() string {
		ps, err := loadAgentProfiles(context.Background(), cfg, nil, keystore.Options{}, agent.NewMetrics(), log)
		if err != nil || len(ps) != 1 {
			t.Fatalf("load: %v", err)
		}
		return ps[0].Fingerprint
	}
	before := load()
	if again := load(); again != before {
		t.Fatal("the fingerprint changed without a change")
	}
	os.Remove(keyPath)
	if _, errOut, code := runCLI(t, "keys", "generate", "--key", "file:"+keyPath, "--alg", "ES256"); code != 0 {
		t.Fatal(errOut)
	}
	if after := load(); after == before {
		t.Fatal("a new key at the same URI kept the fingerprint")
	}
}
