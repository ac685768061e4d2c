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
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	helloDir := filepath.Join(dir, "hello")
	if err := os.MkdirAll(helloDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(helloDir, "main.go"), []byte(hello), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(helloDir, "go.mod"), []byte("module hello\n\ngo 1.26\n"), 0o644); err != nil {
		return err
	}
	helloBin, jwkctlBin := filepath.Join(dir, "hello.bin"), filepath.Join(dir, "jwkctl")
	build := func(srcDir, out string) error {
		args := []string{"build", "-trimpath", "-o", out}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir, cmd.Stderr = srcDir, os.Stderr
		return cmd.Run()
	}
	if err := build(helloDir, helloBin); err != nil {
		return fmt.Errorf("build hello-world: %w", err)
	}
	if err := build(".", jwkctlBin); err != nil {
		return fmt.Errorf("build jwkctl (run from the repository root): %w", err)
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
	cmds := map[string][]string{
		"hello-world":      {helloBin},
		"jwkctl --version": {jwkctlBin, "--version"},
		"jwkctl assertion": {jwkctlBin, "assertion", "--key", "file:" + key, "--client-id", "startbench", "--audience", "https://sts.example"},
	}
	order := []string{"hello-world", "jwkctl --version", "jwkctl assertion"}
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
	for _, name := range order[1:] {
		fmt.Printf("ratio %-18s %.2f× hello-world\n", name, float64(med[name])/float64(med["hello-world"]))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
