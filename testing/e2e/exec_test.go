package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

// execProfiles writes admin profiles for the exec allow-list tests. /tmp is
// mounted exec here, so that when a copy in /tmp cannot run it is the
// allow-list (Landlock) that stops it, not noexec.
func execProfiles(t *testing.T, e *harness.Env) string {
	t.Helper()
	dir := t.TempDir()
	base := "[pids]\nlimit = 256\n[[filesystem.tmpfs]]\npath = \"/tmp\"\nsize = \"64m\"\nexec = true\n"
	profiles := map[string]string{
		"allowbb":    "[exec]\nmode = \"enforce\"\nallow = [\"/bin/busybox\"]\n",
		"allowprobe": "[exec]\nmode = \"enforce\"\nallow = [\"/usr/bin/probe\"]\n",
		"auditbb":    "[exec]\nmode = \"audit\"\nallow = [\"/bin/busybox\"]\n",
		"openexec":   "",
	}
	for name, extra := range profiles {
		body := "name = \"" + name + "\"\n" + extra + base
		if err := os.WriteFile(filepath.Join(dir, name+".toml"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return adminConfig(t, e, "profiles_dir = \""+dir+"\"\nselectable_profiles = [\"allowbb\", \"allowprobe\", \"auditbb\", \"openexec\", \"locked\"]\n")
}

func runProfile(e *harness.Env, cfg, profile, id string, extra []string, cmd ...string) harness.Result {
	args := []string{"run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg, "--annotation", "palisade.dev/profile=" + profile}
	args = append(append(args, extra...), e.Image(), id)
	return e.Ctr(append(args, cmd...)...)
}

func TestExecAllowlistEntrypointRefused(t *testing.T) {
	e := needEnv(t)
	cfg := execProfiles(t, e)
	id := containerID(t, "probe")
	r := runProfile(e, cfg, "allowbb", id, nil, "/usr/bin/probe", "report")
	want := `palisade: container ` + e.Namespace + `/` + id + `: permission denied: "/usr/bin/probe" resolves to /usr/bin/probe, which is not on the exec allow-list (/bin/busybox; from profile allowbb) [rule exec-allowlist, profile allowbb]`
	if r.Err == nil || !strings.Contains(r.Stderr, want) {
		t.Errorf("want %s\ngot %v", want, r)
	}
	assertClean(t, e, id)
}

// A shell started from the allowed busybox cannot execute the probe, a copy
// of busybox in (exec-mounted) /tmp, or anything else: the kernel says EACCES.
func TestExecAllowlistEnforcedByKernel(t *testing.T) {
	e := needEnv(t)
	cfg := execProfiles(t, e)
	script := "echo shell-ok; /usr/bin/probe report; echo probe=$?; cp /bin/busybox /tmp/bb; /tmp/bb true; echo copy=$?"
	id := containerID(t, "sh")
	r := runProfile(e, cfg, "allowbb", id, nil, "/bin/sh", "-c", script)
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	for _, want := range []string{"shell-ok", "probe=126", "copy=126"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("output lacks %q:\nstdout: %s\nstderr: %s", want, r.Stdout, r.Stderr)
		}
	}
	if !strings.Contains(r.Stdout+r.Stderr, "Permission denied") {
		t.Errorf("no EACCES (Permission denied) from the shell: %s %s", r.Stdout, r.Stderr)
	}

	// The probe is the allowed program here: a copy of it, and a memfd
	// holding busybox, must not run; without the list (control) both do.
	for _, c := range []struct {
		profile string
		ok      bool
	}{{"allowprobe", false}, {"openexec", true}} {
		id = containerID(t, c.profile)
		r = runProfile(e, cfg, c.profile, id, nil, "/usr/bin/probe", "try", "copyexec", "/usr/bin/probe", "/tmp/copy")
		if o := parseOutcomes(t, r); r.Err != nil || o[0].OK != c.ok || (!c.ok && o[0].Errno != "EACCES") {
			t.Errorf("%s: copy of the allowed probe: %+v %v", c.profile, o, r.Err)
		}
		id = containerID(t, c.profile+"-memfd")
		r = runProfile(e, cfg, c.profile, id, nil, "/usr/bin/probe", "try", "memfdexec", "/bin/busybox", "true")
		if o := parseOutcomes(t, r); r.Err != nil || o[0].OK != c.ok || (!c.ok && o[0].Errno != "EACCES") {
			t.Errorf("%s: memfd exec of busybox: %+v %v", c.profile, o, r.Err)
		}
	}
}

// ctr task exec of a program off the list is refused at the API; an
// allowed shell runs, and what it starts is held by the kernel.
func TestExecAllowlistExecAPI(t *testing.T) {
	e := needEnv(t)
	cfg := execProfiles(t, e)
	id := containerID(t, "api")
	args := []string{"run", "-d", "--runtime", harness.Runtime, "--runtime-config-path", cfg, "--annotation", "palisade.dev/profile=allowbb", e.Image(), id, "/bin/sleep", "300"}
	if r := e.Ctr(args...); r.Err != nil {
		t.Fatalf("run -d: %v", r)
	}
	defer removeContainer(t, e, id)
	r := e.Ctr("tasks", "exec", "--exec-id", "p1", id, "/usr/bin/probe", "report")
	if r.Err == nil || !strings.Contains(r.Stderr, "permission denied") || !strings.Contains(r.Stderr, "/usr/bin/probe, which is not on the exec allow-list") {
		t.Errorf("exec of the probe: %v", r)
	}
	r = e.Ctr("tasks", "exec", "--exec-id", "s1", id, "/bin/sh", "-c", "/usr/bin/probe report; echo rc=$?")
	if r.Err != nil || !strings.Contains(r.Stdout, "rc=126") {
		t.Errorf("probe started by an exec'd shell: %v", r)
	}
	var refused bool
	for _, rec := range auditRecords(t, e, id) {
		refused = refused || (rec.Event == audit.EventExec && rec.ExecID == "p1" && rec.Result == audit.ResultRefused)
	}
	if !refused {
		t.Error("the refused exec has no audit record")
	}
}

// entrypoint-only (the built-in locked profile): the entrypoint runs, nothing else.
func TestExecAllowlistEntrypointOnly(t *testing.T) {
	e := needEnv(t)
	cfg := execProfiles(t, e)
	id := containerID(t, "locked")
	r := runProfile(e, cfg, "locked", id, nil, "/bin/sh", "-c", "echo entrypoint-ok; /usr/bin/probe report; echo probe=$?")
	if r.Err != nil || !strings.Contains(r.Stdout, "entrypoint-ok") || !strings.Contains(r.Stdout, "probe=126") {
		t.Errorf("locked: %v", r)
	}
	rec := findRecord(auditRecords(t, e, id), audit.EventCreate)
	if rec == nil || rec.Profile != "locked" {
		t.Fatalf("audit: %+v", rec)
	}
}

// audit mode records what would be refused and blocks nothing.
func TestExecAllowlistAuditMode(t *testing.T) {
	e := needEnv(t)
	cfg := execProfiles(t, e)
	id := containerID(t, "audit")
	r := runProfile(e, cfg, "auditbb", id, nil, "/usr/bin/probe", "report")
	if r.Err != nil {
		t.Fatalf("audit mode blocked the entrypoint: %v", r)
	}
	rec := findRecord(auditRecords(t, e, id), audit.EventCreate)
	found := false
	for _, c := range rec.Changes {
		found = found || (c.Rule == "exec-allowlist" && strings.Contains(c.After.(string), "audit mode, would refuse"))
	}
	if !found {
		t.Errorf("no would-be refusal in the audit record: %+v", rec.Changes)
	}
}
