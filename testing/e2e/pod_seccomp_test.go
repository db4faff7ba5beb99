package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade/testing/harness"
)

// Where the admin lets a workload run without palisade's seccomp filter
// (overrides.PROFILE.seccomp_unconfined) and it asks for that, a filter the
// workload brought itself (a pod's Localhost profile, here ctr's
// --seccomp-profile) still applies: a workload may always ask for less.
// The calls palisade's own filter would deny are allowed, as the workload
// asked, but its own denial of mkdir holds.
func TestUnconfinedKeepsWorkloadFilter(t *testing.T) {
	e := needEnv(t)
	profile := filepath.Join(t.TempDir(), "deny-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64"],`+
		`"listenerPath":"/run/palisade-no-such-agent.sock","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := adminConfig(t, e, "[overrides.restricted]\nseccomp_unconfined = true\n")
	id := containerID(t, "own")
	r := e.Ctr("run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg,
		"--annotation", "palisade.dev/seccomp-profile=unconfined", "--seccomp", "--seccomp-profile", profile,
		e.Image(), id, "/bin/sh", "-c", "mkdir /tmp/made; echo mkdir=$?; /usr/bin/probe try syscall keyctl")
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	if !strings.Contains(r.Stdout, "mkdir=1") || !strings.Contains(r.Stdout+r.Stderr, "Operation not permitted") {
		t.Errorf("mkdir under the workload's own filter that denies it: %s", r)
	}
	if !strings.Contains(r.Stdout, `{"action":"syscall","ok":true}`) {
		t.Errorf("keyctl (palisade's filter denies it, the workload's does not) was denied: %s", r.Stdout)
	}
	assertClean(t, e, id)
}
