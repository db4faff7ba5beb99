package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/testing/harness"
)

// runcSpec reads the config.json runc got for a container.
func runcSpec(t *testing.T, e *harness.Env, id string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.Dir, "state", "io.containerd.runtime.v2.task", e.Namespace, id, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// seccompStatus is the Seccomp and Seccomp_filters lines of a status file
// read inside the container.
func seccompStatus(t *testing.T, e *harness.Env, id, execID, file string) string {
	t.Helper()
	r := e.Ctr("tasks", "exec", "--exec-id", execID, id, "/bin/grep", "-E", "^Seccomp(_filters)?:", file)
	if r.Err != nil {
		t.Fatalf("exec grep %s: %v", file, r)
	}
	return strings.Join(strings.Fields(r.Stdout), " ")
}

// Under the default profile the filter is compiled by the shim and loaded
// by palisade-init (libshim/launch/seccomp.go), not by runc: config.json
// has no seccomp section and the process starts through the helper's copy
// nobody may read. Probed from inside: the container's process and an exec
// process each hold exactly one filter, it denies what the profile denies,
// answers ENOSYS past the profile's last system call as runc's stub does,
// and the helper cannot be read (so the kernel runs it non-dumpable).
func TestSeccompLoadedByPalisadeInit(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "scload")
	startDetached(t, e, id)
	defer removeContainer(t, e, id)

	s := runcSpec(t, e, id)
	if s.Linux.Seccomp != nil {
		t.Errorf("config.json still has a seccomp section: runc loads the filter")
	}
	if a := s.Process.Args; len(a) < 5 || a[0] != execguard.HelperPath || a[1] != "seccomp" || a[3] != "--" {
		t.Fatalf("the process does not start through palisade-init seccomp: %.80q", a)
	}
	last := s.Mounts[len(s.Mounts)-1]
	if last.Destination != execguard.HelperPath || last.Source == e.Binary("palisade-init") {
		t.Errorf("last mount %+v: want palisade-init's unreadable copy at %s", last, execguard.HelperPath)
	}
	if st, err := os.Stat(last.Source); err != nil || st.Mode().Perm() != 0o111 {
		t.Errorf("the helper copy %s: %v %v, want mode 0111", last.Source, st, err)
	}

	for _, c := range []struct{ exec, file string }{{"st1", "/proc/1/status"}, {"st2", "/proc/self/status"}} {
		if got := seccompStatus(t, e, id, c.exec, c.file); got != "Seccomp: 2 Seccomp_filters: 1" {
			t.Errorf("%s: %q, want one filter in mode 2", c.file, got)
		}
	}
	r := e.Ctr("tasks", "exec", "--exec-id", "probes", id, "/bin/sh", "-c",
		"probe try syscall unshare0; probe try syscall keyctl; probe try badexec nr 1000; probe try read "+execguard.HelperPath)
	got := parseOutcomes(t, r)
	want := []struct{ errno string }{{"EPERM"}, {"EPERM"}, {"ENOSYS"}, {"EACCES"}}
	if len(got) != len(want) {
		t.Fatalf("outcomes %v: %v", got, r)
	}
	for i, w := range want {
		if got[i].OK || got[i].Errno != w.errno {
			t.Errorf("%s: %+v, want %s", got[i].Action, got[i], w.errno)
		}
	}

	// the container's own process, from its first instruction after the
	// helper: the same denials
	id2 := containerID(t, "scinit")
	r = e.Run(id2, nil, "/bin/sh", "-c", "probe try syscall unshare0; probe try badexec nr 1000")
	if o := parseOutcomes(t, r); len(o) != 2 || o[0].OK || o[0].Errno != "EPERM" || o[1].Errno != "ENOSYS" {
		t.Errorf("the container's process: %v (%v)", o, r)
	}
	assertClean(t, e, id2)
}

// Where the moment before palisade-init's filter could be reached from the
// container — here a profile granting CAP_DAC_OVERRIDE, which reads any
// file — runc loads the filter as before, and it holds as before.
func TestSeccompLoadedByRuncWhereTheHelperCouldBeRead(t *testing.T) {
	e := needEnv(t)
	cfg := adminConfig(t, e, `selectable_profiles = ["baseline"]`)
	id := containerID(t, "scrunc")
	if r := e.Ctr("run", "-d", "--runtime", harness.Runtime, "--runtime-config-path", cfg,
		"--annotation", "palisade.dev/profile=baseline", e.Image(), id, "/usr/bin/probe", "sleep", "300"); r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	defer removeContainer(t, e, id)
	s := runcSpec(t, e, id)
	if s.Linux.Seccomp == nil {
		t.Fatalf("config.json has no seccomp section under baseline (CAP_DAC_OVERRIDE)")
	}
	if s.Process.Args[0] == execguard.HelperPath {
		t.Errorf("the process starts through palisade-init: %.80q", s.Process.Args)
	}
	if got := seccompStatus(t, e, id, "st", "/proc/self/status"); got != "Seccomp: 2 Seccomp_filters: 1" {
		t.Errorf("exec process: %q, want one filter in mode 2", got)
	}
	r := e.Ctr("tasks", "exec", "--exec-id", "probes", id, "/bin/sh", "-c", "probe try syscall unshare0; probe try badexec nr 1000")
	if o := parseOutcomes(t, r); len(o) != 2 || o[0].OK || o[0].Errno != "EPERM" || o[1].Errno != "ENOSYS" {
		t.Errorf("under runc's filter: %v (%v)", o, r)
	}
}
