package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

// allOK fails the test unless the container ran and every probe in it
// succeeded.
func allOK(t *testing.T, r harness.Result, what string) {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("%s: %v", what, r)
	}
	for _, o := range parseOutcomes(t, r) {
		if !o.OK {
			t.Errorf("%s: %+v, want success", what, o)
		}
	}
}

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
	allOK(t, runProfile(e, cfg, "webapp", id, nil, "/bin/sh", "-c", script), "alert mode")
	if n := seccompRecords(t, e, id)["unshare"]; n != 3 {
		t.Errorf("recorded unshare %d times, want 3 (records %+v)", n, auditRecords(t, e, id))
	}
	// probe (on the list) ran busybox twice from inside; the shell itself
	// (/bin/sh, busybox too) was run by runc's init inside the container
	execs := execRecords(t, e, id)
	if execs["/bin/busybox -> /bin/busybox"] != 2 || execs["/bin/sh -> /bin/busybox"] != 1 || execs["/usr/bin/probe -> /usr/bin/probe"] != 0 {
		t.Errorf("programs recorded from inside: %v", execs)
	}
	out, err := e.Command("palisade", "explain", "--config", cfg, "--container", id, "-n", e.Namespace).CombinedOutput()
	if err != nil || !regexp.MustCompile(`system call unshare \(SCMP_ARCH_(X86_64|AARCH64)\) the profile would deny: \d+ times`).Match(out) ||
		!strings.Contains(string(out), "program /bin/busybox not on the exec allow-list: ") {
		t.Errorf("explain does not show what alert mode saw: %v\n%s", err, out)
	}
	assertClean(t, e, id)

	id = containerID(t, "enforce")
	r := e.Run(id, nil, "/bin/sh", "-c", script)
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
		data, err := os.ReadFile(filepath.Join(e.Dir, "state", "io.containerd.runtime.v2.task", e.Namespace, id, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		return runcSpec(t, e, id).Linux.Seccomp, string(data)
	}
	id := containerID(t, "enforce")
	if r := e.Ctr("run", "-d", "--runtime", harness.Runtime, e.Image(), id, "/usr/bin/probe", "sleep", "300"); r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	defer removeContainer(t, e, id)
	_, raw := read(id)
	if sc := renderedSeccomp(t, e, id); sc.ListenerPath != "" || strings.Contains(raw, "SCMP_ACT_NOTIFY") {
		t.Errorf("enforce mode's filter hands calls to a listener: %+v", sc)
	}

	id2 := containerID(t, "alert")
	args := []string{"run", "-d", "--runtime", harness.Runtime, "--runtime-config-path", cfg,
		"--annotation", "palisade.dev/profile=webapp", e.Image(), id2, "/usr/bin/probe", "sleep", "300"}
	if r := e.Ctr(args...); r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	defer removeContainer(t, e, id2)
	sc, _ := read(id2)
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

// Alert → learn → enforce from inside the container: a workload in alert
// mode makes a system call its profile denies and runs a program outside
// its exec allow-list; `palisade profile learn` writes a profile (and its
// seccomp profile) admitting exactly those; enforced, the same workload
// runs, and another system call or another program is refused by the
// kernel.
func TestAlertLearnEnforceFromInside(t *testing.T) {
	e := needEnv(t)
	cfg, dir := rolloutProfiles(t, e, "")
	script := "probe try syscall unshare0; probe try exec /bin/busybox true"
	id := containerID(t, "observe")
	allOK(t, runProfile(e, cfg, "webapp", id, nil, "/bin/sh", "-c", script), "alert mode")
	for _, rec := range auditRecords(t, e, id) {
		if rec.Event == audit.EventSeccompWouldDeny || rec.Event == audit.EventExecWouldRefuse {
			data, _ := json.Marshal(rec)
			t.Logf("%s record: %s", rec.Event, data)
		}
	}
	rep, err := e.Command("palisade", "report", "--audit", e.AuditLog).CombinedOutput()
	if err != nil || !strings.Contains(string(rep), "seccomp syscall unshare (SCMP_ARCH_X86_64)") && !strings.Contains(string(rep), "seccomp syscall unshare (SCMP_ARCH_AARCH64)") ||
		!strings.Contains(string(rep), "executable /bin/busybox -> /bin/busybox") {
		t.Fatalf("palisade report: %v\n%s", err, rep)
	}
	t.Logf("palisade report:\n%s", rep)

	learned := filepath.Join(dir, "webapp-learned.toml")
	out, err := learn(e, cfg, "webapp-learned", learned, "--container", e.Namespace+"/"+id)
	if err != nil {
		t.Fatalf("palisade profile learn: %v\n%s", err, out)
	}
	text, err := os.ReadFile(learned)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := os.ReadFile(filepath.Join(dir, "seccomp", "webapp-learned.json"))
	if err != nil || !strings.Contains(string(text), "system call unshare: denied by seccomp profile palisade-default") ||
		!strings.Contains(string(text), "executable /bin/busybox: run from inside") || !strings.Contains(string(text), "profile = 'webapp-learned'") {
		t.Fatalf("learned profile (%v):\n%s", err, text)
	}
	t.Logf("learned profile:\n%s\nits seccomp profile's learned rule:\n%s", text, sc[strings.LastIndex(string(sc), "{"):])

	// the same, gathered over every container of the image (other tests'
	// alert-mode containers in this environment included)
	byImage := filepath.Join(t.TempDir(), "byimage.toml")
	if out, err := learn(e, cfg, "byimage", byImage, "--image", e.Image()); err != nil {
		t.Fatalf("palisade profile learn --image: %v\n%s", err, out)
	}
	if text, err := os.ReadFile(byImage); err != nil || !strings.Contains(string(text), "for image "+e.Image()) ||
		!strings.Contains(string(text), "system call unshare: denied by seccomp profile palisade-default") {
		t.Errorf("learned by image (%v):\n%s", err, text)
	}

	id2 := containerID(t, "learned")
	allOK(t, runProfile(e, cfg, "webapp-learned", id2, nil, "/bin/sh", "-c", script), "the learned profile, enforced")
	id3 := containerID(t, "new")
	r := runProfile(e, cfg, "webapp-learned", id3, nil, "/bin/sh", "-c", "probe try syscall keyctl; probe try exec /usr/bin/probe32 report")
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	o := parseOutcomes(t, r)
	if len(o) != 2 || o[0].OK || o[0].Errno != "EPERM" || o[1].OK || o[1].Errno != "EACCES" {
		t.Errorf("a new system call and a new program under the learned profile: %+v, want EPERM and EACCES", o)
	}
	if n := len(seccompRecords(t, e, id3)) + len(execRecords(t, e, id3)); n != 0 {
		t.Errorf("the enforced profile wrote %d alert records", n)
	}
}
