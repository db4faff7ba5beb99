package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

// The attacks of a hostile containerd API client or workload that palisade
// once let through (issue #11), each tried for real and each refused with a
// clear message, leaving nothing behind. The harness runs containerd in a
// non-default layout (root, state, shim sockets, runc root, secret store and
// mounts all in a temporary directory), so the protections below must come
// from what the shim discovers, not from default paths.

// client connects containerd's Go client to the environment.
func client(t *testing.T, e *harness.Env) (*containerd.Client, context.Context) {
	t.Helper()
	c, err := containerd.New(e.Address, containerd.WithDefaultNamespace(e.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c, ctx
}

// newContainer creates a container record under palisade with the test
// image's config and extra spec options, without a task.
func newContainer(t *testing.T, e *harness.Env, c *containerd.Client, ctx context.Context, id string, snapshot bool, opts ...oci.SpecOpts) containerd.Container {
	t.Helper()
	img, err := c.GetImage(ctx, e.Image())
	if err != nil {
		t.Fatal(err)
	}
	copts := []containerd.NewContainerOpts{
		containerd.WithRuntime(harness.Runtime, &runtimeoptions.Options{ConfigPath: e.AdminConfig}),
	}
	specOpts := append([]oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs("/bin/true")}, opts...)
	if snapshot {
		copts = append(copts, containerd.WithNewSnapshot(id, img))
	} else {
		// no snapshot: the spec names the test image's directory as its root
		specOpts = append([]oci.SpecOpts{oci.WithRootFSPath(e.Rootfs())}, specOpts...)
	}
	copts = append(copts, containerd.WithNewSpec(specOpts...))
	ctr, err := c.NewContainer(ctx, id, copts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctr.Delete(context.Background(), containerd.WithSnapshotCleanup) })
	return ctr
}

// refusedWith checks an error carries palisade's refusal for id, that the
// refusal is audited, and that nothing of the container is left.
func refusedWith(t *testing.T, e *harness.Env, id string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("not refused (want %q)", want)
	}
	if !strings.Contains(err.Error(), "palisade: container "+e.Namespace+"/"+id) || !strings.Contains(err.Error(), want) {
		t.Fatalf("refusal message\nwant: %s\n got: %v", want, err)
	}
	assertClean(t, e, id)
	rec := findRecord(auditRecords(t, e, id), audit.EventCreate)
	if rec == nil || rec.Result != audit.ResultRefused || !strings.Contains(rec.Reason, want) {
		t.Errorf("audit record %+v does not record the refusal", rec)
	}
}

// 1. A client-chosen rootfs mount (the host's "/") is not a snapshot.
func TestAttackRootfsMountOfHostRoot(t *testing.T) {
	e := needEnv(t)
	c, ctx := client(t, e)
	id := containerID(t, "rootfs")
	ctr := newContainer(t, e, c, ctx, id, false)
	_, err := ctr.NewTask(ctx, cio.NullIO, containerd.WithRootFS([]mount.Mount{{Type: "bind", Source: "/", Options: []string{"rbind", "ro"}}}))
	refusedWith(t, e, id, err, "the task's root filesystem mount bind / (rbind,ro) is not allowed: / is not a snapshot's fs directory")
	// An overlay whose upper layer is a host directory is refused as well.
	id2 := containerID(t, "rootfs2")
	ctr2 := newContainer(t, e, c, ctx, id2, false)
	_, err = ctr2.NewTask(ctx, cio.NullIO, containerd.WithRootFS([]mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/usr:/bin", "upperdir=/etc", "workdir=/tmp"}}}))
	refusedWith(t, e, id2, err, "is not a snapshot's fs directory")
	// The ordinary snapshot still works.
	if r := e.Run(containerID(t, "ok"), nil, "/bin/true"); r.Err != nil {
		t.Fatalf("a container from a snapshot: %v", r)
	}
}

// 2. Joining another container's PID namespace to read its secrets.
func TestAttackJoinOtherContainersNamespace(t *testing.T) {
	e := needEnv(t)
	victim := containerID(t, "victim")
	startDetached(t, e, victim)
	defer removeContainer(t, e, victim)
	pid := taskPid(t, e, victim)
	for _, typ := range []string{"pid", "ipc", "network", "uts"} {
		file := map[string]string{"network": "net"}[typ]
		if file == "" {
			file = typ
		}
		path := fmt.Sprintf("/proc/%d/ns/%s", pid, file)
		id := containerID(t, "join-"+typ)
		r := e.Run(id, []string{"--with-ns", typ + ":" + path}, "/bin/cat", "/proc/1/root/etc/hostname")
		if r.Err == nil {
			t.Fatalf("joined the %s namespace of another container: %v", typ, r)
		}
		want := fmt.Sprintf("joining the %s namespace at %s is not allowed: a container may join only its own pod sandbox's namespaces", typ, path)
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("refusal\nwant: %s\n got: %s", want, r.Stderr)
		}
		assertClean(t, e, id)
	}
	// A path that is not a namespace gets a message that says so.
	id := containerID(t, "join-file")
	r := e.Run(id, []string{"--with-ns", "pid:/etc/hostname"}, "/bin/true")
	if r.Err == nil || !strings.Contains(r.Stderr, "/etc/hostname is not a pid namespace palisade can inspect: not a namespace file") {
		t.Errorf("a file as a namespace: %v", r)
	}
	assertClean(t, e, id)
}

// 3. linux.netDevices would move a host interface into the container.
func TestAttackNetDevices(t *testing.T) {
	e := needEnv(t)
	const link = "palisade-t0"
	if out, err := exec.Command("ip", "link", "add", link, "type", "veth", "peer", "name", "palisade-t1").CombinedOutput(); err != nil {
		t.Fatalf("create a host interface: %v: %s", err, out)
	}
	defer func() { _ = exec.Command("ip", "link", "del", link).Run() }()
	c, ctx := client(t, e)
	id := containerID(t, "netdev")
	ctr := newContainer(t, e, c, ctx, id, true, func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
		s.Linux.NetDevices = map[string]specs.LinuxNetDevice{link: {}}
		return nil
	})
	_, err := ctr.NewTask(ctx, cio.NullIO)
	refusedWith(t, e, id, err, "the spec sets linux.netDevices, which is not allowed: it would move a host network interface into the container")
	if _, err := os.Stat("/sys/class/net/" + link); err != nil {
		t.Errorf("the host interface is gone: %v", err)
	}
}

