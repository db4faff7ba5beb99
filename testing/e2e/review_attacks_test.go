package e2e

import (
	"bytes"
	"context"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Attacks from a review of the fail-closed pipeline (issue #11): each test
// fails while the hole is open and passes once palisade refuses the attack.

// snapshotOverlay returns the options of the overlay containerd's snapshotter
// made for a container's snapshot.
func snapshotOverlay(ctx context.Context, t *testing.T, c *containerd.Client, ctr containerd.Container) []string {
	t.Helper()
	info, err := ctr.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.SnapshotService(info.Snapshotter).Mounts(ctx, info.SnapshotKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Type != "overlay" {
		t.Fatalf("snapshot mounts %+v: want one overlay", ms)
	}
	return ms[0].Options
}

// A task rootfs overlay option whose value carries a comma: palisade checks
// "upperdir=<snapshot>,lowerdir=/host/dir:<snapshot>" as one path below the
// snapshotter's root, but containerd joins the options with commas for
// mount(2), so the kernel reads a second option, lowerdir, naming a host
// directory. The container's root is then layered over that host directory.
func TestReviewRootfsOverlayCommaInjection(t *testing.T) {
	e := needEnv(t)
	c, ctx := client(t, e)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "host-marker"), []byte("host secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := containerID(t, "ovl")
	ctr := newContainer(t, e, c, ctx, id, true, oci.WithProcessArgs("/bin/cat", "/host-marker"))
	var opts []string
	var lower, upper string
	for _, o := range snapshotOverlay(ctx, t, c, ctr) {
		switch k, v, _ := strings.Cut(o, "="); k {
		case "lowerdir":
			lower = v
		case "upperdir":
			upper = v
		default:
			opts = append(opts, o)
		}
	}
	if lower == "" || upper == "" {
		t.Fatalf("snapshot overlay without lower and upper dirs: %v", opts)
	}
	opts = append(opts, "upperdir="+upper+",lowerdir="+host+":"+lower)
	out, err := runTask(ctx, ctr, containerd.WithRootFS([]mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}))
	if err == nil {
		t.Fatalf("a rootfs overlay with a comma in an option was allowed; the container printed %q", out)
	}
	refusedWith(t, e, id, err, "is not allowed")
}

// runTask creates, starts and waits for a container's task with FIFO stdio,
// and returns what it printed, or the error of NewTask.
func runTask(ctx context.Context, ctr containerd.Container, opts ...containerd.NewTaskOpts) (string, error) {
	var buf bytes.Buffer
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &buf, &buf)), opts...)
	if err != nil {
		return "", err
	}
	defer func() { _, _ = task.Delete(context.Background(), containerd.WithProcessKill) }()
	wait, err := task.Wait(ctx)
	if err != nil {
		return "", nil
	}
	if err := task.Start(ctx); err != nil {
		return "start failed: " + err.Error(), nil
	}
	<-wait
	task.IO().Wait()
	return buf.String(), nil
}

// An update may only tighten the PID limit, but it is compared with the
// profile's limit, not with the container's own: a container created with
// palisade.dev/pids-limit=20 can be raised to the profile's 256 by Update.
func TestReviewUpdateRaisesOwnPidsLimit(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "pids")
	startDetached(t, e, id, "--annotation", "palisade.dev/pids-limit=20")
	defer removeContainer(t, e, id)
	task, ctx := runningTask(t, e, id)
	n := int64(200)
	err := task.Update(ctx, containerd.WithResources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &n}}))
	max, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup", e.Namespace, id, "pids.max"))
	if err == nil {
		t.Fatalf("raising the container's PID limit from 20 to %d was accepted; pids.max is now %s", n, strings.TrimSpace(string(max)))
	}
	if !strings.Contains(err.Error(), "the container's limit is 20") {
		t.Errorf("refusal does not name the container's own limit: %v", err)
	}
}

