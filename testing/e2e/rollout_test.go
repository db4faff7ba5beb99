package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

// rolloutProfiles writes an admin config with a profiles directory holding
// "webapp" in alert mode (exec list: the probe only; no capabilities), and
// returns the config's path and the directory.
func rolloutProfiles(t *testing.T, e *harness.Env, extra string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	body := "name = \"webapp\"\nmode = \"alert\"\n[exec]\nmode = \"enforce\"\nallow = [\"/usr/bin/probe\"]\n[pids]\nlimit = 64\n"
	if err := os.WriteFile(filepath.Join(dir, "webapp.toml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := adminConfig(t, e, "profiles_dir = \""+dir+"\"\nselectable_profiles = [\"webapp\", \"webapp-learned\"]\n"+extra)
	return cfg, dir
}

// learn runs `palisade profile learn` over the environment's audit file,
// from the parent profile webapp, for the records selector chooses
// (--container, --pod or --image), writing profile name to out.
func learn(e *harness.Env, cfg, name, out string, selector ...string) ([]byte, error) {
	args := append([]string{"profile", "learn", "--config", cfg, "--from-audit", e.AuditLog}, selector...)
	return e.Command("palisade", append(args, "--parent", "webapp", "--name", name, "--out", out)...).CombinedOutput()
}

// Alert mode → learn → review → enforce, for real: a workload under an
// alert-mode profile does what the profile would refuse (an executable
// outside its list, a capability it lacks); the container runs, and the
// audit file records would-be refusals. `palisade report` shows them;
// `palisade profile learn` writes a profile admitting exactly those; under
// it, enforced, the workload runs, and a new action outside it is refused.
func TestAlertLearnEnforce(t *testing.T) {
	e := needEnv(t)
	cfg, dir := rolloutProfiles(t, e, "")
	id := containerID(t, "alert")
	args := []string{"run", "-d", "--runtime", harness.Runtime, "--runtime-config-path", cfg,
		"--annotation", "palisade.dev/profile=webapp", "--annotation", "palisade.dev/cap-add=NET_BIND_SERVICE",
		e.Image(), id, "/usr/bin/probe", "sleep", "300"}
	if r := e.Ctr(args...); r.Err != nil {
		t.Fatalf("alert mode refused the container: %v", r)
	}
	defer removeContainer(t, e, id)
	// an executable outside the list, through the exec API: runs, recorded
	if r := e.Ctr("tasks", "exec", "--exec-id", "x1", id, "/bin/true"); r.Err != nil {
		t.Fatalf("alert mode refused an exec: %v", r)
	}
	var created *audit.Record
	var wouldCap, wouldExec bool
	for _, rec := range auditRecords(t, e, id) {
		if rec.Event == audit.EventCreate {
			created = &rec
		}
		for _, c := range rec.Changes {
			if w := c.WouldRefuse; w != nil {
				wouldCap = wouldCap || (w.Subject == audit.SubjectCapability && w.Value == "CAP_NET_BIND_SERVICE")
				wouldExec = wouldExec || (w.Subject == audit.SubjectExecutable && w.Value == "/bin/busybox")
			}
		}
	}
	if created == nil || created.Mode != "alert" || created.Result != audit.ResultAllowed || created.Schema != audit.Schema {
		t.Fatalf("create record %+v", created)
	}
	if !wouldCap || !wouldExec {
		t.Fatalf("would-be refusals not recorded (capability %v, executable %v)", wouldCap, wouldExec)
	}

	rep := e.Command("palisade", "report", "--audit", e.AuditLog)
	out, err := rep.CombinedOutput()
	if err != nil || !strings.Contains(string(out), e.Namespace+"/"+id) || !strings.Contains(string(out), "would refuse") ||
		!strings.Contains(string(out), "executable /bin/busybox") || !strings.Contains(string(out), "capability CAP_NET_BIND_SERVICE") {
		t.Fatalf("palisade report: %v\n%s", err, out)
	}

	learned := filepath.Join(dir, "webapp-learned.toml")
	if out, err := learn(e, cfg, "webapp-learned", learned, "--container", e.Namespace+"/"+id); err != nil {
		t.Fatalf("palisade profile learn: %v\n%s", err, out)
	}
	text, err := os.ReadFile(learned)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "executable /bin/busybox: would have been refused") || !strings.Contains(string(text), "mode = 'enforce'") {
		t.Fatalf("learned profile:\n%s", text)
	}
	if out, err := e.Command("palisade", "profile", "lint", learned).CombinedOutput(); err != nil {
		t.Fatalf("the learned profile does not lint: %v\n%s", err, out)
	}
	// The review in CI (--strict) points at what deserves a human's look:
	// busybox, a multi-call binary, lets the workload run any applet.
	if out, err := e.Command("palisade", "profile", "lint", "--strict", learned).CombinedOutput(); err == nil || !strings.Contains(string(out), "/bin/busybox can run arbitrary code") {
		t.Fatalf("lint --strict of the learned profile: %v\n%s", err, out)
	}

	// The review in words: exactly what the learned profile grants beyond its parent.
	if out, err := e.Command("palisade", "profile", "diff", "--config", cfg, "webapp", learned).CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "executable /bin/busybox: B allows it, A does not") || !strings.Contains(string(out), "capability CAP_NET_BIND_SERVICE: B allows it") {
		t.Fatalf("palisade profile diff: %v\n%s", err, out)
	}

	// Enforced: what it did runs; anything new is refused.
	id2 := containerID(t, "learned")
	args = []string{"run", "-d", "--runtime", harness.Runtime, "--runtime-config-path", cfg,
		"--annotation", "palisade.dev/profile=webapp-learned", "--annotation", "palisade.dev/cap-add=NET_BIND_SERVICE",
		e.Image(), id2, "/usr/bin/probe", "sleep", "300"}
	if r := e.Ctr(args...); r.Err != nil {
		t.Fatalf("the learned profile refused the workload: %v", r)
	}
	defer removeContainer(t, e, id2)
	if r := e.Ctr("tasks", "exec", "--exec-id", "y1", id2, "/bin/true"); r.Err != nil {
		t.Errorf("the learned profile refused what the workload did: %v", r)
	}
	if r := e.Ctr("tasks", "exec", "--exec-id", "y2", id2, "/usr/bin/probe32", "report"); r.Err == nil || !strings.Contains(r.Stderr, "not on the exec allow-list") {
		t.Errorf("a new executable under the learned profile: %v", r)
	}
	id3 := containerID(t, "newcap")
	r := runProfile(e, cfg, "webapp-learned", id3, []string{"--annotation", "palisade.dev/cap-add=NET_RAW"}, "/usr/bin/probe", "report")
	if r.Err == nil || !strings.Contains(r.Stderr, "capability CAP_NET_RAW is not allowed") {
		t.Errorf("a new capability under the learned profile: %v", r)
	}
	assertClean(t, e, id3)
}