// 4. Recursive options that clear nosuid/nodev do not survive.
func TestAttackRecursiveMountOptions(t *testing.T) {
	e := needEnv(t)
	dir := t.TempDir()
	r := e.Run(containerID(t, "rsuid"), []string{"--mount", "type=bind,src=" + dir + ",dst=/data,options=rbind:rw:rsuid:rdev"},
		"/bin/sh", "-c", "grep ' /data ' /proc/self/mountinfo")
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	fields := strings.Fields(r.Stdout)
	if len(fields) < 6 {
		t.Fatalf("mountinfo line %q", r.Stdout)
	}
	opts := strings.Split(fields[5], ",")
	if !contains(opts, "nosuid") || !contains(opts, "nodev") {
		t.Errorf("the bind mount ends up %s, without nosuid,nodev", fields[5])
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// 5–7. containerd's own directories in a non-default layout, the shim
// socket directory, another container's bundle, and palisade's secret store
// and mounts are never bind-mounted.
func TestAttackBindNodeDirectories(t *testing.T) {
	e := needEnv(t)
	other := containerID(t, "other")
	startDetached(t, e, other)
	defer removeContainer(t, e, other)
	root := filepath.Join(e.Dir, "root")
	state := filepath.Join(e.Dir, "state")
	cases := map[string]string{
		root: "containerd's root directory",
		filepath.Join(root, "io.containerd.metadata.v1.bolt"): "containerd's root directory",
		state: "containerd's state directory",
		filepath.Join(state, "io.containerd.runtime.v2.task", e.Namespace, other, "rootfs"): "containerd's state directory",
		filepath.Join(e.Dir, "s"):   "the directory of the shim sockets",
		e.RuncRoot:                  "runc's state directory",
		e.SecretMount:               "where palisade mounts containers' secrets",
		e.SecretStore:               "palisade's secret store",
		filepath.Dir(e.SecretStore): "it contains",
	}
	for src, want := range cases {
		id := containerID(t, "bind")
		r := e.Run(id, []string{"--mount", "type=bind,src=" + src + ",dst=/x,options=rbind:rw"}, "/bin/ls", "/x")
		if r.Err == nil {
			t.Errorf("bind of %s was allowed: %s", src, r.Stdout)
			continue
		}
		if !strings.Contains(r.Stderr, "bind mount of "+src+" at /x is not allowed") || !strings.Contains(r.Stderr, want) {
			t.Errorf("bind of %s: refusal\nwant: %s\n got: %s", src, want, r.Stderr)
		}
		assertClean(t, e, id)
	}

	// Through symlinks: judged where they lead, also when the last part does
	// not exist yet (it could appear before runc mounts it), and refused when
	// a link leads nowhere yet.
	links := t.TempDir()
	for name, to := range map[string]string{"state": state, "dangling": filepath.Join(state, "not-yet")} {
		if err := os.Symlink(to, filepath.Join(links, name)); err != nil {
			t.Fatal(err)
		}
	}
	for src, want := range map[string]string{
		filepath.Join(links, "state", "missing"): "bind mount of " + filepath.Join(state, "missing") + " at /x is not allowed: " + state + " is containerd's state directory (bundles, shim sockets) (the source was given as " + filepath.Join(links, "state", "missing") + ")",
		filepath.Join(links, "dangling"):         "bind source " + filepath.Join(links, "dangling") + " cannot be resolved on the host",
	} {
		id := containerID(t, "bind")
		r := e.Run(id, []string{"--mount", "type=bind,src=" + src + ",dst=/x,options=rbind:rw"}, "/bin/ls", "/x")
		if r.Err == nil || !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, "[rule mounts, profile restricted]") {
			t.Errorf("bind of %s: %v\nwant: %s\n got: %s", src, r.Err, want, r.Stderr)
		}
		assertClean(t, e, id)
	}
}

// stdioIO is a client IO with chosen stdio targets, the way a hostile client
// can fill CreateTaskRequest and ExecProcessRequest.
type stdioIO struct{ cfg cio.Config }

func (s *stdioIO) Config() cio.Config { return s.cfg }
func (s *stdioIO) Cancel()            {}
func (s *stdioIO) Wait()              {}
func (s *stdioIO) Close() error       { return nil }

func withStdio(stdout string) cio.Creator {
	return func(string) (cio.IO, error) { return &stdioIO{cio.Config{Stdout: stdout, Stderr: stdout}}, nil }
}

// 6. stdio targets: a binary:// logger for an exec would run on the host as
// root; a plain host file as stdout would be appended to as root.
func TestAttackStdioTargets(t *testing.T) {
	e := needEnv(t)
	c, ctx := client(t, e)
	victim := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(victim, []byte("root:x:0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := containerID(t, "stdout")
	ctr := newContainer(t, e, c, ctx, id, true, oci.WithProcessArgs("/bin/echo", "owned"))
	_, err := ctr.NewTask(ctx, withStdio(victim))
	refusedWith(t, e, id, err, "stdout "+victim+": not an existing FIFO (the shim would append to it as root) [rule stdio]")
	if b, _ := os.ReadFile(victim); string(b) != "root:x:0:0\n" {
		t.Errorf("the host file was written: %q", b)
	}

	id = containerID(t, "execlog")
	startDetached(t, e, id)
	defer removeContainer(t, e, id)
	task, _ := runningTask(t, e, id)
	ctr, err = c.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := *spec.Process
	p.Args = []string{"/bin/true"}
	marker := filepath.Join(t.TempDir(), "ran-on-host")
	_, err = task.Exec(ctx, "x1", &p, withStdio("binary:///bin/sh?-c=touch+"+marker))
	if err == nil || !strings.Contains(err.Error(), "binary:// targets are not allowed for exec processes [rule stdio") {
		t.Fatalf("exec with a binary:// logger: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Error("the logging binary ran on the host")
	}
}

// 8. A FIFO in the secret store fails Create at once with a clear message
// (it used to hang it forever), and leaves nothing behind.
func TestAttackFIFOInSecretStore(t *testing.T) {
	e := needEnv(t)
	scope := filepath.Join(e.SecretStore, "containerd", e.Namespace)
	if err := os.MkdirAll(scope, 0o700); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(scope, "fifo-token")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Remove(fifo) }()
	id := containerID(t, "fifo")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"run", "--rm"}, e.RunArgs()...)
	args = append(args, "--annotation", "palisade.dev/secrets=fifo-token", e.Image(), id, "/bin/true")
	r := e.CtrContext(ctx, args...)
	if ctx.Err() != nil {
		t.Fatal("Create hangs on a FIFO in the secret store")
	}
	if r.Err == nil || !strings.Contains(r.Stderr, `secret "fifo-token" in scope "containerd/`+e.Namespace+`" is a FIFO; the store must hold plain files`) {
		t.Fatalf("refusal: %v", r)
	}
	assertClean(t, e, id)
	assertNoSecretMounts(t, e)
}

// taskPid returns the host PID of a running container's init.
func taskPid(t *testing.T, e *harness.Env, id string) int {
	t.Helper()
	for _, line := range strings.Split(e.Ctr("tasks", "list").Stdout, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == id {
			var pid int
			if _, err := fmt.Sscan(f[1], &pid); err == nil && pid > 0 {
				return pid
			}
		}
	}
	t.Fatalf("no running task %s", id)
	return 0
}

// runningTask loads the task of a running container through containerd's
// Go client.
func runningTask(t *testing.T, e *harness.Env, id string) (containerd.Task, context.Context) {
	t.Helper()
	c, ctx := client(t, e)
	ctr, err := c.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return task, ctx
}
