package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/audit"
)

// A container run under palisade prints what the probe sees from inside; the
// client asked for new privileges (--allow-new-privs) and palisade took them
// away, which also proves the palisade shim, not the stock one, created it.
func TestRunHardensAndPrints(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "run")
	r := e.Run(id, []string{"--allow-new-privs"}, "/usr/bin/probe", "report")
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	rep := parseReport(t, r)
	if rep.NoNewPrivs != 1 {
		t.Errorf("no_new_privs inside the container = %d, want 1 (the client asked for --allow-new-privs)", rep.NoNewPrivs)
	}
	assertClean(t, e, id)

	rec := findRecord(auditRecords(t, e, id), audit.EventCreate)
	if rec == nil {
		t.Fatalf("no create audit record for %s", id)
	}
	if rec.Result != audit.ResultAllowed || rec.Namespace != e.Namespace || rec.Config != e.AdminConfig {
		t.Errorf("audit record = %+v, want allowed in namespace %s with config %s", rec, e.Namespace, e.AdminConfig)
	}
	found := false
	for _, c := range rec.Changes {
		found = found || c.Rule == "no-new-privileges"
	}
	if !found {
		t.Errorf("audit record has no no-new-privileges change: %+v", rec.Changes)
	}
}

func TestExitCodeReachesCaller(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "exit")
	r := e.Run(id, nil, "/usr/bin/probe", "exit", "7")
	if r.ExitCode != 7 {
		t.Fatalf("ctr run exit code = %d, want 7: %v", r.ExitCode, r)
	}
	assertClean(t, e, id)
}

// Exec works, and the exec process is hardened like the init process.
func TestExecIsHardened(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "exec")
	startDetached(t, e, id, "--allow-new-privs")
	r := e.Ctr("tasks", "exec", "--exec-id", "probe1", id, "/usr/bin/probe", "report")
	if r.Err != nil {
		t.Fatalf("exec: %v", r)
	}
	if rep := parseReport(t, r); rep.NoNewPrivs != 1 {
		t.Errorf("exec process no_new_privs = %d, want 1", rep.NoNewPrivs)
	}
	if r := e.Ctr("tasks", "exec", "--exec-id", "sh1", id, "/bin/sh", "-c", "exit 3"); r.ExitCode != 3 {
		t.Errorf("exec exit code = %d, want 3: %v", r.ExitCode, r)
	}
	if rec := findRecord(auditRecords(t, e, id), audit.EventExec); rec == nil || rec.ExecID == "" {
		t.Errorf("no exec audit record for %s", id)
	}
	removeContainer(t, e, id)
	if rec := findRecord(auditRecords(t, e, id), audit.EventDelete); rec == nil {
		t.Errorf("no delete audit record for %s", id)
	}
}

// A running container outlives a containerd restart and stays controllable.
func TestSurvivesContainerdRestart(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "restart")
	startDetached(t, e, id)
	if err := e.StopContainerd(); err != nil {
		t.Fatal(err)
	}
	if err := e.StartContainerd(); err != nil {
		t.Fatal(err)
	}
	if st := taskStatus(e, id); st != "RUNNING" {
		t.Fatalf("after the restart the task is %q, want RUNNING", st)
	}
	r := e.Ctr("tasks", "exec", "--exec-id", "after-restart", id, "/usr/bin/probe", "report")
	if r.Err != nil {
		t.Fatalf("exec after restart: %v", r)
	}
	if rep := parseReport(t, r); rep.NoNewPrivs != 1 {
		t.Errorf("exec after restart: no_new_privs = %d, want 1", rep.NoNewPrivs)
	}
	removeContainer(t, e, id)
}

// A broken admin config refuses the container with an error naming the
// file, the line and the field, and leaves nothing behind.
func TestBrokenAdminConfigRefuses(t *testing.T) {
	e := needEnv(t)
	bad := filepath.Join(e.ConfigDir, "broken.toml")
	if err := os.WriteFile(bad, []byte("version = 1\n[runc]\nrooot = \"/run/x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := containerID(t, "badcfg")
	args := []string{"run", "--rm", "--runtime", "io.containerd.palisade.v2", "--runtime-config-path", bad, e.Image(), id, "/bin/true"}
	r := e.Ctr(args...)
	if r.Err == nil {
		t.Fatalf("container started despite a broken admin config: %v", r)
	}
	want := "invalid admin config " + bad + ":3: field \"runc.rooot\": unknown field"
	if !strings.Contains(r.Stderr, want) {
		t.Errorf("error does not name the file, line and field\nwant substring: %s\ngot: %s", want, r.Stderr)
	}
	if strings.Contains(e.Ctr("containers", "list", "-q").Stdout, id) {
		t.Errorf("container %s exists after the refusal", id)
	}
	assertClean(t, e, id)
}

// Containers sharing one shim (the runc shim's grouping label, as CRI does
// per pod): a refused container does not disturb the one already running.
func TestSharedShimKeepsServingAfterRefusal(t *testing.T) {
	e := needEnv(t)
	group := containerID(t, "group")
	a := containerID(t, "a")
	label := "io.containerd.runc.v2.group=" + group
	startDetached(t, e, a, "--annotation", label)
	bad := filepath.Join(e.ConfigDir, "broken-version.toml")
	if err := os.WriteFile(bad, []byte("version = 99\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := containerID(t, "b")
	r := e.Ctr("run", "--rm", "--annotation", label, "--runtime", "io.containerd.palisade.v2", "--runtime-config-path", bad, e.Image(), b, "/bin/true")
	if r.Err == nil || !strings.Contains(r.Stderr, `field "version": schema version 99 is not supported`) {
		t.Fatalf("second container was not refused with the config error: %v", r)
	}
	if st := taskStatus(e, a); st != "RUNNING" {
		t.Fatalf("first container is %q after the refusal in its shim, want RUNNING", st)
	}
	if r := e.Ctr("tasks", "exec", "--exec-id", "still-served", a, "/bin/true"); r.Err != nil {
		t.Fatalf("the shared shim stopped serving: %v", r)
	}
	assertClean(t, e, b)
	removeContainer(t, e, a)
	assertClean(t, e, group) // the group's shim exits with its last container
}

// A client cannot point the shim at an admin config of its own: only the
// directories the node administrator named are trusted.
func TestUntrustedAdminConfigRefused(t *testing.T) {
	e := needEnv(t)
	mine := filepath.Join(t.TempDir(), "mine.toml")
	if err := os.WriteFile(mine, []byte("[overrides.restricted]\ncapabilities_allowed = [\"SYS_ADMIN\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := containerID(t, "mine")
	r := e.Ctr("run", "--rm", "--runtime", "io.containerd.palisade.v2", "--runtime-config-path", mine, "--cap-add", "CAP_SYS_ADMIN", e.Image(), id, "/bin/true")
	if r.Err == nil || !strings.Contains(r.Stderr, "admin config "+mine+" is not one the node administrator trusts") {
		t.Errorf("client-chosen config: %v", r)
	}
	assertClean(t, e, id)
}
