package commands

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionText(t *testing.T) {
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "abc1234def5678"},
			{Key: "vcs.time", Value: "2026-12-01T09:30:00Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	for _, tc := range []struct {
		name    string
		bi      *debug.BuildInfo
		ok      bool
		ldflags string
		want    string
	}{
		{"tagged", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}, Settings: vcs("false")}, true, "", "v0.3.1 (rev abc1234, 2026-12-01)"},
		{"changed tree", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1+dirty"}, Settings: vcs("true")}, true, "", "v0.3.1+dirty (rev abc1234, 2026-12-01, modified)"},
		{"devel with VCS", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("true")}, true, "", "(devel) (rev abc1234, 2026-12-01, modified)"},
		{"no VCS", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "", "(devel)"},
		{"go install of a version", &debug.BuildInfo{Main: debug.Module{Version: "v1.0.0"}}, true, "", "v1.0.0"},
		{"ldflags win", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")}, true, "v9.9.9", "v9.9.9 (rev abc1234, 2026-12-01)"},
		{"no build info", nil, false, "", "(devel)"},
		{"no build info, ldflags", nil, false, "v2.0.0", "v2.0.0"},
	} {
		if got := versionText(tc.bi, tc.ok, tc.ldflags); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// --version prints "jwkctl " and the version text, and an -ldflags
// version wins.
func TestVersionFlag(t *testing.T) {
	out, _, code := runCLI(t, "--version")
	if code != 0 || out != "jwkctl "+appVersion()+"\n" || strings.Contains(out, "dev\n") {
		t.Fatalf("--version: exit %d, %q", code, out)
	}
	old := Version
	defer func() { Version = old }()
	Version = "v9.9.9"
	if out, _, _ := runCLI(t, "--version"); !strings.HasPrefix(out, "jwkctl v9.9.9") {
		t.Fatalf("with Version set: %q", out)
	}
}

// A binary built from a tagged git checkout says its tag, revision and
// date.
func TestVersionOfBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds jwkctl; skipped with -short")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// The module's Go files as they are now, in a fresh repository.
	repo := t.TempDir()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" || d.Name() == "interop") {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(repo, rel), 0o755)
		}
		if !strings.HasSuffix(p, ".go") && rel != "go.mod" && rel != "go.sum" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(repo, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, errb.String())
		}
		return out.String()
	}
	run(git, "init", "-q")
	run(git, "add", "-A")
	run(git, "commit", "-q", "-m", "snapshot")
	run(git, "tag", "v0.3.1")
	rev := strings.TrimSpace(run(git, "rev-parse", "--short=7", "HEAD"))
	bin := filepath.Join(t.TempDir(), "jwkctl")
	// -trimpath keeps the cache entries independent of the temporary
	// directory, and without cgo nothing needs a C compiler.
	run("go", "build", "-buildvcs=true", "-trimpath", "-o", bin, ".")
	out := run(bin, "--version")
	m := regexp.MustCompile(`^jwkctl (\S+) \(rev ([0-9a-f]{7}), (\d{4}-\d\d-\d\d)\)\n$`).FindStringSubmatch(out)
	if m == nil || m[1] != "v0.3.1" || m[2] != rev {
		t.Fatalf("--version printed %q, want jwkctl v0.3.1 (rev %s, DATE)", out, rev)
	}
}
