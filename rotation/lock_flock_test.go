//go:build (unix && !aix && !solaris) || illumos

package rotation

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRotationLockHelperProcess is the other process of
// TestRotationLockOtherProcess: it takes the lock, says so, and holds it
// until killed or its stdin closes.
func TestRotationLockHelperProcess(t *testing.T) {
	dir := os.Getenv("JWKCTL_TEST_LOCK_DIR")
	if dir == "" {
		t.Skip("helper process")
	}
	unlock, err := Store{Dir: dir}.Lock("p")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	unlock()
	os.Exit(0)
}

// A lock held by another process is refused with its pid; once that
// process is killed, the lock is free again at once (the kernel drops a
// flock with its holder), though the file still names the dead pid.
func TestRotationLockOtherProcess(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRotationLockHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "JWKCTL_TEST_LOCK_DIR="+s.Dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q %v", line, err)
	}
	_, err = s.Lock("p")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("locked by pid %d on host ", cmd.Process.Pid)) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("lock held by pid %d: %v", cmd.Process.Pid, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if b, _ := os.ReadFile(s.lockPath("p")); !strings.HasPrefix(string(b), fmt.Sprintf("%d@", cmd.Process.Pid)) {
		t.Fatalf("lock file of the killed process holds %q", b)
	}
	unlock, err := s.Lock("p")
	if err != nil {
		t.Fatalf("lock after its holder was killed: %v", err)
	}
	unlock()
	if _, err := os.Stat(s.lockPath("p")); err != nil {
		t.Fatalf("the lock file is removed on unlock: %v", err)
	}
}
