package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

// The raw syscalls palisade's default profile denies, tried from inside.
var deniedSyscalls = []string{"mount", "keyctl", "bpf", "ptrace", "io_uring_setup", "perf_event_open", "userfaultfd", "unshare-user", "clone-newuser"}

func syscallScript() string {
	var cmds []string
	for _, s := range deniedSyscalls {
		cmds = append(cmds, "probe try syscall "+s)
	}
	return strings.Join(cmds, "; ")
}

func TestSeccompDefaultFromInside(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "report")
	r := e.Run(id, nil, "/usr/bin/probe", "report")
	if rep := parseReport(t, r); r.Err != nil || rep.Seccomp != "2" {
		t.Fatalf("Seccomp mode inside = %q, want 2 (filter): %v", rep.Seccomp, r)
	}

	id = containerID(t, "denied")
	r = e.Run(id, nil, "/bin/sh", "-c", syscallScript())
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	for i, o := range parseOutcomes(t, r) {
		if o.OK || o.Errno != "EPERM" {
			t.Errorf("%s: %+v, want EPERM from seccomp", deniedSyscalls[i], o)
		}
	}

	// Ordinary work still works under the filter.
	id = containerID(t, "ordinary")
	r = e.Run(id, nil, "/bin/sh", "-c",
		"echo hello > /tmp/f && cat /tmp/f && ls / > /dev/null && date > /dev/null && probe try threads 16 && probe try loopback")
	if r.Err != nil {
		t.Fatalf("ordinary work failed under seccomp: %v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 3 || lines[0] != "hello" || !strings.Contains(lines[1], `"threads=16"`) || !strings.Contains(lines[2], `"ok":true`) {
		t.Errorf("shell, file IO, threads, loopback: %q", r.Stdout)
	}
}

// The same calls succeed when the admin lets a workload run unconfined: the
// EPERM above comes from the seccomp filter, not from missing capabilities.
func TestSeccompUnconfinedOnlyWithAdminConsent(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "refused")
	r := e.Run(id, []string{"--annotation", "palisade.dev/seccomp-profile=unconfined"}, "/bin/true")
	if r.Err == nil || !strings.Contains(r.Stderr, `running without seccomp is not allowed for profile "restricted" on this node [rule seccomp, profile restricted]`) {
		t.Errorf("unconfined without the admin's consent: %v", r)
	}
	assertClean(t, e, id)

	cfg := adminConfig(t, e, "[overrides.restricted]\nseccomp_unconfined = true\n")
	id = containerID(t, "unconfined")
	args := []string{"run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg,
		"--annotation", "palisade.dev/seccomp-profile=unconfined", e.Image(), id, "/bin/sh", "-c", "probe report; " + syscallScript()}
	r = e.Ctr(args...)
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	lines := strings.SplitN(strings.TrimSpace(r.Stdout), "\n", 2)
	if !strings.Contains(lines[0], `"seccomp":"0"`) {
		t.Errorf("unconfined container reports %s", lines[0])
	}
	r.Stdout = lines[1]
	allowed := map[string]bool{}
	for i, o := range parseOutcomes(t, r) {
		allowed[deniedSyscalls[i]] = o.OK || o.Errno != "EPERM"
	}
	for _, s := range []string{"ptrace", "io_uring_setup", "keyctl"} {
		if !allowed[s] {
			t.Errorf("%s is still refused with EPERM without seccomp: the default test proves nothing for it", s)
		}
	}
}

// A seccomp profile with a misspelt syscall refuses the container at load,
// naming the file, the rule, the name and the architecture.
func TestSeccompBadProfileRefused(t *testing.T) {
	e := needEnv(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "seccomp"), 0o700); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "seccomp", "typo.json")
	body := `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],` +
		`"syscalls":[{"names":["read","write","opne"],"action":"SCMP_ACT_ALLOW"}]}`
	if err := os.WriteFile(bad, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	prof := "name = \"typo\"\n[pids]\nlimit = 64\n[seccomp]\nprofile = \"typo\"\n"
	if err := os.WriteFile(filepath.Join(dir, "typo.toml"), []byte(prof), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := adminConfig(t, e, "profiles_dir = \""+dir+"\"\ndefault_profile = \"typo\"\n")
	id := containerID(t, "typo")
	r := e.Ctr("run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg, e.Image(), id, "/bin/true")
	want := `invalid seccomp profile ` + bad + `: syscalls[0]: unknown syscall "opne" on amd64`
	if r.Err == nil || !strings.Contains(r.Stderr, want) {
		t.Errorf("want refusal containing %q, got %v", want, r)
	}
	assertClean(t, e, id)
}

// A 32-bit program (the probe built for 386) talks to the kernel through
// the compat system call ABI. Under the default profile the filter covers
// the native ABI only, so its first system call kills it with SIGSYS (the
// shell sees status 128+31); the same image under a profile with
// seccomp.compat_abi = true runs it, still under the filter, and the audit
// record says which ABIs each container got.
func TestSeccompCompatABIKilledByDefault(t *testing.T) {
	e := needEnv(t)
	// Not every 64-bit CPU runs 32-bit code (many arm64 servers have no
	// AArch32): then there is nothing for the filter to kill.
	if out, err := exec.Command(filepath.Join(e.Rootfs(), "usr", "bin", "probe32"), "report").CombinedOutput(); err != nil {
		t.Skipf("this host cannot run the 32-bit probe at all (%v: %s): the compat ABI test needs a CPU and kernel with 32-bit support", err, out)
	}
	script := "probe32 report; echo status=$?; probe report > /dev/null; echo native=$?"

	id := containerID(t, "native-only")
	r := e.Run(id, nil, "/bin/sh", "-c", script)
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	if !strings.Contains(r.Stdout, "status=159") || !strings.Contains(r.Stdout, "native=0") {
		t.Errorf("a 32-bit program under the default profile: want it killed by SIGSYS (status=159) and the native probe to run: %v", r)
	}
	if c := seccompChange(t, e, id); !strings.Contains(c, "native ABI only, x86 and x32 calls are killed") {
		t.Errorf("audit record of the native-only container: seccomp change %q", c)
	}

	cfg := adminConfig(t, e, "[overrides.restricted]\nseccomp_compat_abi = true\n")
	id = containerID(t, "compat")
	r = e.Ctr("run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg, e.Image(), id, "/bin/sh", "-c", script)
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 3 || lines[1] != "status=0" || lines[2] != "native=0" {
		t.Fatalf("a 32-bit program with seccomp_compat_abi = true: %v", r)
	}
	r.Stdout = lines[0]
	if rep := parseReport(t, r); rep.Seccomp != "2" {
		t.Errorf("the 32-bit program runs without a seccomp filter (mode %q): compat_abi must keep the filter", rep.Seccomp)
	}
	if c := seccompChange(t, e, id); !strings.Contains(c, "compat ABIs allowed: x86, x32") {
		t.Errorf("audit record of the compat container: seccomp change %q", c)
	}
}

// seccompChange is the seccomp rule's change in a container's create record.
func seccompChange(t *testing.T, e *harness.Env, id string) string {
	t.Helper()
	rec := findRecord(auditRecords(t, e, id), audit.EventCreate)
	if rec == nil {
		t.Fatalf("no create record for %s", id)
	}
	for _, c := range rec.Changes {
		if c.Rule == "seccomp" {
			return fmt.Sprint(c.After)
		}
	}
	return ""
}
