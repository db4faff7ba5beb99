package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

// Under the default profile (restricted), probed from inside the container.
func TestRestrictedFromInside(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "report")
	r := e.Run(id, nil, "/usr/bin/probe", "report")
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	rep := parseReport(t, r)
	if rep.UID != 65534 || rep.GID != 65534 || slices.Contains(rep.Groups, 0) {
		t.Errorf("runs as uid %d gid %d groups %v, want 65534:65534 without group 0", rep.UID, rep.GID, rep.Groups)
	}
	if rep.NoNewPrivs != 1 {
		t.Errorf("no_new_privs = %d", rep.NoNewPrivs)
	}
	for set, l := range rep.Caps {
		for _, c := range l {
			if c != "CAP_NET_BIND_SERVICE" {
				t.Errorf("%s holds %s; only NET_BIND_SERVICE may be there", set, c)
			}
		}
	}
	assertClean(t, e, id)

	id = containerID(t, "attacks")
	script := strings.Join([]string{
		"probe try write /etc/evil",
		"probe try write /tmp/scratch",
		"probe try copyexec /usr/bin/probe /tmp/payload",
		"probe try fork 400",
		"probe try read /proc/kcore",
		"probe try read /proc/interrupts",
		"probe try write /proc/sys/kernel/domainname",
		"probe try rawsocket",
		"probe try unshare",
	}, "; ")
	r = e.Run(id, nil, "/bin/sh", "-c", script)
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	got := parseOutcomes(t, r)
	want := []struct {
		ok    bool
		errno string
		why   string
	}{
		{false, "EROFS", "a write to the root filesystem must fail"},
		{true, "", "/tmp must be writable"},
		{false, "EACCES", "a program copied to /tmp must not be executable"},
		{false, "EAGAIN", "a fork loop must stop at the PID limit"},
		{true, "", "/proc/kcore must read as an empty masked file"},
		{true, "", "/proc/interrupts must read as an empty masked file"},
		{false, "EROFS", "/proc/sys must be read-only"},
		{false, "EPERM", "raw sockets need NET_RAW, which is dropped"},
		{false, "EPERM", "unshare needs SYS_ADMIN, which is dropped"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d outcomes, want %d: %s", len(got), len(want), r.Stdout)
	}
	if got[4].Errno == "ENOENT" {
		// This kernel has no /proc/kcore (CONFIG_PROC_KCORE off); /proc/interrupts,
		// readable and never empty on the host, proves the masking.
		t.Log("/proc/kcore does not exist on this kernel; masking is proven on /proc/interrupts")
		want[4].ok, want[4].errno = false, "ENOENT"
	}
	for i, w := range want {
		if got[i].OK != w.ok || got[i].Errno != w.errno {
			t.Errorf("%s: %+v, want ok=%v errno=%q", w.why, got[i], w.ok, w.errno)
		}
	}
	if d := got[3].Detail; !strings.HasPrefix(d, "started=") || d == "started=400" {
		t.Errorf("fork loop: %s", d)
	}
	for _, i := range []int{4, 5} {
		if got[i].OK && got[i].Detail != "bytes=0" {
			t.Errorf("%s is not masked: %s", script, got[i].Detail)
		}
	}
	assertClean(t, e, id)
}

