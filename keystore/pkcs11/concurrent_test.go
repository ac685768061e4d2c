//go:build cgo

package pkcs11_test

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	p11 "github.com/miekg/pkcs11"

	"github.com/jwkctl/jwkctl/keystore"
	"github.com/jwkctl/jwkctl/keystore/pkcs11"
	"github.com/jwkctl/jwkctl/keystore/pkcs11/softhsmtest"
)

// Several processes generating (or importing) a key with the same label at
// once, each already logged in so they really race: in every round exactly
// one succeeds, the others are refused with ErrExists, and afterwards the
// URI opens the winner's key and the token holds just its two halves.
func TestConcurrentGenerateOneLabel(t *testing.T) {
	race(t, "TestConcurrentGenerateOneLabel")
}

// Without the per-token lock (as between hosts sharing a network HSM, or
// against another tool), the check after making still lets at most one
// of the racing makers keep its key: the others remove theirs, so the URI
// opens the winner's key, or names none if every racer backed off. The
// racers are goroutines of this process: SoftHSM2 shows a process another
// process's new objects only after a delay when both write at once (it
// misses a generation bump made between two of its own), a delay a real
// HSM does not have; within one process its view is exact.
//
// SoftHSM2 now and then fails one of several keys made at the same instant
// and leaves a half-made private key without CKA_ID or CKA_LABEL, which
// breaks every later key lookup on that token ("key id or label cannot both
// be empty"). So the race runs in a child process with a token of its own,
// and the tests after it keep a clean one.
func TestConcurrentGenerateWithoutLock(t *testing.T) {
	if os.Getenv("JWKCTL_NOLOCK_CHILD") != "1" {
		softhsmtest.Token(t) // skips, or fails under JWKCTL_REQUIRE_SOFTHSM, as the others do
		cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentGenerateWithoutLock$", "-test.count=1", "-test.v")
		// The child makes its own token: softhsmtest points SOFTHSM2_CONF
		// at a new directory before the module is loaded there.
		cmd.Env = append(os.Environ(), "JWKCTL_NOLOCK_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestConcurrentGenerateWithoutLock") {
			t.Fatalf("the lock-free race (in a child process): %v\n%s", err, out)
		}
		return
	}
	tok := softhsmtest.Token(t)
	pkcs11.SetTokenLocks(false)
	t.Cleanup(func() { pkcs11.SetTokenLocks(true) })
	const racers, rounds = 4, 24
	winners := 0
	for round := range rounds {
		op := []string{"generate", "import"}[round%2]
		label := fmt.Sprintf("nolock-%d-%s", round, randHex(t))
		uri := tok.URI(label)
		results := make(chan string, racers)
		start := make(chan struct{})
		for range racers {
			go func() {
				<-start
				results <- makeKey(op, uri)
			}()
		}
		close(start)
		var won []string
		for range racers {
			r := <-results
			switch {
			case strings.HasPrefix(r, "ok "):
				won = append(won, strings.TrimPrefix(r, "ok "))
			case !strings.Contains(r, keystore.ErrExists.Error()):
				// SoftHSM2 itself now and then fails one of several
				// objects made at the same instant in one process
				// (CKR_GENERAL_ERROR). That is the token's error, not a
				// second winner; what is left on the token is checked
				// below.
				t.Logf("round %d (%s): a racer failed with %q", round, op, r)
			}
		}
		if len(won) > 1 {
			t.Fatalf("round %d (%s): %d of %d racers made %s, want at most 1", round, op, len(won), racers, label)
		}
		checkOutcome(t, tok, round, op, uri, label, won)
		winners += len(won)
	}
	t.Logf("%d of %d rounds had a winner", winners, rounds)
}

