// Command startbench measures jwkctl's start-up against a hello-world Go
// binary built the same way: whole processes, run interleaved, median of
// -n runs each. It prints the two ratios the README quotes:
//
//	go run ./internal/tools/startbench            # from the repository root
//	go run ./internal/tools/startbench -n 50 -tags urfave_cli_no_docs
//
// The commands are `jwkctl --version` and `jwkctl assertion` with a file key
// (testdata/keys/p256.jwk: an ES256 signature costs tens of microseconds,
// so what is measured is start-up, not the signature).
//
// Two more binaries put the ratios in proportion: "net/http floor" is the
// hello-world with net/http linked (the least any HTTPS client pays: its
// packages' initialisers and a larger binary to fault in), and "lean" is
// jwkctl built with -tags jwkctl_no_gcpkms,jwkctl_no_awskms,jwkctl_no_azurekv
// (file and PKCS#11 keys only; see docs/performance.md).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 30, "runs of each command (at least 20)")
	tags := flag.String("tags", "", "build tags for both binaries")
	keep := flag.String("dir", "", "build into `DIR` and keep the binaries (default: a temporary directory)")
	flag.Parse()
	if err := run(*n, *tags, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "startbench:", err)
		os.Exit(1)
	}
}

const hello = `package main

import "fmt"

func main() { fmt.Println("hello") }
`

// httpFloor is hello-world with net/http linked, unused.
const httpFloor = `package main

import (
	"fmt"
	_ "net/http"
)

func main() { fmt.Println("hello") }
`

// leanTags leave the cloud backends out of jwkctl (commands/backend_*.go).
const leanTags = "jwkctl_no_gcpkms,jwkctl_no_awskms,jwkctl_no_azurekv"

func run(n int, tags, dir string) error {
	if n < 20 {
		return fmt.Errorf("-n %d: take at least 20 runs for a median worth quoting", n)
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "startbench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	build := func(srcDir, out, tags string) error {
		args := []string{"build", "-trimpath", "-o", out}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir, cmd.Stderr = srcDir, os.Stderr
		return cmd.Run()
	}
	buildMain := func(name, src string) (string, error) {
		srcDir := filepath.Join(dir, name)
		if err := os.MkdirAll(srcDir, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(srcDir, "main.go"), []byte(src), 0o644); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(srcDir, "go.mod"), []byte("module "+name+"\n\ngo 1.26\n"), 0o644); err != nil {
			return "", err
		}
		bin := filepath.Join(dir, name+".bin")
		if err := build(srcDir, bin, tags); err != nil {
			return "", fmt.Errorf("build %s: %w", name, err)
		}
		return bin, nil
	}
	helloBin, err := buildMain("hello", hello)
	if err != nil {
		return err
	}
	floorBin, err := buildMain("httpfloor", httpFloor)
	if err != nil {
		return err
	}
	jwkctlBin, leanBin := filepath.Join(dir, "jwkctl"), filepath.Join(dir, "jwkctl-lean")
	if err := build(".", jwkctlBin, tags); err != nil {
		return fmt.Errorf("build jwkctl (run from the repository root): %w", err)
	}
	if err := build(".", leanBin, strings.Trim(tags+","+leanTags, ",")); err != nil {
		return fmt.Errorf("build lean jwkctl: %w", err)
	}
	// A copy, 0600: jwkctl refuses key files others can read.
	jwk, err := os.ReadFile("testdata/keys/p256.jwk")
	if err != nil {
		return err
	}
	key := filepath.Join(dir, "p256.jwk")
	if err := os.WriteFile(key, jwk, 0o600); err != nil {
		return err
	}
	assertion := []string{"assertion", "--key", "file:" + key, "--client-id", "startbench", "--audience", "https://sts.example"}
	cmds := map[string][]string{
		"hello-world":      {helloBin},
		"net/http floor":   {floorBin},
		"jwkctl --version": {jwkctlBin, "--version"},
		"jwkctl assertion": append([]string{jwkctlBin}, assertion...),
		"lean --version":   {leanBin, "--version"},
		"lean assertion":   append([]string{leanBin}, assertion...),
	}
	order := []string{"hello-world", "net/http floor", "jwkctl --version", "jwkctl assertion", "lean --version", "lean assertion"}
	for _, name := range order { // warm the page cache; a failing command is no benchmark
		if out, err := exec.Command(cmds[name][0], cmds[name][1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", name, err, out)
		}
	}
	times := map[string][]time.Duration{}
	for i := 0; i < n; i++ {
		for _, name := range order {
			c := cmds[name]
			start := time.Now()
			if err := exec.Command(c[0], c[1:]...).Run(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			times[name] = append(times[name], time.Since(start))
		}
	}
	med := map[string]time.Duration{}
	for _, name := range order {
		ts := times[name]
		slices.Sort(ts)
		med[name] = ts[len(ts)/2]
		fmt.Printf("%-18s median %8.2f ms  (min %.2f, max %.2f, %d runs)\n", name, ms(med[name]), ms(ts[0]), ms(ts[len(ts)-1]), len(ts))
	}
	// The two the README quotes first, then the rest.
	for _, name := range []string{"jwkctl --version", "jwkctl assertion", "net/http floor", "lean --version", "lean assertion"} {
		fmt.Printf("ratio %-18s %.2f× hello-world\n", name, float64(med[name])/float64(med["hello-world"]))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
