package commands

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Each shell's script parses in that shell. (The bash script's behaviour,
// jwkctl ke<TAB> → keys, is tested in testdata/script/completion.txtar,
// where jwkctl is a command on $PATH.)
func TestCompletionScriptsParse(t *testing.T) {
	for _, tc := range []struct {
		shell string
		check []string
	}{
		{"bash", []string{"bash", "-n"}},
		{"zsh", []string{"zsh", "-n"}},
		{"fish", []string{"fish", "--no-execute"}},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			out, errOut, code := runCLI(t, "completion", tc.shell)
			if code != 0 || out == "" {
				t.Fatalf("completion %s: exit %d, %s", tc.shell, code, errOut)
			}
			if _, err := exec.LookPath(tc.check[0]); err != nil {
				t.Skipf("%s is not installed: its script is not checked", tc.check[0])
			}
			script := filepath.Join(t.TempDir(), "jwkctl."+tc.shell)
			if err := os.WriteFile(script, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd := exec.Command(tc.check[0], append(tc.check[1:], script)...)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s rejects the script: %v\n%s", tc.check[0], err, stderr.String())
			}
		})
	}
	_, errOut, code := runCLI(t, "completion", "tcsh")
	if code != ExitUsage || errOut != "jwkctl: completion: unknown shell \"tcsh\": bash, zsh or fish\n" {
		t.Errorf("unknown shell: exit %d, %q", code, errOut)
	}
	if _, _, code := runCLI(t, "completion"); code != ExitUsage {
		t.Errorf("no shell: exit %d", code)
	}
}