// Alert mode never becomes an escape hatch: what it does not cover still
// refuses (privileged, host namespaces, sensitive mounts).
func TestAlertModeStillRefuses(t *testing.T) {
	e := needEnv(t)
	cfg, _ := rolloutProfiles(t, e, "")
	for name, extra := range map[string][]string{
		"privileged": {"--privileged"},
		"host-net":   {"--net-host"},
		"mount":      {"--mount", "type=bind,src=/etc,dst=/x,options=rbind:ro"},
	} {
		id := containerID(t, name)
		r := runProfile(e, cfg, "webapp", id, extra, "/usr/bin/probe", "report")
		if r.Err == nil || !strings.Contains(r.Stderr, "profile webapp]") {
			t.Errorf("%s under alert mode: %v", name, r)
		}
		assertClean(t, e, id)
	}
}

// Approved images: allowed, refused, digest required; the image reference
// comes from containerd's container record.
func TestApprovedImages(t *testing.T) {
	e := needEnv(t)
	repo := strings.SplitN(e.Image(), ":", 2)[0]
	write := func(name, body string) string {
		p, err := e.WriteAdminConfig("images-"+name+".toml", body)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	allowed := write("allowed", "[images]\nallowed = [\""+repo+"\"]\n")
	refused := write("refused", "[images]\nallowed = [\"registry.example.com/approved/*\"]\n")
	digest := write("digest", "[images]\nrequire_digest = true\n")
	alert := write("alert", "alert_namespaces = [\""+e.Namespace+"\"]\n[images]\nallowed = [\"registry.example.com/approved/*\"]\n")
	run := func(cfg, id string) harness.Result {
		return e.Ctr("run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg, e.Image(), id, "/bin/true")
	}
	if r := run(allowed, containerID(t, "ok")); r.Err != nil {
		t.Errorf("an approved image: %v", r)
	}
	id := containerID(t, "no")
	if r := run(refused, id); r.Err == nil || !strings.Contains(r.Stderr, "is not approved") || !strings.Contains(r.Stderr, "[rule images") {
		t.Errorf("an unapproved image: %v", r)
	}
	assertClean(t, e, id)
	id = containerID(t, "tag")
	if r := run(digest, id); r.Err == nil || !strings.Contains(r.Stderr, "is not pinned by digest") {
		t.Errorf("a tag-only image where digests are required: %v", r)
	}
	assertClean(t, e, id)
	id = containerID(t, "alert")
	if r := run(alert, id); r.Err != nil {
		t.Errorf("an unapproved image in an alert namespace: %v", r)
	}
	var recorded bool
	for _, rec := range auditRecords(t, e, id) {
		for _, c := range rec.Changes {
			recorded = recorded || (c.WouldRefuse != nil && c.WouldRefuse.Subject == audit.SubjectImage && rec.Image == e.Image())
		}
	}
	if !recorded {
		t.Error("alert mode did not record the unapproved image")
	}
	// a container from a root filesystem directory has no image to approve
	id = containerID(t, "rootfs")
	r := e.Ctr("run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", refused, "--rootfs", e.Rootfs(), id, "/bin/true")
	if r.Err == nil || !strings.Contains(r.Stderr, "the container's image is not known") {
		t.Errorf("a rootfs container where images are approved: %v", r)
	}
}