// An exec request's process spec from a hostile client: root, every
// capability, no no_new_privs, an OOM score below the shim's, a huge
// NOFILE. Whatever is accepted must end up hardened inside the container.
func TestReviewExecHostileProcess(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "exec")
	startDetached(t, e, id)
	defer removeContainer(t, e, id)
	task, ctx := runningTask(t, e, id)
	p := &specs.Process{
		Args:            []string{"/bin/sh", "-c", "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; cat /proc/self/oom_score_adj"},
		Cwd:             "/",
		Env:             []string{"PATH=/bin:/usr/bin"},
		User:            specs.User{UID: 0, GID: 0},
		NoNewPrivileges: false,
		OOMScoreAdj:     ptr(-1000),
	}
	var out string
	var err error
	// containerd's client FIFOs (cio.NewCreator) lose a short exec's whole
	// output now and then: with this same client code the stock runc shim
	// lost 19 of 40 and palisade 17 of 40 on a loaded 2-CPU VM (ctr, a
	// process of its own, lost none). The checks below are on the content,
	// so an empty output is retried.
	for i := 0; i < 12 && err == nil && out == ""; i++ {
		out, err = execOut(ctx, task, fmt.Sprint("hostile", i), p)
	}
	if err != nil {
		t.Logf("refused: %v", err)
		return
	}
	lines := strings.Fields(out)
	t.Logf("exec output: %q", out)
	if len(lines) < 5 {
		t.Fatalf("exec output %q", out)
	}
	if lines[0] == "0" {
		t.Error("exec process runs as root")
	}
	if lines[2] != "0000000000000000" {
		t.Errorf("exec process has capabilities %s", lines[2])
	}
	if lines[4] != "1" {
		t.Error("exec process without no_new_privs")
	}
	if strings.HasPrefix(lines[5], "-") {
		t.Errorf("exec process oom_score_adj %s", lines[5])
	}
	// An empty process must be refused without taking the shim down.
	if _, err := execOut(ctx, task, "empty", &specs.Process{}); err == nil {
		t.Error("an empty exec process was accepted")
	}
	if _, err := task.Status(ctx); err != nil {
		t.Fatalf("shim gone after an empty exec process: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// execOut runs an exec process with FIFO stdio and returns its output.
func execOut(ctx context.Context, task containerd.Task, id string, p *specs.Process) (string, error) {
	out, _, err := execStatus(ctx, task, id, p)
	return out, err
}

// A task rootfs bind of a snapshotter's whole snapshots directory is
// "below a snapshotter directory", but it is not a snapshot: the container
// sees every other container's writable layer, in every namespace.
func TestReviewRootfsBindOfAllSnapshots(t *testing.T) {
	e := needEnv(t)
	c, ctx := client(t, e)
	victim := newContainer(t, e, c, ctx, containerID(t, "victim"), true)
	var vupper string
	for _, o := range snapshotOverlay(ctx, t, c, victim) {
		if k, v, _ := strings.Cut(o, "="); k == "upperdir" {
			vupper = v
		}
	}
	// what the victim wrote into its root filesystem
	if err := os.WriteFile(filepath.Join(vupper, "victim-secret"), []byte("victim's data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// under baseline (root allowed), which the admin lets workloads select
	cfg := adminConfig(t, e, `selectable_profiles = ["baseline"]`)
	id := containerID(t, "all")
	ctr := newContainerWith(t, e, c, ctx, id, cfg, oci.WithAnnotations(map[string]string{"palisade.dev/profile": "baseline"}))
	var lower string
	for _, o := range snapshotOverlay(ctx, t, c, ctr) {
		if k, v, _ := strings.Cut(o, "="); k == "lowerdir" {
			l := strings.Split(v, ":")
			lower = l[len(l)-1]
		}
	}
	snapshots := filepath.Dir(filepath.Dir(lower)) // .../snapshots
	rel := func(p string) string { return strings.TrimPrefix(p, snapshots) }
	spec, err := ctr.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec.Process.Args = []string{rel(lower) + "/bin/busybox", "cat", rel(vupper) + "/victim-secret"}
	if err := ctr.Update(ctx, func(_ context.Context, _ *containerd.Client, cc *containers.Container) error {
		var err error
		cc.Spec, err = typeurl.MarshalAnyToProto(spec)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	out, err := runTask(ctx, ctr, containerd.WithRootFS([]mount.Mount{{Type: "bind", Source: snapshots, Options: []string{"rbind", "rw"}}}))
	if err == nil {
		t.Fatalf("a rootfs bind of %s was allowed; the container printed %q", snapshots, out)
	}
	refusedWith(t, e, id, err, "is not allowed")
}

// Host paths that are root on the node, or hold other pods' data, are not in
// the default protected list, and a pod author binds them like any volume:
// the CNI plugin binaries (containerd runs them as root on the host for
// every pod: a root container replaces one), CNI's state, other pods' logs,
// and the API sockets of other root daemons next to containerd's (podman,
// buildkit, libvirt, snapd, users' systemd and rootless engines in
// /run/user).
func TestReviewBindRootEquivalentHostPaths(t *testing.T) {
	e := needEnv(t)
	for _, src := range []string{"/opt/cni/bin", "/var/lib/cni", "/var/log/pods", "/run/podman", "/run/buildkit", "/run/libvirt", "/run/user"} {
		// create what is missing, and remove exactly that afterwards
		top := src
		for d := src; d != "/"; d = filepath.Dir(d) {
			if _, err := os.Stat(d); os.IsNotExist(err) {
				top = d
			}
		}
		if _, err := os.Stat(src); os.IsNotExist(err) {
			if err := os.MkdirAll(src, 0o755); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = os.RemoveAll(top) }()
		}
		id := containerID(t, "bind")
		r := e.Run(id, []string{"--mount", "type=bind,src=" + src + ",dst=/x,options=rbind:rw"}, "/bin/ls", "-ld", "/x")
		if r.Err == nil {
			t.Errorf("bind of %s was allowed: %s", src, strings.TrimSpace(r.Stdout))
			continue
		}
		if !strings.Contains(r.Stderr, "bind mount of "+src+" at /x is not allowed") {
			t.Errorf("bind of %s: %s", src, r.Stderr)
		}
		assertClean(t, e, id)
	}
}

// A container that palisade accepts but runc fails to create (here a bind
// source that does not exist) leaves no secrets tmpfs, no container and the
// secret value nowhere.
func TestReviewSecretsCleanedWhenRuncFails(t *testing.T) {
	e := needEnv(t)
	value := "review-secret-" + containerID(t, "v")
	putSecret(t, e, e.Namespace, "review-token", value)
	id := containerID(t, "fail")
	missing := filepath.Join(t.TempDir(), "missing")
	r := e.Run(id, []string{"--annotation", "palisade.dev/secrets=review-token", "--mount", "type=bind,src=" + missing + ",dst=/x,options=rbind:ro"}, "/bin/true")
	if r.Err == nil {
		t.Fatal("a bind of a missing source ran")
	}
	assertClean(t, e, id)
	assertNoSecretMounts(t, e)
	assertNowhere(t, e, value)
}

// Odd and empty values in spec fields and palisade annotations, sent through
// containerd's API: each is accepted or refused by palisade, never an
// internal error or a dead shim.
func TestReviewOddSpecValues(t *testing.T) {
	e := needEnv(t)
	c, ctx := client(t, e)
	type mutate = func(*specs.Spec)
	ann := func(k, v string) mutate {
		return func(s *specs.Spec) {
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[k] = v
		}
	}
	cases := map[string]mutate{
		"no-linux":           func(s *specs.Spec) { s.Linux = nil },
		"no-caps":            func(s *specs.Spec) { s.Process.Capabilities = nil },
		"empty-mount":        func(s *specs.Spec) { s.Mounts = append(s.Mounts, specs.Mount{}) },
		"empty-ns":           func(s *specs.Spec) { s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{}) },
		"no-resources":       func(s *specs.Spec) { s.Linux.Resources = nil },
		"empty-seccomp":      func(s *specs.Spec) { s.Linux.Seccomp = &specs.LinuxSeccomp{} },
		"seccomp-listener":   func(s *specs.Spec) { s.Linux.Seccomp = &specs.LinuxSeccomp{ListenerPath: "/run/x.sock"} },
		"empty-hooks":        func(s *specs.Spec) { s.Hooks = &specs.Hooks{} },
		"empty-hook":         func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{}}} },
		"empty-scheduler":    func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{} },
		"empty-ioprio":       func(s *specs.Spec) { s.Process.IOPriority = &specs.LinuxIOPriority{} },
		"empty-personality":  func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{} },
		"empty-device":       func(s *specs.Spec) { s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{}) },
		"empty-rlimit":       func(s *specs.Spec) { s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{}) },
		"empty-pids":         func(s *specs.Spec) { s.Linux.Resources.Pids = &specs.LinuxPids{} },
		"empty-cpu":          func(s *specs.Spec) { s.Linux.Resources.CPU = &specs.LinuxCPU{} },
		"no-root":            func(s *specs.Spec) { s.Root = nil },
		"no-process":         func(s *specs.Spec) { s.Process = nil },
		"secrets-comma":      ann("palisade.dev/secrets", ","),
		"secrets-eq":         ann("palisade.dev/secrets", "=/"),
		"secrets-target-dot": ann("palisade.dev/secrets", "a=/run/secrets/../../proc/self/x"),
		"pids-huge":          ann("palisade.dev/pids-limit", "99999999999999999999999"),
		"pids-neg":           ann("palisade.dev/pids-limit", "-1"),
		"cap-add-comma":      ann("palisade.dev/cap-add", ","),
		"exec-allow-empty":   ann("palisade.dev/exec-allow", ""),
		"exec-allow-rel":     ann("palisade.dev/exec-allow", "bin/sh"),
		"profile-empty":      ann("palisade.dev/profile", ""),
		"seccomp-empty":      ann("palisade.dev/seccomp-profile", ""),
		"secret-env-empty":   ann("palisade.dev/secret-env", ","),
		"cgroups-systemd":    func(s *specs.Spec) { s.Linux.CgroupsPath = "::" },
		"cgroups-rel":        func(s *specs.Spec) { s.Linux.CgroupsPath = "a/./b/" },
		"rootfs-prop-empty":  func(s *specs.Spec) { s.Linux.RootfsPropagation = "shared" },
		"unified-empty-key":  func(s *specs.Spec) { s.Linux.Resources.Unified = map[string]string{"": "1"} },
	}
	for name, m := range cases {
		id := containerID(t, name)
		ctr := newContainer(t, e, c, ctx, id, true, func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
			m(s)
			return nil
		})
		task, err := ctr.NewTask(ctx, cio.NullIO)
		if err == nil {
			t.Logf("%s: accepted", name)
			_, _ = task.Delete(ctx, containerd.WithProcessKill)
			continue
		}
		t.Logf("%s: %.200v", name, err)
		if !strings.Contains(err.Error(), "palisade: container "+e.Namespace+"/"+id) || strings.Contains(err.Error(), "internal error") {
			t.Errorf("%s: not a palisade refusal: %v", name, err)
		}
	}
}

