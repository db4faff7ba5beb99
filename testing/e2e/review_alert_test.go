package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/profiles"
	"palisade.dev/palisade/seccomp"
	"palisade.dev/palisade/testing/harness"
)

// Attacks on alert mode's run-time recording, played from inside an
// alert-mode container, from the containerd API and through
// `palisade profile learn`.

// outcomesAmong reads the `probe try` lines of a script's output, leaving
// out the lines the shell itself printed.
func outcomesAmong(t *testing.T, r harness.Result) []outcome {
	t.Helper()
	var out []outcome
	for _, line := range strings.Split(r.Stdout, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var o outcome
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("probe output line is not JSON: %q\n%s", line, r)
		}
		out = append(out, o)
	}
	return out
}

// In alert mode the calls the profile denies run — but not those that need
// no capability and reach what the container does not own: a new user
// namespace (inside it the workload holds every capability, and mounts a
// tmpfs through the mount call alert mode lets run) and the kernel
// keyrings (not namespaced: the container's root shares the host root's
// user keyring). Both still fail with EPERM; unshare without
// CLONE_NEWUSER is still handed over and recorded.
func TestReviewAlertUserNamespaceAndKeyringsStayRefused(t *testing.T) {
	e := needEnv(t)
	cfg, _ := rolloutProfiles(t, e, "")
	script := "/bin/busybox unshare -U -r -m /bin/busybox mount -t tmpfs none /tmp 2>/dev/null; echo userns-mount=$?; " +
		"probe try syscall keyctl; probe try syscall clone-newuser; probe try syscall unshare0; probe try syscall io_uring_setup; probe try syscall perf_event_open"
	id := containerID(t, "userns")
	r := runProfile(e, cfg, "webapp", id, nil, "/bin/sh", "-c", script)
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	if strings.Contains(r.Stdout, "userns-mount=0") || !strings.Contains(r.Stdout, "userns-mount=") {
		t.Errorf("in alert mode the workload made a user namespace and mounted in it:\n%s", r.Stdout)
	}
	o := outcomesAmong(t, r)
	if len(o) != 5 || o[0].OK || o[0].Errno != "EPERM" || o[1].OK || o[1].Errno != "EPERM" || !o[2].OK || o[3].OK || o[3].Errno != "EPERM" || o[4].OK || o[4].Errno != "EPERM" {
		t.Errorf("keyctl, clone(CLONE_NEWUSER), unshare(0), io_uring_setup, perf_event_open in alert mode: %+v, want EPERM, EPERM, success, EPERM, EPERM", o)
	}
	calls := seccompRecords(t, e, id)
	if calls["unshare"] != 1 || calls["keyctl"] != 0 || calls["io_uring_setup"] != 0 {
		t.Errorf("recorded %v, want unshare once (the call without CLONE_NEWUSER) and no keyctl", calls)
	}
	assertClean(t, e, id)
}

