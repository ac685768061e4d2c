package main

import (
	"bufio"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// No Docker engine runs in CI, so the image itself is not built here. What
// can go wrong without one being noticed is checked: the Dockerfile's own
// build command still makes a static binary (the distroless static base has
// no libc to load a dynamic one), the image runs as the nonroot user, and
// the binary links none of the packages left out for start-up time (each
// linked package's init runs at every start; docs/performance.md).
func TestDockerfileBuildsStaticNonRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if runtime.GOOS != "linux" {
		t.Skip("checks a Linux ELF binary")
	}
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var build, user, final string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "RUN CGO_ENABLED=0 go build"):
			build = strings.TrimSuffix(strings.TrimPrefix(line, "RUN "), `\`)
		case strings.HasPrefix(line, "USER "):
			user = strings.TrimPrefix(line, "USER ")
		case strings.HasPrefix(line, "FROM "):
			final = strings.Fields(line)[1]
		}
	}
	if build == "" {
		t.Fatal("Dockerfile has no `RUN CGO_ENABLED=0 go build` line")
	}
	if !strings.Contains(final, "distroless/static") || !strings.HasSuffix(final, ":nonroot") {
		t.Errorf("final stage FROM %s, want a distroless static nonroot base", final)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q, want a non-root uid", user)
	}

	out := filepath.Join(t.TempDir(), "jwkctl")
	// Run the line as the image's shell would, with only the output moved.
	cmd := exec.Command("sh", "-c", regexp.MustCompile(`-o \S+`).ReplaceAllString(build, "-o "+out))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, b)
	}
	bin, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the Dockerfile's binary is dynamically linked; distroless static cannot run it")
		}
	}
	if v, err := exec.Command(out, "--version").Output(); err != nil || !strings.HasPrefix(string(v), "jwkctl") {
		t.Fatalf("%s --version = %q, %v", out, v, err)
	}
	// The build info lists every module with a linked package.
	info, err := buildinfo.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range info.Deps {
		for gone, why := range map[string]string{
			"github.com/cpuguy83/go-md2man":   "urfave_cli_no_docs",
			"github.com/russross/blackfriday": "urfave_cli_no_docs",
			"github.com/prometheus/":          "the agent's metrics are internal/promtext",
			// Cloud KMS is called over REST: the gRPC client chain's
			// initialisers cost every command ~10 ms.
			"google.golang.org/grpc":       "Cloud KMS over REST",
			"google.golang.org/protobuf":   "Cloud KMS over REST",
			"google.golang.org/genproto":   "Cloud KMS over REST",
			"cloud.google.com/go/kms":      "Cloud KMS over REST",
			"github.com/googleapis/gax-go": "Cloud KMS over REST",
			"go.opentelemetry.io/":         "Cloud KMS over REST",
		} {
			if strings.HasPrefix(d.Path, gone) {
				t.Errorf("the Dockerfile's binary links %s (left out: %s)", d.Path, why)
			}
		}
	}
}