// Any existing FIFO is accepted as a task's stdout, wherever it is: the shim
// then writes the container's output into it as root. A host daemon's
// control FIFO (systemd's initctl FIFO, sysvinit's /run/initctl) takes
// commands from whoever writes a request into it (runlevel changes: a
// reboot or power-off of the node). Here the daemon's FIFO is made by the
// test at systemd's path, below the protected /run/systemd.
func TestReviewStdoutIntoHostDaemonFIFO(t *testing.T) {
	e := needEnv(t)
	c, ctx := client(t, e)
	fifo := "/run/systemd/initctl/fifo"
	if _, err := os.Stat(fifo); os.IsNotExist(err) {
		top := fifo
		for d := filepath.Dir(fifo); d != "/"; d = filepath.Dir(d) {
			if _, err := os.Stat(d); os.IsNotExist(err) {
				top = d
			}
		}
		if err := os.MkdirAll(filepath.Dir(fifo), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = os.RemoveAll(top) }()
	} else {
		t.Skip(fifo + " exists on this host: a real daemon reads it, so the test does not write into it")
	}
	// the daemon's side of the FIFO
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	id := containerID(t, "initctl")
	ctr := newContainer(t, e, c, ctx, id, true, oci.WithProcessArgs("/bin/echo", "initreq: runlevel 0"))
	task, err := ctr.NewTask(ctx, withStdio(fifo))
	if err == nil {
		defer func() { _, _ = task.Delete(context.Background(), containerd.WithProcessKill) }()
		wait, _ := task.Wait(ctx)
		if err := task.Start(ctx); err == nil {
			<-wait
		}
		_ = f.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 256)
		n, _ := f.Read(buf)
		t.Fatalf("the container's stdout went into the host daemon's FIFO %s: it read %q", fifo, buf[:n])
	}
	refusedWith(t, e, id, err, fifo)
}