// A workload feeds the agent execve file names it cannot take at face
// value — an unmapped address, a page with no NUL, a page behind a
// userfaultfd nobody serves (alert mode keeps userfaultfd refused, so the
// workload cannot make one; where a profile allows it, an unprivileged
// userfaultfd handles user-mode faults only, so the agent's read fails
// rather than waits), two hundred distinct missing programs (more than the agent's table holds), names with a
// newline that write TOML — and a raw call by a number no table names.
// The agent records what it can, counts what it drops, and keeps
// answering; the unknown number never reaches it (runc's filter answers
// ENOSYS). `palisade
// profile learn` from these records writes a profile that parses, keeps
// every workload-chosen name inside a comment or a quoted string, and
// admits no capability the parent does not.
func TestReviewAlertHostileExecNames(t *testing.T) {
	e := needEnv(t)
	cfg, dir := rolloutProfiles(t, e, "")
	inject := `/dev/shm/x\n[capabilities]\nallowed = ["CAP_SYS_ADMIN"]\n#`
	missing := `/nonexistent\nmode = "alert"\n#`
	script := "probe try badexec unmapped; probe try badexec nonul; probe try badexec uffd; probe try badexec nr 1000; " +
		`f="$(printf '` + inject + `')"; cp /bin/busybox "$f"; "$f" true 2>/dev/null; ` +
		`m="$(printf '` + missing + `')"; "$m" 2>/dev/null; ` +
		"probe try exec /bin/busybox true; " +
		"for i in $(seq 200); do /nonexistent-$i 2>/dev/null; done; true"
	id := containerID(t, "names")
	r := runProfile(e, cfg, "webapp", id, nil, "/bin/sh", "-c", script)
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	o := outcomesAmong(t, r)
	// userfaultfd itself stays refused in alert mode (EPERM), so a name in
	// a page no one serves cannot stall the agent from here
	if len(o) != 5 || o[0].Errno != "EFAULT" || (o[1].Errno != "ENAMETOOLONG" && o[1].Errno != "EFAULT") || o[2].Errno != "EPERM" || o[3].Errno != "ENOSYS" || !o[4].OK {
		t.Fatalf("hostile execs, an unknown number, then an ordinary exec: %+v, want EFAULT, ENAMETOOLONG, EPERM (userfaultfd), ENOSYS and a success", o)
	}
	execs := execRecords(t, e, id)
	if execs["(path not read) -> "] != 2 || execs["/bin/busybox -> /bin/busybox"] != 1 {
		t.Errorf("an unreadable name is recorded as unread, and the agent still records afterwards: %v", execs)
	}
	var dropped uint64
	for _, rec := range auditRecords(t, e, id) {
		dropped += rec.Dropped
		if len(rec.Executables) > 128 {
			t.Errorf("a record with %d programs, past the agent's bound of 128", len(rec.Executables))
		}
	}
	if len(execs) > 128 || dropped == 0 {
		t.Errorf("%d distinct programs recorded, %d dropped: want at most 128 and the rest counted as dropped", len(execs), dropped)
	}
	if n := seccompRecords(t, e, id)["#1000"]; n != 0 {
		t.Errorf("an unknown number was handed to the agent %d times", n)
	}
	assertClean(t, e, id)

	// report and explain show the names escaped, each finding on its own line
	rep, err := e.Command("palisade", "report", "--audit", e.AuditLog).CombinedOutput()
	if err != nil || !strings.Contains(string(rep), `/dev/shm/x\n[capabilities]\nallowed = ["CAP_SYS_ADMIN"]\n#`) {
		t.Errorf("palisade report on hostile names (%v):\n%s", err, rep)
	}
	exp, err := e.Command("palisade", "explain", "--config", cfg, "--container", id, "-n", e.Namespace).CombinedOutput()
	if err != nil || !strings.Contains(string(exp), `program /dev/shm/x\n[capabilities]\nallowed`) {
		t.Errorf("palisade explain on hostile names (%v):\n%s", err, exp)
	}
	for _, line := range strings.Split(string(rep)+string(exp), "\n") {
		if strings.HasPrefix(line, "[capabilities]") || strings.HasPrefix(line, "mode = ") {
			t.Errorf("a program's name became a line of the report or explanation: %q", line)
		}
	}

	out := filepath.Join(dir, "hostile.toml")
	b, err := learn(e, cfg, "hostile", out, "--container", e.Namespace+"/"+id)
	if err != nil {
		t.Fatalf("palisade profile learn: %v\n%s", err, b)
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profiles.Parse(out, text)
	if err != nil {
		t.Fatalf("the learned profile does not parse: %v\n%s", err, text)
	}
	if len(p.Capabilities.Allowed) != 0 || p.Mode != profiles.ModeEnforce || p.Name != "hostile" {
		t.Errorf("a program's name rewrote the learned profile: capabilities %v, mode %q, name %q\n%s", p.Capabilities.Allowed, p.Mode, p.Name, text)
	}
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), `allowed = ["CAP_SYS_ADMIN"]`) || strings.HasPrefix(line, `mode = "alert"`) {
			t.Errorf("a program's name became a line of the learned profile: %q\n%s", line, text)
		}
	}
	t.Logf("learned from hostile names:\n%s", text)
}

