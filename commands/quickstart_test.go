package commands

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/signer"
)

func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := runCLI(t, "quickstart", "--keep", dir)
	if code != 0 {
		t.Fatalf("quickstart exit %d: %s", code, errOut)
	}
	var sum struct {
		Kid, TokenType, Scope string
		ExpiresIn             int64  `json:"expires_in"`
		AccessToken           string `json:"access_token"`
		APIResponse           struct {
			HerID     string `json:"herId"`
			DPoPBound bool   `json:"dpopBound"`
			CalledBy  string `json:"calledBy"`
		} `json:"api_response"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if sum.APIResponse.HerID != "8093400" || !sum.APIResponse.DPoPBound || sum.APIResponse.CalledBy != quickstartClient || sum.ExpiresIn <= 0 {
		t.Errorf("summary %+v", sum)
	}
	if sum.AccessToken != "" || strings.Contains(out, "eyJ") {
		t.Error("stdout carries a token without --show-token")
	}
	for i, step := range []string{"Generate a keypair", "Export the public JWK", "Register the public key", "Sign a client assertion", "Get a DPoP-bound access token", "Call a protected API"} {
		if !strings.Contains(errOut, string(rune('1'+i))+". "+step) {
			t.Errorf("narration lacks step %d %q", i+1, step)
		}
	}
	// The narration shows decoded claims but never a usable JWS.
	if strings.Count(errOut, "eyJ") > 0 {
		t.Error("stderr shows an encoded JWT")
	}
	// --keep leaves a valid key whose kid is the one reported.
	k, err := keystore.Open(t.Context(), "file:"+filepath.Join(dir, "quickstart-client.json"), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if kid := mustThumbprint(t, k); kid != sum.Kid {
		t.Errorf("kept key kid %s, summary says %s", kid, sum.Kid)
	}
}

func TestParseClientSpec(t *testing.T) {
	dir := t.TempDir()
	_, pub := testKey(t)
	b, _ := json.Marshal(pub)
	path := filepath.Join(dir, "pub.jwk")
	os.WriteFile(path, b, 0o644)
	id, keys, scopes, err := parseClientSpec("demo=" + path + ":nhn:demo-api/read nhn:cp-api/access")
	if err != nil || id != "demo" || len(keys) != 1 || strings.Join(scopes, "|") != "nhn:demo-api/read|nhn:cp-api/access" {
		t.Fatalf("got %q %d %q %v", id, len(keys), scopes, err)
	}
	for _, bad := range []string{"demo", "=x", "demo=" + filepath.Join(dir, "missing.jwk")} {
		if _, _, _, err := parseClientSpec(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	_, _, code := runCLI(t, "dev", "sts", "--listen", "0.0.0.0:0", "--client", "demo="+path)
	if code == 0 {
		t.Error("dev sts listened on a non-loopback address")
	}
}

func mustThumbprint(t *testing.T, k keystore.Key) string {
	t.Helper()
	kid, err := signer.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// replayCommands are the command lines the narration offers ("$ jwkctl
// …"), without the trailing comment and output redirection.
func replayCommands(t *testing.T, narration string) [][]string {
	t.Helper()
	var out [][]string
	for _, line := range strings.Split(narration, "\n") {
		cmd, ok := strings.CutPrefix(strings.TrimSpace(line), "$ ")
		if !ok {
			continue
		}
		cmd, _, _ = strings.Cut(cmd, "    # ")
		words := shellWords(t, cmd)
		if i := slices.Index(words, ">"); i >= 0 {
			if i != len(words)-2 {
				t.Fatalf("redirection not at the end: %q", cmd)
			}
			words = words[:i]
		}
		out = append(out, words)
	}
	return out
}

// shellWords splits a line as a POSIX shell would for the forms the
// narration uses: plain words and single-quoted strings.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune("\"\\$`;&|<(){}*?", r):
			t.Fatalf("replay line %q has %q, which this test does not read as a shell would", line, r)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unclosed quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// parseAgainstCLI finds the command args names in jwkctl's command tree
// and parses its flags with that command's own flag set: every flag must
// exist and take its value, every required flag must be there. It returns
// the command and its positional arguments.
func parseAgainstCLI(t *testing.T, args []string) (*cli.Command, []string) {
	t.Helper()
	if len(args) == 0 || args[0] != "jwkctl" {
		t.Fatalf("not a jwkctl command line: %q", args)
	}
	cmds := App().Commands
	var cmd *cli.Command
	rest := args[1:]
	for len(rest) > 0 {
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(rest[0]) {
				next = c
			}
		}
		if next == nil {
			break
		}
		cmd, cmds, rest = next, next.Subcommands, rest[1:]
	}
	if cmd == nil {
		t.Fatalf("%q names no command", args)
	}
	fs := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range cmd.Flags {
		if err := f.Apply(fs); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Parse(rest); err != nil {
		t.Fatalf("%q does not parse: %v", args, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range cmd.Flags {
		if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() && !set[f.Names()[0]] {
			t.Errorf("%q lacks the required --%s", args, f.Names()[0])
		}
	}
	return cmd, fs.Args()
}

// Every step names the commands that do it again with a built binary,
// and they are real command lines of this CLI.
func TestQuickstartReplayCommandsParse(t *testing.T) {
	out, errOut, code := runCLI(t, "quickstart")
	if code != 0 {
		t.Fatalf("quickstart exit %d: %s", code, errOut)
	}
	cmds := replayCommands(t, errOut)
	var names []string
	for _, args := range cmds {
		cmd, pos := parseAgainstCLI(t, args)
		names = append(names, cmd.Name)
		wantPos := 0
		if cmd.Name == "call" {
			wantPos = 1
		}
		if len(pos) != wantPos {
			t.Errorf("%q: %d arguments after the flags, want %d", args, len(pos), wantPos)
		}
		for i, a := range args {
			if a == "--key" {
				if _, err := keystore.Parse(args[i+1]); err != nil {
					t.Errorf("%q: %v", args, err)
				}
			}
			if a == "--client" {
				if want := quickstartClient + "=quickstart-client.jwk:nhn:demo-api/read"; args[i+1] != want {
					t.Errorf("dev sts --client %q, want %q", args[i+1], want)
				}
			}
		}
	}
	if want := []string{"generate", "public", "sts", "assertion", "token", "call"}; !slices.Equal(names, want) {
		t.Errorf("replay commands %v, want %v", names, want)
	}
	// The key is gone, and the narration said so and how to keep it.
	var sum struct{ Key string }
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	removed, ok := strings.CutPrefix(strings.TrimSuffix(sum.Key, ")"), "(removed: file:")
	if !ok {
		t.Fatalf("summary key %q", sum.Key)
	}
	if _, err := os.Stat(removed); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the key %s is still there: %v", removed, err)
	}
	for _, want := range []string{"removed when quickstart ends (--keep DIR keeps it)", "The key is removed now; run jwkctl quickstart --keep DIR to keep it."} {
		if !strings.Contains(errOut, want) {
			t.Errorf("narration lacks %q", want)
		}
	}
}

// --alg PS256 --keep: the narration tells the size of the key it made,
// as the kept key file has it, replays with that size, and says where
// the key stays.
func TestQuickstartKeepRSA(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := runCLI(t, "quickstart", "--alg", "PS256", "--keep", dir)
	if code != 0 {
		t.Fatalf("quickstart exit %d: %s", code, errOut)
	}
	path := filepath.Join(dir, "quickstart-client.json")
	k, err := keystore.Open(t.Context(), "file:"+path, keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := k.Public().(*rsa.PublicKey)
	if !ok {
		t.Fatalf("kept key is %T", k.Public())
	}
	bits := strconv.Itoa(pub.N.BitLen())
	kid := mustThumbprint(t, k)
	for _, want := range []string{
		"A new RSA " + bits + "-bit key (PS256)",
		"$ jwkctl keys generate --key file:" + path + " --alg PS256 --bits " + bits,
		"Done. The key stays in " + path + " (kid " + kid + ").",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("narration lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, `"key": "file:`+path+`"`) {
		t.Errorf("summary does not name the kept key: %s", out)
	}
	for _, args := range replayCommands(t, errOut) {
		parseAgainstCLI(t, args)
	}
}
