package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"palisade.dev/palisade/libshim/secrets"
	"palisade.dev/palisade/testing/harness"
)

// runLeftovers lists what palisade run may leave: its temporary directories,
// their mounts, runc containers and cgroups, and secrets mounts.
func runLeftovers(t *testing.T) []string {
	t.Helper()
	var left []string
	dirs, _ := filepath.Glob(os.TempDir() + "/palisade-run-*")
	left = append(left, dirs...)
	for _, pattern := range []string{"/sys/fs/cgroup/*/palisade-run/palisade-run-*", "/sys/fs/cgroup/palisade-run/palisade-run-*"} {
		cgs, _ := filepath.Glob(pattern)
		left = append(left, cgs...)
	}
	all, _ := secrets.Mounted()
	for _, m := range all {
		if strings.Contains(m, "palisade-run-") {
			left = append(left, "secrets mount "+m)
		}
	}
	return left
}

func palisadeRun(e *harness.Env, args ...string) (harness.Result, *exec.Cmd) {
	cmd := e.Command("palisade", append([]string{"run", "--config", e.AdminConfig, "--rootfs", e.Rootfs()}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := harness.Result{Args: cmd.Args, Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.ExitCode = ee.ExitCode()
	}
	return r, cmd
}

// palisade run applies the same protections as the shim, from the same pipeline.
func TestPalisadeRunSameProtections(t *testing.T) {
	e := needEnv(t)
	r, _ := palisadeRun(e, "--", "/usr/bin/probe", "report")
	if r.Err != nil {
		t.Fatalf("palisade run: %v", r)
	}
	var rep report
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &rep); err != nil {
		t.Fatalf("%v: %s", err, r)
	}
	if rep.UID != 65534 || rep.NoNewPrivs != 1 || rep.Seccomp != "2" {
		t.Errorf("uid %d nnp %d seccomp %s", rep.UID, rep.NoNewPrivs, rep.Seccomp)
	}
	for set, l := range rep.Caps {
		for _, c := range l {
			if c != "CAP_NET_BIND_SERVICE" {
				t.Errorf("%s holds %s", set, c)
			}
		}
	}
	r, _ = palisadeRun(e, "--", "/bin/sh", "-c", "probe try write /etc/x; probe try rawsocket; probe try syscall io_uring_setup; exit 7")
	if r.ExitCode != 7 {
		t.Errorf("exit code %d, want the container's 7: %v", r.ExitCode, r)
	}
	for _, o := range parseOutcomes(t, r) {
		if o.OK {
			t.Errorf("allowed under palisade run: %+v", o)
		}
	}
	if left := runLeftovers(t); len(left) > 0 {
		t.Errorf("palisade run left %v", left)
	}
}

func TestPalisadeRunRefusesAndSecrets(t *testing.T) {
	e := needEnv(t)
	r, _ := palisadeRun(e, "--annotation", "palisade.dev/cap-add=SYS_ADMIN", "--", "/bin/true")
	if r.ExitCode != 3 || !strings.Contains(r.Stderr, `capability CAP_SYS_ADMIN is not allowed by profile "restricted" (allowed: NET_BIND_SERVICE) [rule capabilities, profile restricted]`) {
		t.Errorf("refusal: %v", r)
	}
	secretFile := t.TempDir() + "/db"
	if err := os.WriteFile(secretFile, []byte("run-secret-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, _ = palisadeRun(e, "--secret", "db="+secretFile, "--env", "DB_PASSWORD=palisade-secret:db", "--", "/bin/sh", "-c", `cat "$DB_PASSWORD_FILE"; env | grep -c run-secret-value || true`)
	if r.Err != nil || r.Stdout != "run-secret-value0\n" {
		t.Errorf("secret through palisade run: %q %v", r.Stdout, r)
	}
	// The flag and the annotation name the same secret once each: merged,
	// with the annotation's target. A bare command name finds sh through
	// the default PATH, as under ctr and nerdctl.
	r, _ = palisadeRun(e, "--secret", "db="+secretFile, "--annotation", "palisade.dev/secrets=db=/etc/database", "--", "sh", "-c", "cat /etc/database")
	if r.Err != nil || r.Stdout != "run-secret-value" {
		t.Errorf("--secret with the same secret in palisade.dev/secrets, and sh from PATH: %q %v", r.Stdout, r)
	}
	if left := runLeftovers(t); len(left) > 0 {
		t.Errorf("palisade run left %v", left)
	}
}

// Ctrl-C mid-run stops the container and removes everything.
func TestPalisadeRunInterrupted(t *testing.T) {
	e := needEnv(t)
	cmd := e.Command("palisade", "run", "--config", e.AdminConfig, "--rootfs", e.Rootfs(), "--", "/bin/sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(runLeftovers(t)) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let it start the container
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // interrupted on purpose: its status says nothing
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("palisade run did not stop on SIGINT")
	}
	if left := runLeftovers(t); len(left) > 0 {
		t.Errorf("palisade run left %v after SIGINT", left)
	}
}