// A client's spec brings its own seccomp filter: a listener of its own (the
// socket of another container's agent, with metadata) and a NOTIFY rule.
// In alert mode the container gets its own agent's socket and no
// metadata; in enforce mode no listener at all and no NOTIFY rule. Both
// run.
func TestReviewAlertClientListenerReplaced(t *testing.T) {
	e := needEnv(t)
	cfg, _ := rolloutProfiles(t, e, "")
	c, ctx := client(t, e)
	victim := alertVictim(t, e, cfg)
	victimSocket := renderedSeccomp(t, e, victim).ListenerPath
	if !strings.HasPrefix(victimSocket, "/run/palisade/alert/") {
		t.Fatalf("the alert-mode container has no agent: %q", victimSocket)
	}
	own := func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64},
			ListenerPath: victimSocket, ListenerMetadata: "steal",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid", "unshare"}, Action: specs.ActNotify}},
		}
		return nil
	}
	for _, c2 := range []struct{ name, config, profile string }{{"alert", cfg, "webapp"}, {"enforce", e.AdminConfig, ""}} {
		id := containerID(t, c2.name)
		opts := []oci.SpecOpts{oci.WithProcessArgs("/bin/true"), own}
		if c2.profile != "" {
			opts = append(opts, oci.WithAnnotations(map[string]string{"palisade.dev/profile": c2.profile}))
		}
		ctr := newContainerWith(t, e, c, ctx, id, c2.config, opts...)
		task, err := ctr.NewTask(ctx, cio.NullIO)
		if err != nil {
			t.Fatalf("%s: a client filter with a listener of its own: %v", c2.name, err)
		}
		sc := renderedSeccomp(t, e, id)
		notify := false
		for _, r := range sc.Syscalls {
			notify = notify || r.Action == specs.ActNotify
		}
		switch {
		case sc.ListenerMetadata != "" || sc.ListenerPath == victimSocket:
			t.Errorf("%s: the client's listener reached runc: %q %q", c2.name, sc.ListenerPath, sc.ListenerMetadata)
		case c2.name == "alert" && !strings.HasPrefix(sc.ListenerPath, "/run/palisade/alert/"):
			t.Errorf("alert: listener %q, want the container's own agent", sc.ListenerPath)
		case c2.name == "enforce" && (sc.ListenerPath != "" || notify):
			t.Errorf("enforce: listener %q, NOTIFY rules %v", sc.ListenerPath, notify)
		}
		ch, err := task.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := task.Start(ctx); err != nil {
			t.Fatalf("%s: start: %v", c2.name, err)
		}
		if st := <-ch; st.ExitCode() != 0 {
			t.Errorf("%s: exit %d", c2.name, st.ExitCode())
		}
		if _, err := task.Delete(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// the victim's agent still answers: its container still runs programs
	if r := e.Ctr("tasks", "exec", "--exec-id", "after", victim, "/usr/bin/probe", "try", "syscall", "unshare0"); r.Err != nil ||
		len(parseOutcomes(t, r)) != 1 || !parseOutcomes(t, r)[0].OK {
		t.Errorf("the victim after the attempts: %v", r)
	}
}

// No annotation switches alert mode on: a palisade.dev/mode annotation is
// refused as unknown, and the default profile keeps enforcing.
func TestReviewAlertModeNotByAnnotation(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "ann")
	r := e.Run(id, []string{"--annotation", "palisade.dev/mode=alert"}, "/usr/bin/probe", "try", "syscall", "unshare0")
	if r.Err == nil || !strings.Contains(r.Stderr, `unknown annotation "palisade.dev/mode"`) {
		t.Errorf("palisade.dev/mode=alert: %v", r)
	}
	assertClean(t, e, id)
}

// renderedSeccomp reads the seccomp filter of the config.json runc got.
// Where palisade-init loads the filter instead (TestSeccompLoadedByPalisadeInit)
// there is no section to read: it returns an empty filter when the program
// palisade-init gets returns SECCOMP_RET_USER_NOTIF nowhere, and a
// filter with the listener "notify in palisade-init's program" when it does.
func renderedSeccomp(t *testing.T, e *harness.Env, id string) *specs.LinuxSeccomp {
	t.Helper()
	s := runcSpec(t, e, id)
	if s.Linux != nil && s.Linux.Seccomp == nil && len(s.Process.Args) > 2 && s.Process.Args[0] == execguard.HelperPath && s.Process.Args[1] == "seccomp" {
		raw, err := hex.DecodeString(s.Process.Args[2])
		if err != nil {
			t.Fatal(err)
		}
		prog, err := seccomp.Program(raw).Instructions()
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range prog {
			if r, ok := in.(bpf.RetConstant); ok && r.Val&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_USER_NOTIF {
				return &specs.LinuxSeccomp{ListenerPath: "notify in palisade-init's program"}
			}
		}
		return &specs.LinuxSeccomp{}
	}
	if s.Linux == nil || s.Linux.Seccomp == nil {
		t.Fatalf("%s: no seccomp filter", id)
	}
	return s.Linux.Seccomp
}

// newContainerWith creates a container record from a snapshot of the test
// image under admin config cfg, with its image config and opts, no task.
func newContainerWith(t *testing.T, e *harness.Env, c *containerd.Client, ctx context.Context, id, cfg string, opts ...oci.SpecOpts) containerd.Container {
	t.Helper()
	img, err := c.GetImage(ctx, e.Image())
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := c.NewContainer(ctx, id,
		containerd.WithRuntime(harness.Runtime, &runtimeoptions.Options{ConfigPath: cfg}),
		containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(append([]oci.SpecOpts{oci.WithImageConfig(img)}, opts...)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctr.Delete(context.Background(), containerd.WithSnapshotCleanup) })
	return ctr
}