func race(t *testing.T, name string) {
	if os.Getenv("JWKCTL_RACE_CHILD") == "1" {
		raceChild(t)
		return
	}
	tok := softhsmtest.Token(t)
	const procs, rounds = 4, 16
	type child struct {
		in  io.WriteCloser
		out *bufio.Scanner
	}
	var children []child
	for range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), // SOFTHSM2_CONF and the PIN variable come along
			"JWKCTL_RACE_CHILD=1", "JWKCTL_RACE_TOKEN="+tok.TokenURI())
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			in.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("child: %v", err)
			}
		})
		c := child{in, bufio.NewScanner(out)}
		// One at a time: SoftHSM2 stumbles over several processes logging
		// in to a token at the same instant (CKR_GENERAL_ERROR), which is
		// not what this test is about.
		if r := result(t, c.out); r != "ready" {
			t.Fatalf("child: %s", r)
		}
		children = append(children, c)
	}
	for round := range rounds {
		op := []string{"generate", "import"}[round%2]
		label := fmt.Sprintf("race-%d-%s", round, randHex(t))
		uri := tok.URI(label)
		for _, c := range children {
			fmt.Fprintf(c.in, "%s %s\n", op, uri)
		}
		var won []string
		for _, c := range children {
			r := result(t, c.out)
			switch {
			case strings.HasPrefix(r, "ok "):
				won = append(won, strings.TrimPrefix(r, "ok "))
			case !strings.Contains(r, keystore.ErrExists.Error()):
				t.Errorf("round %d (%s): a loser failed with %q, want %q", round, op, r, keystore.ErrExists)
			}
		}
		if len(won) != 1 {
			t.Fatalf("round %d (%s): %d of %d processes made %s, want exactly 1", round, op, len(won), procs, label)
		}
		checkOutcome(t, tok, round, op, uri, label, won)
	}
}

// checkOutcome checks the token after a round: the URI opens the
// winner's key and the token holds its two halves, or, with no winner,
// nothing has the label.
func checkOutcome(t *testing.T, tok *softhsmtest.T, round int, op, uri, label string, won []string) {
	t.Helper()
	if len(won) == 0 {
		if _, err := keystore.Open(ctx, uri, keystore.Options{}); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("round %d (%s): every racer backed off, but opening the URI gives %v", round, op, err)
		}
		if n := countLabelled(t, tok, label); n != 0 {
			t.Fatalf("round %d (%s): every racer backed off, but %d objects are labelled %s", round, op, n, label)
		}
		return
	}
	k, err := keystore.Open(ctx, uri, keystore.Options{})
	if err != nil {
		t.Fatalf("round %d (%s): the URI does not open afterwards: %v", round, op, err)
	}
	if kid := thumbprint(t, k.Public()); kid != won[0] {
		t.Fatalf("round %d (%s): the URI opens key %s, the winner made %s", round, op, kid, won[0])
	}
	if n := countLabelled(t, tok, label); n != 2 {
		t.Fatalf("round %d (%s): %d objects labelled %s on the token, want the winner's 2", round, op, n, label)
	}
}

// result is the next "RESULT …" line a child prints.
func result(t *testing.T, out *bufio.Scanner) string {
	t.Helper()
	for out.Scan() {
		if line, ok := strings.CutPrefix(out.Text(), "RESULT "); ok {
			return line
		}
	}
	t.Fatalf("a child ended without a result: %v", out.Err())
	return ""
}

// raceChild logs in, says it is ready, then for each "generate URI" or
// "import URI" line on stdin makes the key and answers "ok KID" or the
// error.
func raceChild(t *testing.T) {
	if _, err := keystore.List(ctx, os.Getenv("JWKCTL_RACE_TOKEN"), keystore.Options{}); err != nil {
		fmt.Printf("RESULT log in: %v\n", err)
		return
	}
	fmt.Println("RESULT ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		op, uri, _ := strings.Cut(sc.Text(), " ")
		fmt.Printf("RESULT %s\n", makeKey(op, uri))
	}
}

// makeKey generates or imports an ES256 key at uri and says "ok KID", or
// gives the error on one line.
func makeKey(op, uri string) string {
	u, err := keystore.Parse(uri)
	if err != nil {
		return err.Error()
	}
	var k keystore.Key
	switch op {
	case "generate":
		spec, _ := keystore.SpecFor(jose.ES256, 0)
		k, err = keystore.Generate(ctx, keystore.GenerateRequest{URI: u, Spec: spec})
	case "import":
		priv, gerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if gerr != nil {
			return gerr.Error()
		}
		k, err = keystore.Import(ctx, keystore.ImportRequest{URI: u, Private: priv})
	default:
		return "unknown operation " + op
	}
	if err != nil {
		return strings.ReplaceAll(err.Error(), "\n", " ")
	}
	tp, err := (&jose.JSONWebKey{Key: k.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return err.Error()
	}
	return "ok " + hex.EncodeToString(tp)
}

func thumbprint(t *testing.T, pub any) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(tp)
}

// countLabelled counts the objects of any class labelled label, in a
// session of the test's own.
func countLabelled(t *testing.T, tok *softhsmtest.T, label string) int {
	t.Helper()
	p, sh := openDirect(t, tok)
	if err := p.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
		t.Fatal(err)
	}
	defer p.FindObjectsFinal(sh)
	objs, _, err := p.FindObjects(sh, 100)
	if err != nil {
		t.Fatal(err)
	}
	return len(objs)
}

func randHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