// Each refusal names the container, the rule, the profile and the fix,
// leaves nothing behind, and is audited.
func TestRefusals(t *testing.T) {
	e := needEnv(t)
	hostPidNs := fmt.Sprintf("/proc/%d/ns/pid", os.Getpid()) // the test runs in the host's namespaces
	specWithHook := filepath.Join(t.TempDir(), "hook.json")
	writeSpecWithHook(t, e, specWithHook)
	cases := []struct {
		name   string
		args   []string
		config bool // args include --config (no image)
		want   string
	}{
		{"privileged", []string{"--privileged"}, false,
			"privileged containers are not allowed: the spec grants every capability and every device [rule privileged, profile restricted]; run it without --privileged"},
		{"cap-add-sys-admin", []string{"--cap-add", "CAP_SYS_ADMIN"}, false,
			`capability CAP_SYS_ADMIN is not allowed by profile "restricted" (allowed: NET_BIND_SERVICE) [rule capabilities, profile restricted]; remove it from the container's capabilities`},
		{"host-network", []string{"--net-host"}, false,
			"the container would share the host's network namespace [rule namespaces, profile restricted]; run it in its own network namespace"},
		{"host-pid", []string{"--with-ns", "pid:" + hostPidNs}, false,
			"the container would join the host's pid namespace (" + hostPidNs + ") [rule namespaces, profile restricted]"},
		{"containerd-socket", []string{"--mount", "type=bind,src=" + e.Address + ",dst=/run/containerd.sock,options=rbind:rw"}, false,
			"bind mount of " + e.Address + " at /run/containerd.sock is not allowed: " + e.Address + " is containerd's socket [rule mounts, profile restricted]"},
		{"hook", []string{"--config", specWithHook}, true,
			"OCI hook /bin/true is not allowed (hooks run on the host as root) [rule hooks, profile restricted]; remove the hook, or ask the node administrator to add its path to allowed_hooks in " + e.AdminConfig},
		{"unknown-profile", []string{"--annotation", "palisade.dev/profile=nope"}, false,
			`unknown profile "nope" requested with palisade.dev/profile [rule profile-selection]; choose one of the profiles this node allows: restricted`},
		{"misspelt-annotation", []string{"--annotation", "palisade.dev/cap-ad=NET_RAW"}, false,
			`unknown annotation "palisade.dev/cap-ad" [rule annotations]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := containerID(t, "x")
			args := append([]string{"run", "--rm"}, e.RunArgs()...)
			args = append(args, c.args...)
			if c.config {
				args = append(args, id)
			} else {
				args = append(args, e.Image(), id, "/bin/true")
			}
			r := e.Ctr(args...)
			if r.Err == nil {
				t.Fatalf("not refused: %v", r)
			}
			want := "palisade: container " + e.Namespace + "/" + id + ": " + c.want
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("refusal message\nwant: %s\n got: %s", want, r.Stderr)
			}
			if strings.Contains(e.Ctr("containers", "list", "-q").Stdout, id) {
				e.Ctr("containers", "delete", id) // --config containers are not removed by --rm on failure
			}
			assertClean(t, e, id)
			rec := findRecord(auditRecords(t, e, id), audit.EventCreate)
			if rec == nil || rec.Result != audit.ResultRefused || !strings.Contains(rec.Reason, c.want) {
				t.Errorf("audit record %+v does not record the refusal", rec)
			}
		})
	}
}

// writeSpecWithHook writes ctr's default spec plus a createRuntime hook.
func writeSpecWithHook(t *testing.T, e *harness.Env, path string) {
	t.Helper()
	r := e.Ctr("oci", "spec")
	if r.Err != nil {
		t.Fatalf("oci spec: %v", r)
	}
	var s specs.Spec
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		t.Fatal(err)
	}
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true"}}}
	// `ctr oci spec` names the namespace's own cgroup, which other
	// containers live below: palisade refuses an existing cgroup.
	s.Linux.CgroupsPath = ""
	data, _ := json.Marshal(&s)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// palisade.dev/cap-add=NET_BIND_SERVICE lets a non-root process bind port
// 80 (as an ambient capability); without it, it cannot.
func TestCapAddNetBindService(t *testing.T) {
	e := needEnv(t)
	bind := []string{"/usr/bin/probe", "try", "bind", "80"}
	drop := []string{"--cap-drop", "CAP_NET_BIND_SERVICE"}

	id := containerID(t, "without")
	r := e.Run(id, drop, bind...)
	if o := parseOutcomes(t, r); r.Err != nil || o[0].OK || o[0].Errno != "EACCES" {
		t.Errorf("bind 80 without the capability: %v %s", r.Err, r.Stdout)
	}
	id = containerID(t, "with")
	r = e.Run(id, append(drop, "--annotation", "palisade.dev/cap-add=NET_BIND_SERVICE"), bind...)
	if o := parseOutcomes(t, r); r.Err != nil || !o[0].OK {
		t.Errorf("bind 80 with palisade.dev/cap-add=NET_BIND_SERVICE: %v %s", r.Err, r.Stdout)
	}
	rec := findRecord(auditRecords(t, e, id), audit.EventCreate)
	if rec == nil || rec.Result != audit.ResultAllowed {
		t.Fatalf("no audit record for %s", id)
	}
}

// IPC_LOCK is refused under restricted and granted under baseline when the
// admin makes baseline selectable.
func TestIPCLockByProfile(t *testing.T) {
	e := needEnv(t)
	ann := "palisade.dev/cap-add=IPC_LOCK"
	id := containerID(t, "restricted")
	r := e.Run(id, []string{"--annotation", ann}, "/bin/true")
	if r.Err == nil || !strings.Contains(r.Stderr, `capability CAP_IPC_LOCK is not allowed by profile "restricted" (allowed: NET_BIND_SERVICE)`) {
		t.Errorf("IPC_LOCK under restricted: %v", r)
	}
	assertClean(t, e, id)

	// baseline exists but this node's default config does not let workloads pick it.
	id = containerID(t, "notselectable")
	r = e.Run(id, []string{"--annotation", "palisade.dev/profile=baseline", "--annotation", ann}, "/bin/true")
	if r.Err == nil || !strings.Contains(r.Stderr, `profile "baseline" is not selectable on this node`) {
		t.Errorf("baseline without the admin's consent: %v", r)
	}
	assertClean(t, e, id)

	cfg := adminConfig(t, e, `selectable_profiles = ["baseline"]`)
	id = containerID(t, "baseline")
	args := []string{"run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg,
		"--annotation", "palisade.dev/profile=baseline", "--annotation", ann, e.Image(), id, "/usr/bin/probe", "report"}
	r = e.Ctr(args...)
	if r.Err != nil {
		t.Fatalf("baseline with IPC_LOCK: %v", r)
	}
	rep := parseReport(t, r)
	if !slices.Contains(rep.Caps["CapEff"], "CAP_IPC_LOCK") || rep.UID != 0 {
		t.Errorf("under baseline: uid %d, effective %v; want root with CAP_IPC_LOCK", rep.UID, rep.Caps["CapEff"])
	}
	for _, bad := range []string{"CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SYS_CHROOT"} {
		if slices.Contains(rep.Caps["CapBnd"], bad) {
			t.Errorf("baseline container holds %s", bad)
		}
	}
	rec := findRecord(auditRecords(t, e, id), audit.EventCreate)
	if rec == nil || rec.Profile != "baseline" {
		t.Errorf("audit record %+v does not name profile baseline", rec)
	}
}

// Update cannot raise the PID limit; lowering it works.
func TestUpdateCannotRaisePidsLimit(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "upd")
	startDetached(t, e, id)
	defer removeContainer(t, e, id)

	task, ctx := runningTask(t, e, id)
	update := func(n int64) error {
		return task.Update(ctx, containerd.WithResources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &n}}))
	}
	all := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}
	if err := task.Update(ctx, containerd.WithResources(all)); err == nil || !strings.Contains(err.Error(), "an update may not change linux.resources.devices") {
		t.Errorf("opening the device cgroup by an update: %v", err)
	}
	if err := update(100000); err == nil || !strings.Contains(err.Error(), "update of the PID limit to 100000 refused: the container's limit is 256") {
		t.Errorf("raising the PID limit: %v", err)
	}
	if err := update(-1); err == nil {
		t.Error("lifting the PID limit was accepted")
	}
	if err := update(64); err != nil {
		t.Errorf("lowering the PID limit: %v", err)
	}
	var (
		max []byte
		err error
	)
	for _, p := range []string{
		filepath.Join("/sys/fs/cgroup/pids", e.Namespace, id, "pids.max"), // cgroup v1 or hybrid
		filepath.Join("/sys/fs/cgroup", e.Namespace, id, "pids.max"),      // cgroup v2
	} {
		if max, err = os.ReadFile(p); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("cannot find the container's pids cgroup to confirm the lowered limit: %v", err)
	}
	if strings.TrimSpace(string(max)) != "64" {
		t.Errorf("pids.max = %s after lowering to 64", max)
	}
}
