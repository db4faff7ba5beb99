package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

// seccompRecords sums a container's seccomp-would-deny records per call.
func seccompRecords(t *testing.T, e *harness.Env, id string) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	for _, rec := range auditRecords(t, e, id) {
		if rec.Event != audit.EventSeccompWouldDeny {
			continue
		}
		if rec.Mode != "alert" || rec.Schema != audit.Schema || rec.Profile == "" {
			t.Errorf("seccomp record without its container's mode, schema or profile: %+v", rec)
		}
		for _, s := range rec.Syscalls {
			if s.First.IsZero() || s.Last.Before(s.First) || s.Arch == "" {
				t.Errorf("seccomp record entry %+v", s)
			}
			got[s.Name] += s.Count
		}
	}
	return got
}

// execRecords sums a container's exec-would-refuse records per program
// as the process named it and as it resolved: "PATH -> RESOLVED".
func execRecords(t *testing.T, e *harness.Env, id string) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	for _, rec := range auditRecords(t, e, id) {
		if rec.Event == audit.EventExecWouldRefuse {
			for _, x := range rec.Executables {
				got[x.Path+" -> "+x.Resolved] += x.Count
			}
		}
	}
	return got
}

// A workload in alert mode calls what palisade's seccomp profile denies
// (unshare) and runs a program outside its exec allow-list from inside:
// both succeed, and the audit file holds the container's records with the
// counts. The same calls under the enforced profile fail with EPERM.
func TestAlertSeccompRecorded(t *testing.T) {
	e := needEnv(t)
	cfg, _ := rolloutProfiles(t, e, "")
	script := "probe try syscall unshare0; probe try syscall unshare0; probe try syscall unshare0; probe try exec /bin/busybox true; probe try exec /bin/busybox true"
	id := containerID(t, "alert")
	r := runProfile(e, cfg, "webapp", id, nil, "/bin/sh", "-c", script)
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	for _, o := range parseOutcomes(t, r) {
		if !o.OK {
			t.Errorf("unshare in alert mode: %+v, want success", o)
		}
	}
	if n := seccompRecords(t, e, id)["unshare"]; n != 3 {
		t.Errorf("recorded unshare %d times, want 3 (records %+v)", n, auditRecords(t, e, id))
	}
	// probe (on the list) ran busybox twice from inside; the shell itself
	// (/bin/sh, busybox too) was run by runc's init inside the container
	execs := execRecords(t, e, id)
	if execs["/bin/busybox -> /bin/busybox"] != 2 || execs["/bin/sh -> /bin/busybox"] != 1 || execs["/usr/bin/probe -> /usr/bin/probe"] != 0 {
		t.Errorf("programs recorded from inside: %v", execs)
	}
	assertClean(t, e, id)

	id = containerID(t, "enforce")
	r = e.Run(id, nil, "/bin/sh", "-c", script)
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	for i, o := range parseOutcomes(t, r) {
		if i < 3 && (o.OK || o.Errno != "EPERM") {
			t.Errorf("unshare in enforce mode: %+v, want EPERM", o)
		}
	}
	if n := len(seccompRecords(t, e, id)); n != 0 {
		t.Errorf("enforce mode wrote %d seccomp records", n)
	}
}

// Enforce mode hands nothing to a listener: the hardened config.json runc
// gets has no listenerPath and no SCMP_ACT_NOTIFY rule; in alert mode it
// names the shim's agent socket, which only root can reach and which
// no path inside the container leads to.
func TestAlertSeccompRendered(t *testing.T) {
	e := needEnv(t)
	cfg, _ := rolloutProfiles(t, e, "")
	read := func(id string) (*specs.LinuxSeccomp, string) {
		t.Helper()
		bundle := filepath.Join(e.Dir, "state", "io.containerd.runtime.v2.task", e.Namespace, id)
		data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var s specs.Spec
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		return s.Linux.Seccomp, string(data)
	}
	id := containerID(t, "enforce")
	if r := e.Ctr("run", "-d", "--runtime", harness.Runtime, e.Image(), id, "/usr/bin/probe", "sleep", "300"); r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	defer removeContainer(t, e, id)
	sc, raw := read(id)
	if sc == nil || sc.ListenerPath != "" || strings.Contains(raw, "SCMP_ACT_NOTIFY") {
		t.Errorf("enforce mode's filter hands calls to a listener: %+v", sc)
	}

	id2 := containerID(t, "alert")
	args := []string{"run", "-d", "--runtime", harness.Runtime, "--runtime-config-path", cfg,
		"--annotation", "palisade.dev/profile=webapp", e.Image(), id2, "/usr/bin/probe", "sleep", "300"}
	if r := e.Ctr(args...); r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	defer removeContainer(t, e, id2)
	sc, _ = read(id2)
	if sc == nil || !strings.HasPrefix(sc.ListenerPath, "/run/palisade/alert/") {
		t.Fatalf("alert mode's filter: %+v", sc)
	}
	st, err := os.Stat(sc.ListenerPath)
	if err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("agent socket %v %v, want a socket of mode 0600", st, err)
	}
	if dir, err := os.Stat(filepath.Dir(sc.ListenerPath)); err != nil || dir.Mode().Perm() != 0o700 {
		t.Errorf("agent directory %v %v, want mode 0700", dir, err)
	}
	// from inside, as root of the container, the socket's path leads nowhere
	r := e.Ctr("tasks", "exec", "--exec-id", "look", id2, "/usr/bin/probe", "try", "read", sc.ListenerPath)
	if o := parseOutcomes(t, r); len(o) != 1 || o[0].OK || o[0].Errno != "ENOENT" {
		t.Errorf("the agent socket is reachable from inside: %v", r)
	}
}
