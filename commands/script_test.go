package commands

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/jwkctl/jwkctl/keystore/file"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
	"github.com/jwkctl/jwkctl/signer"
)

// TestMain lets the script tests run jwkctl as a command inside the test
// binary, exactly as a user types it.
func TestMain(m *testing.M) {
	file.PBES2Count = 1000 // keep encrypted key files fast in tests; production uses 210,000
	testscript.Main(cleanupAfter{m}, map[string]func(){
		"jwkctl": func() { os.Exit(Main(App(), os.Args)) },
	})
}

// cleanupAfter removes the SoftHSM2 test token once the tests are done.
type cleanupAfter struct{ m *testing.M }

func (c cleanupAfter) Run() int {
	code := c.m.Run()
	softhsmtest.Cleanup()
	return code
}

// TestScripts runs testdata/script/*.txtar: CLI sessions with their
// expected output.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "../testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("JWKCTL_CONFIG", env.WorkDir+"/no-config.yaml")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mode":      cmdMode,
			"nlines":    cmdNLines,
			"verifyjws": cmdVerifyJWS,
		},
	})
}

// mode FILE PERM: the file's permission bits are exactly PERM (octal).
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mode FILE PERM")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	if got := uint64(fi.Mode().Perm()); (got == want) == neg {
		ts.Fatalf("%s has mode %04o, want %s%04o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// nlines stdout|stderr N: the last command printed exactly N lines there.
func cmdNLines(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: nlines stdout|stderr N")
	}
	text := ts.ReadFile(args[0])
	n := strings.Count(text, "\n")
	if text != "" && !strings.HasSuffix(text, "\n") {
		n++
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	if (n == want) == neg {
		ts.Fatalf("%s has %d lines, want %d:\n%s", args[0], n, want, text)
	}
}

// verifyjws JWSFILE JWKFILE [member=value...]: the compact JWS in JWSFILE
// verifies with the public JWK (or JWKS) in JWKFILE alone, and its header
// or claims have the given members (header members as h.NAME; exp-iat as
// lifetime).
func cmdVerifyJWS(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: verifyjws JWSFILE JWKFILE [member=value...]")
	}
	err := verifyJWS(ts.ReadFile(args[0]), ts.ReadFile(args[1]), args[2:])
	if neg {
		if err == nil {
			ts.Fatalf("JWS verified, want it not to")
		}
		return
	}
	ts.Check(err)
}

func verifyJWS(jwsText, jwkText string, checks []string) error {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(jwkText), &jwk); err != nil || jwk.Key == nil {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(jwkText), &set); err != nil || len(set.Keys) != 1 {
			return fmt.Errorf("no public JWK in the key file")
		}
		jwk = set.Keys[0]
	}
	if !jwk.IsPublic() {
		return fmt.Errorf("the key file holds a private key")
	}
	obj, err := jose.ParseSignedCompact(strings.TrimSpace(jwsText), signer.Algorithms)
	if err != nil {
		return fmt.Errorf("not a compact JWS: %v", err)
	}
	payload, err := obj.Verify(&jwk)
	if err != nil {
		return fmt.Errorf("signature does not verify with the public JWK: %v", err)
	}
	hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(strings.TrimSpace(jwsText), ".")[0])
	var hdr, claims map[string]any
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return err
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return err
	}
	if exp, ok := claims["exp"].(float64); ok {
		if iat, ok := claims["iat"].(float64); ok {
			claims["lifetime"] = exp - iat
		}
	}
	for _, c := range checks {
		name, want, _ := strings.Cut(c, "=")
		src := claims
		if n, ok := strings.CutPrefix(name, "h."); ok {
			name, src = n, hdr
		}
		if got := fmt.Sprint(src[name]); got != want {
			return fmt.Errorf("%s = %s, want %s", c[:len(c)-len(want)-1], got, want)
		}
	}
	return nil
}
