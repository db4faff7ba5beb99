package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade"
	"palisade.dev/palisade/libshim/hostinfo"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Execute(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run("version")
	if code != ExitOK || out != "palisade "+palisade.Version+"\n" {
		t.Fatalf("version: %d %q", code, out)
	}
	code, out, _ = run("version", "-o", "json")
	var v map[string]string
	if code != ExitOK || json.Unmarshal([]byte(out), &v) != nil || v["version"] != palisade.Version {
		t.Fatalf("version -o json: %d %q", code, out)
	}
	if palisade.Version == "" {
		t.Fatal("VERSION is empty")
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, errs := run("version", "-o", "yaml"); code != ExitUsage || !strings.Contains(errs, "--output must be table or json") {
		t.Errorf("bad --output: %d %q", code, errs)
	}
	if code, _, _ := run("no-such-command"); code != ExitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
}

func TestDoctorJSON(t *testing.T) {
	code, out, errs := run("doctor", "--address", "", "-o", "json")
	if code != ExitOK {
		t.Fatalf("doctor: %d %s", code, errs)
	}
	var checks []hostinfo.Check
	if err := json.Unmarshal([]byte(out), &checks); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range checks {
		names[c.Name] = true
		if c.Status == "" || c.Detail == "" {
			t.Errorf("check %+v has no status or detail", c)
		}
	}
	for _, want := range []string{"cgroups", "seccomp", "landlock", "selinux", "apparmor", "runc", "crun"} {
		if !names[want] {
			t.Errorf("doctor does not report %s", want)
		}
	}
	if names["containerd"] {
		t.Error("containerd checked although --address was empty")
	}
}

func TestSeccompCheckBothArches(t *testing.T) {
	got := seccompCheck(t, "open", "mount", "read", "clone:0x10000011", "clone:0x11", "arch_prctl", "io_uring_setup")
	want := map[string]string{
		"amd64 open": "allow", "arm64 open": "absent",
		"amd64 mount": "errno EPERM", "arm64 mount": "errno EPERM",
		"amd64 read": "allow", "arm64 read": "allow",
		"amd64 clone:0x10000011": "errno EPERM", "arm64 clone:0x10000011": "errno EPERM",
		"amd64 clone:0x11": "allow", "arm64 clone:0x11": "allow",
		"amd64 arch_prctl": "allow", "arm64 arch_prctl": "absent",
		"amd64 io_uring_setup": "errno EPERM", "arm64 io_uring_setup": "errno EPERM",
		// compat ABIs are not in the filter: any call through them kills
		"amd64/x86 read": "kill-thread", "amd64/x32 read": "kill-thread", "arm64/arm read": "kill-thread",
		"amd64/x86 mount": "kill-thread", "arm64/arm mount": "kill-thread",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
}

// --compat-abi resolves the filter as a profile with seccomp.compat_abi =
// true gets it: 32-bit calls follow the rules instead of being killed.
func TestSeccompCheckCompatABI(t *testing.T) {
	got := seccompCheck(t, "--compat-abi", "read", "mount")
	want := map[string]string{
		"amd64/x86 read": "allow", "amd64/x32 read": "allow", "arm64/arm read": "allow",
		"amd64/x86 mount": "errno EPERM", "amd64/x32 mount": "errno EPERM", "arm64/arm mount": "errno EPERM",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
}

// --workload-profile combines a pod's own profile with the node's as the
// shim does: the pod's denial of mkdir stands, the node's of mount too,
// and a call a pod allows but the node denies stays denied.
func TestSeccompCheckWorkloadProfile(t *testing.T) {
	pod := filepath.Join(t.TempDir(), "pod.json")
	if err := os.WriteFile(pod, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64"],`+
		`"syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	got := seccompCheck(t, "--workload-profile", pod, "mkdirat", "read", "mount")
	want := map[string]string{
		"amd64 mkdirat": "errno EPERM", "arm64 mkdirat": "errno EPERM",
		"amd64 read": "allow", "arm64 read": "allow",
		"amd64 mount": "errno EPERM", "arm64 mount": "errno EPERM",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if base := seccompCheck(t, "mkdirat"); base["amd64 mkdirat"] != "allow" {
		t.Errorf("palisade-default alone: mkdirat = %q, want allow (else the test proves nothing)", base["amd64 mkdirat"])
	}
}

// seccompCheck runs palisade seccomp check -o json and returns the action
// per "ARCH[/ABI] SYSCALL[:ARG0]".
func seccompCheck(t *testing.T, args ...string) map[string]string {
	t.Helper()
	code, out, errs := run(append([]string{"seccomp", "check", "-o", "json"}, args...)...)
	if code != ExitOK {
		t.Fatalf("check: %d %s", code, errs)
	}
	var vs []struct {
		Syscall, Arch, ABI, Action string
		Args                       []uint64
	}
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range vs {
		key := v.Arch
		if v.ABI != "" {
			key += "/" + v.ABI
		}
		key += " " + v.Syscall
		if len(v.Args) > 0 {
			key += fmt.Sprintf(":%#x", v.Args[0])
		}
		got[key] = v.Action
	}
	return got
}

func TestSeccompDiff(t *testing.T) {
	code, out, errs := run("seccomp", "diff", "--arch", "amd64", "--cap", "SYS_ADMIN", "docker-default", "palisade-default")
	if code != ExitOK {
		t.Fatalf("diff: %d %s", code, errs)
	}
	for _, line := range []string{"mount", "unshare", "setns", "ptrace", "clone3"} {
		if !strings.Contains(out, "amd64  "+line) {
			t.Errorf("diff lacks %s:\n%s", line, out)
		}
	}
	if strings.Contains(out, "amd64  read ") {
		t.Errorf("diff reports read, which both allow:\n%s", out)
	}
	if code, _, _ := run("seccomp", "check", "--arch", "riscv64", "read"); code != ExitUsage {
		t.Errorf("unsupported arch: exit %d", code)
	}
	if code, _, errs := run("seccomp", "check", "--profile", "nope", "read"); code != ExitFailed || !strings.Contains(errs, "unknown seccomp profile") {
		t.Errorf("unknown profile: %d %s", code, errs)
	}
}