// Another container's stdin FIFO is an existing FIFO too: a client names it
// as its own task's stdout, and what its container prints is typed into the
// other container's stdin (an interactive shell, `kubectl attach -i`).
func TestReviewStdoutIntoOtherContainersStdin(t *testing.T) {
	e := needEnv(t)
	c, ctx := client(t, e)
	vid := containerID(t, "victim")
	victim := newContainer(t, e, c, ctx, vid, true, oci.WithProcessArgs("/bin/cat"))
	pr, pw := io.Pipe()
	defer func() { _ = pw.Close() }()
	var vout bytes.Buffer
	vtask, err := victim.NewTask(ctx, cio.NewCreator(cio.WithStreams(pr, &vout, &vout)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = vtask.Delete(context.Background(), containerd.WithProcessKill) }()
	if err := vtask.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stdin := vtask.IO().Config().Stdin
	id := containerID(t, "typist")
	ctr := newContainer(t, e, c, ctx, id, true, oci.WithProcessArgs("/bin/echo", "typed by another container"))
	task, err := ctr.NewTask(ctx, withStdio(stdin))
	if err == nil {
		defer func() { _, _ = task.Delete(context.Background(), containerd.WithProcessKill) }()
		wait, _ := task.Wait(ctx)
		if err := task.Start(ctx); err == nil {
			<-wait
		}
		time.Sleep(500 * time.Millisecond)
		t.Fatalf("a task's stdout was the other container's stdin FIFO %s; the other container echoed %q", stdin, vout.String())
	}
	refusedWith(t, e, id, err, stdin)
}
