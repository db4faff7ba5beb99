package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"palisade.dev/palisade/testing/require"
)

// goPID is what memfd-noexec accepts as a PID, written with strconv: the
// decimal form the shim writes (no sign, no leading zero), 1 to
// PID_MAX_LIMIT.
func goPID(s string) int {
	if s == "" || s[0] == '0' || strings.TrimLeft(s, "0123456789") != "" {
		return 0
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v > 4194304 {
		return 0
	}
	return int(v)
}

var pidCases = []string{"1", "42", "4194304", "4194305", "0", "01", "-1", "+1", " 1", "1 ", "1x", "x", "", "99999999999999999999", "2147483648", "4294967297"}

func TestPIDParserMatchesGo(t *testing.T) {
	for _, s := range pidCases {
		if got, want := cPID(s), goPID(s); got != want {
			t.Errorf("pi_pid(%q) = %d, want %d", s, got, want)
		}
	}
}

// FuzzMemfdPID: any argument (an argv string has no NUL).
func FuzzMemfdPID(f *testing.F) {
	for _, s := range pidCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return
		}
		if got, want := cPID(s), goPID(s); got != want {
			t.Errorf("pi_pid(%q) = %d, want %d", s, got, want)
		}
	})
}

const sysctl = "/proc/sys/vm/memfd_noexec"

// memfdTestHost skips unless this host can run memfd-noexec's tests; it
// returns the host's vm.memfd_noexec and the helper.
func memfdTestHost(t *testing.T) (host []byte, helper string) {
	t.Helper()
	if os.Geteuid() != 0 {
		require.Skipf(t, "joining a PID namespace needs root")
	}
	host, err := os.ReadFile(sysctl)
	if err != nil {
		require.Skipf(t, "this kernel has no vm.memfd_noexec (Linux 6.3 or later): %v", err)
	}
	return host, startableHelper(t)
}

// nsSysctl reads vm.memfd_noexec in process pid's PID namespace.
func nsSysctl(t *testing.T, pid string) string {
	t.Helper()
	out, err := exec.Command("nsenter", "--target", pid, "--pid", "--", "cat", sysctl).CombinedOutput()
	if err != nil {
		t.Fatalf("read %s in the namespace: %v: %s", sysctl, err, out)
	}
	return strings.TrimSpace(string(out))
}

// memfd-noexec sets vm.memfd_noexec = 2 in the PID namespace of the process
// it is given, and nowhere else: a process started in a new PID namespace
// reads 2 there while the host's value is unchanged. It is the C path: the
// Go main would refuse (built without its C part).
func TestMemfdNoexecSetsTheTargetNamespaceOnly(t *testing.T) {
	host, helper := memfdTestHost(t)
	sleeper := exec.Command("sleep", "60")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	pid := strconv.Itoa(sleeper.Process.Pid)
	if got := nsSysctl(t, pid); got != strings.TrimSpace(string(host)) {
		t.Fatalf("a new PID namespace starts with %s = %q, the host has %q", sysctl, got, host)
	}
	if out, err := exec.Command(helper, "memfd-noexec", pid).CombinedOutput(); err != nil {
		t.Fatalf("palisade-init memfd-noexec %s: %v: %s", pid, err, out)
	}
	if got := nsSysctl(t, pid); got != "2" {
		t.Errorf("after memfd-noexec the namespace has %s = %q, want 2", sysctl, got)
	}
	if after, _ := os.ReadFile(sysctl); string(after) != string(host) {
		t.Errorf("the host's %s changed from %q to %q", sysctl, host, after)
	}
	// A process in the helper's own namespace (for the shim, the host's) is
	// refused. Tried in a throwaway namespace, where the helper is PID 1 and
	// targets itself: were the check gone, the sysctl, which can only be
	// raised, would be raised there and not on this host.
	out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", helper, "memfd-noexec", "1").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "process 1 is in this process's own pid namespace") {
		t.Errorf("memfd-noexec of a process in the helper's own namespace: %v: %q", err, out)
	}
	// A process that is gone: no namespace to join, exit 1, the reason.
	out, err = exec.Command(helper, "memfd-noexec", "4194304").CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "open the container's pid namespace: open /proc/4194304/ns/pid: no such file or directory") {
		t.Errorf("memfd-noexec of no process: %v: %q", err, out)
	}
}

// memfd-noexec refuses a process that is not the init of its PID namespace.
// The shim passes the init of a container with its own PID namespace (PID
// 1 there); a PID that names any other process means the init died and the
// PID was reused, perhaps by a process of another container or of a pod's
// shared namespace, whose sysctl must not change.
func TestMemfdNoexecRefusesANonInitProcess(t *testing.T) {
	host, helper := memfdTestHost(t)
	// sh is PID 1 of a new namespace, its sleep child PID 2 there.
	sh := exec.Command("sh", "-c", "sleep 60 & wait")
	sh.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sh.Process.Kill(); _ = sh.Wait() }()
	children := fmt.Sprintf("/proc/%d/task/%d/children", sh.Process.Pid, sh.Process.Pid)
	var child string
	for i := 0; child == "" && i < 500; i++ { // bounded: the sleep starts at once
		b, err := os.ReadFile(children)
		if err != nil {
			t.Fatal(err)
		}
		if child = strings.TrimSpace(string(b)); child == "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if child == "" {
		t.Fatalf("no child of sh in %s", children)
	}
	out, err := exec.Command(helper, "memfd-noexec", child).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "process "+child+" is not the init of its pid namespace") {
		t.Errorf("memfd-noexec of a process that is not its namespace's init: %v: %q", err, out)
	}
	if got := nsSysctl(t, child); got != strings.TrimSpace(string(host)) {
		t.Errorf("the namespace's %s changed from %q to %q", sysctl, host, got)
	}
}