// A containerd client outside CRI's namespaces names its alert-mode
// container after a Kubernetes pod (CRI's annotations). Its records do not
// take the pod's names, so `palisade profile learn --pod` for that pod
// finds nothing of it to admit.
func TestReviewAlertForgedPodNames(t *testing.T) {
	e := needEnv(t)
	cfg, dir := rolloutProfiles(t, e, "")
	id := containerID(t, "forged")
	pod := "web-" + id[len(id)-6:]
	extra := []string{"--annotation", "io.kubernetes.cri.sandbox-name=" + pod, "--annotation", "io.kubernetes.cri.sandbox-namespace=shop",
		"--annotation", "io.kubernetes.cri.container-name=app"}
	allOK(t, runProfile(e, cfg, "webapp", id, extra, "/usr/bin/probe", "try", "syscall", "unshare0"), "alert mode")
	recs := auditRecords(t, e, id)
	if seccompRecords(t, e, id)["unshare"] != 1 {
		t.Fatalf("the container's call was not recorded: %+v", recs)
	}
	for _, r := range recs {
		if r.Pod != "" || r.PodNamespace != "" || r.ContainerName != "" {
			t.Errorf("a %s record of a container in namespace %s carries pod names %s/%s/%s", r.Event, r.Namespace, r.PodNamespace, r.Pod, r.ContainerName)
		}
	}
	out, err := learn(e, cfg, "forged", filepath.Join(dir, "forged.toml"), "--pod", "shop/"+pod)
	if err == nil || !strings.Contains(string(out), "the audit file has no alert-mode findings for pod shop/"+pod) {
		t.Errorf("learn --pod took the forged container's records: %v\n%s", err, out)
	}
}

// No container reaches the agents' sockets through a bind mount: the
// directory, its parent and a socket of another container are refused
// as sources, in alert mode as in enforce mode.
func TestReviewAlertAgentSocketsNotMountable(t *testing.T) {
	e := needEnv(t)
	cfg, _ := rolloutProfiles(t, e, "")
	victim := alertVictim(t, e, cfg)
	socket := renderedSeccomp(t, e, victim).ListenerPath
	for i, src := range []string{"/run/palisade/alert", "/run/palisade", socket} {
		id := containerID(t, "bind"+strconv.Itoa(i))
		r := runProfile(e, cfg, "webapp", id, []string{"--mount", "type=bind,src=" + src + ",dst=/x,options=rbind:ro"}, "/bin/true")
		if r.Err == nil || !strings.Contains(r.Stderr, "palisade: container "+e.Namespace+"/"+id) {
			t.Errorf("a bind of %s into an alert-mode container: %v", src, r)
		} else {
			t.Logf("bind of %s: %s", src, r.Stderr[strings.Index(r.Stderr, "palisade: container"):])
		}
		assertClean(t, e, id)
	}
}

// Sixteen threads make 1,500 notified calls each at once, while the Go
// runtime's preemption signals interrupt some of them in the agent's
// hands (the kernel restarts those, and hands them over again). Every
// call returns success, the shim keeps answering, and the record counts
// each call exactly once.
func TestReviewAlertCallStorm(t *testing.T) {
	e := needEnv(t)
	cfg, _ := rolloutProfiles(t, e, "")
	id := containerID(t, "storm")
	allOK(t, runProfile(e, cfg, "webapp", id, nil, "/usr/bin/probe", "try", "badexec", "storm", "16", "1500"), "a call storm in alert mode")
	if n := seccompRecords(t, e, id)["unshare"]; n != 16*1500 {
		t.Errorf("recorded unshare %d times, want %d", n, 16*1500)
	}
	assertClean(t, e, id)
}

// alertVictim runs a sleeping container in alert mode (profile webapp of
// cfg), removed when the test ends, and returns its ID.
func alertVictim(t *testing.T, e *harness.Env, cfg string) string {
	t.Helper()
	victim := containerID(t, "victim")
	if r := e.Ctr("run", "-d", "--runtime", harness.Runtime, "--runtime-config-path", cfg,
		"--annotation", "palisade.dev/profile=webapp", e.Image(), victim, "/usr/bin/probe", "sleep", "300"); r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	t.Cleanup(func() { removeContainer(t, e, victim) })
	return victim
}
