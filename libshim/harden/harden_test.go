package harden

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/caps"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/policy"
)

// request resolves the policy for a profile and annotations with the
// built-in profiles only.
func request(t testing.TB, profile string, ann map[string]string) *Request {
	t.Helper()
	cfg := config.Default()
	cfg.ProfilesDir = ""
	cfg.SelectableProfiles = []string{"baseline"}
	if ann == nil {
		ann = map[string]string{}
	}
	if profile != "" {
		ann[policy.AnnotationProfile] = profile
	}
	pol, err := policy.Resolve("ns/c1", cfg, ann)
	if err != nil {
		t.Fatal(err)
	}
	return &Request{Namespace: "ns", ID: "c1", Config: cfg, Policy: pol, HostPaths: ProtectedPaths(cfg, Node{Addresses: []string{"/run/test-containerd/containerd.sock"}})}
}

// ctrSpec is what `ctr run` sends: containerd's default spec.
func ctrSpec() *specs.Spec {
	def := slices.Clone(caps.RuntimeDefault)
	return &specs.Spec{
		Root: &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args:         []string{"/bin/sh"},
			Capabilities: &specs.LinuxCapabilities{Bounding: def, Effective: def, Permitted: def},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network"}},
			Resources:  &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
		},
	}
}

// hardenInPlace runs Harden and, when it succeeds, puts the hardened spec
// where the client's was: the tests read the result off the spec they built.
// Harden itself must leave the client's spec alone (TestHardenChangesNothingGiven).
func hardenInPlace(req *Request, s *specs.Spec) ([]audit.Change, error) {
	plan, changes, err := Harden(req, s)
	if err != nil {
		return changes, err
	}
	*s = *plan.Spec
	return changes, nil
}

func harden(t *testing.T, req *Request, s *specs.Spec) error {
	t.Helper()
	_, err := hardenInPlace(req, s)
	return err
}

func refusal(t *testing.T, err error, rule string, want ...string) {
	t.Helper()
	var r *policy.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("want a refusal by rule %s, got %v", rule, err)
	}
	if r.Rule != rule || !strings.Contains(err.Error(), "container ns/c1") || !errdefs.IsInvalidArgument(err) {
		t.Errorf("refusal %q: rule %s, want %s", err, r.Rule, rule)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q lacks %q", err, w)
		}
	}
}

func TestRestrictedOnCtrDefaults(t *testing.T) {
	s := ctrSpec()
	changes, err := hardenInPlace(request(t, "", nil), s)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	want := []string{"CAP_NET_BIND_SERVICE"}
	for name, set := range map[string][]string{"bounding": p.Capabilities.Bounding, "effective": p.Capabilities.Effective, "permitted": p.Capabilities.Permitted} {
		if !slices.Equal(set, want) {
			t.Errorf("%s = %v, want %v", name, set, want)
		}
	}
	// Kept runtime defaults are not made ambient: a non-root process would
	// lose them at execve under any runtime; only cap-add makes them last.
	if len(p.Capabilities.Inheritable)+len(p.Capabilities.Ambient) != 0 {
		t.Errorf("inheritable %v ambient %v, want none", p.Capabilities.Inheritable, p.Capabilities.Ambient)
	}
	if p.User.UID != 65534 || p.User.GID != 65534 || !p.NoNewPrivileges || !s.Root.Readonly {
		t.Errorf("user %+v nnp %v readonly %v", p.User, p.NoNewPrivileges, s.Root.Readonly)
	}
	if l := s.Linux.Resources.Pids.Limit; l == nil || *l != 256 {
		t.Errorf("pids limit %v", l)
	}
	i := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/tmp" })
	if i < 0 || s.Mounts[i].Type != "tmpfs" || !slices.Contains(s.Mounts[i].Options, "noexec") || !slices.Contains(s.Mounts[i].Options, "size=67108864") {
		t.Errorf("no size-limited noexec /tmp tmpfs: %+v", s.Mounts)
	}
	for _, m := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"} {
		if !slices.Contains(s.Linux.MaskedPaths, m) {
			t.Errorf("%s not masked", m)
		}
	}
	rules := map[string]bool{}
	for _, c := range changes {
		rules[c.Rule] = true
	}
	for _, r := range []string{"user", "capabilities", "no-new-privileges", "readonly-rootfs", "tmpfs", "masked-paths", "readonly-paths", "devices", "pids-limit"} {
		if !rules[r] {
			t.Errorf("no audited change for rule %s", r)
		}
	}
}

func TestCapabilities(t *testing.T) {
	cases := []struct {
		name    string
		profile string
		ann     map[string]string
		spec    []string
		uid     uint32
		want    []string
		ambient bool
		refuse  string
	}{
		{name: "runtime defaults clamped, not ambient", spec: caps.RuntimeDefault, want: []string{"CAP_NET_BIND_SERVICE"}, ambient: false},
		{name: "nothing asked, nothing given", want: nil},
		{name: "annotation adds an allowed cap", ann: map[string]string{policy.AnnotationCapAdd: "NET_BIND_SERVICE"}, want: []string{"CAP_NET_BIND_SERVICE"}, ambient: true},
		{name: "cap-add of SYS_ADMIN refused", spec: []string{"CAP_SYS_ADMIN"}, refuse: `capability CAP_SYS_ADMIN is not allowed by profile "restricted" (allowed: NET_BIND_SERVICE)`},
		{name: "unknown cap in spec refused", spec: []string{"CAP_BOGUS"}, refuse: `unknown capability "CAP_BOGUS"`},
		{name: "baseline root keeps its defaults minus the dangerous ones", profile: "baseline", uid: 0, spec: caps.RuntimeDefault,
			want: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID"}},
		{name: "baseline IPC_LOCK on request", profile: "baseline", ann: map[string]string{policy.AnnotationCapAdd: "ipc_lock"}, want: []string{"CAP_IPC_LOCK"}},
		{name: "NET_RAW asked for alone (drop ALL, add NET_RAW) is refused, not dropped", profile: "baseline", spec: []string{"CAP_NET_RAW"},
			refuse: `capability CAP_NET_RAW is not allowed by profile "baseline"`},
		{name: "defaults minus a few are still clamped", spec: slices.DeleteFunc(slices.Clone(caps.RuntimeDefault), func(c string) bool { return c == "CAP_NET_RAW" || c == "CAP_MKNOD" }),
			want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "baseline NET_ADMIN refused", profile: "baseline", spec: []string{"CAP_NET_ADMIN"}, refuse: "capability CAP_NET_ADMIN is not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := request(t, c.profile, c.ann)
			if c.profile == "" {
				c.uid = 65534 // what the user step makes of root under restricted
			}
			p := &specs.Process{User: specs.User{UID: c.uid}, Capabilities: &specs.LinuxCapabilities{Bounding: c.spec, Effective: c.spec, Permitted: c.spec}}
			r := &run{req: req, rule: "capabilities"}
			err := capabilities(r, p)
			if c.refuse != "" {
				refusal(t, err, "capabilities", c.refuse)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Capabilities.Bounding, c.want) || !slices.Equal(p.Capabilities.Effective, c.want) || !slices.Equal(p.Capabilities.Permitted, c.want) {
				t.Errorf("caps %+v, want %v", p.Capabilities, c.want)
			}
			if got := len(p.Capabilities.Ambient) > 0; got != (c.ambient && len(c.want) > 0) {
				t.Errorf("ambient %v, want ambient=%v", p.Capabilities.Ambient, c.ambient)
			}
		})
	}
}

func TestUser(t *testing.T) {
	cases := []struct {
		name, profile string
		in, want      specs.User
	}{
		{"root becomes nobody", "", specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0, 10}}, specs.User{UID: 65534, GID: 65534, AdditionalGids: []uint32{10}}},
		{"non-root kept, root group dropped", "", specs.User{UID: 1000, GID: 0, AdditionalGids: []uint32{0}}, specs.User{UID: 1000, GID: 65534, AdditionalGids: []uint32{}}},
		{"baseline allows root", "baseline", specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}}, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &specs.Process{User: c.in}
			if err := user(&run{req: request(t, c.profile, nil)}, p); err != nil {
				t.Fatal(err)
			}
			if p.User.UID != c.want.UID || p.User.GID != c.want.GID || !slices.Equal(p.User.AdditionalGids, c.want.AdditionalGids) {
				t.Errorf("user %+v, want %+v", p.User, c.want)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*specs.Spec)
		rule   string
		want   string
	}{
		{"privileged", func(s *specs.Spec) {
			all, _ := caps.Host()
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		}, "privileged", "privileged containers are not allowed: the spec grants every capability and every device"},
		{"host network", func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:4] }, "namespaces", "share the host's network namespace"},
		{"host pid by path", func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "/proc/self/ns/pid" }, "namespaces", "join the host's pid namespace"},
		{"containerd socket", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/c.sock", Type: "bind", Source: "/run/containerd/containerd.sock", Options: []string{"rbind"}})
		}, "mounts", "bind mount of /run/containerd/containerd.sock at /c.sock is not allowed"},
		{"node's own containerd socket", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/c.sock", Type: "bind", Source: "/run/test-containerd/containerd.sock", Options: []string{"rbind"}})
		}, "mounts", "/run/test-containerd/containerd.sock is containerd's socket"},
		{"host root", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/host", Type: "bind", Source: "/", Options: []string{"rbind"}})
		}, "mounts", "it contains /proc"},
		{"host /var", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/v", Type: "none", Source: "/var", Options: []string{"bind"}})
		}, "mounts", "it contains /var/run/"},
		{"block device filesystem", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/disk", Type: "ext4", Source: "/dev/vda"})
		}, "mounts", `mount of type "ext4" at /disk is not allowed`},
		{"hook", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/usr/bin/evil"}}}
		}, "hooks", "OCI hook /usr/bin/evil is not allowed"},
		{"device", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/sda", Type: "b", Major: 8}}
		}, "devices", "device /dev/sda is not allowed"},
		{"sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.core_pattern": "|/x"} }, "sysctls", "sysctl kernel.core_pattern is not allowed"},
		{"host root as rootfs", func(s *specs.Spec) { s.Root.Path = "/" }, "process-required", "root filesystem / is not allowed: it contains /proc"},
		{"rootfs outside the bundle", func(s *specs.Spec) { s.Root.Path = "../../.." }, "process-required", "a relative root must be a directory inside the bundle"},
		{"runtime state as rootfs", func(s *specs.Spec) { s.Root.Path = "/run/containerd" }, "process-required", "/run/containerd is a host system path"},
		{"second procfs", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostproc", Type: "proc", Source: "proc"})
		}, "mounts", "a proc mount at /hostproc is not allowed (only at /proc)"},
		{"second sysfs", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/s", Type: "sysfs", Source: "sysfs", Options: []string{"ro"}})
		}, "mounts", "a sysfs mount at /s is not allowed"},
		{"user namespace onto host root", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 65534, HostID: 0, Size: 1}}
		}, "process-required", "maps container id 65534 to host id 0"},
		{"unified pids.max", func(s *specs.Spec) { s.Linux.Resources.Unified = map[string]string{"pids.max": "max"} }, "pids-limit", "cgroup v2 setting pids.max would override the PID limit"},
		{"apparmor unconfined", func(s *specs.Spec) { s.Process.ApparmorProfile = "unconfined" }, "lsm-labels", `AppArmor profile "unconfined" is not allowed`},
		{"selinux spc_t", func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:spc_t:s0" }, "lsm-labels", "would run the process unconfined"},
		{"host usr", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/h", Type: "bind", Source: "/usr/bin", Options: []string{"rbind"}})
		}, "mounts", "/usr is a host system path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ctrSpec()
			c.mutate(s)
			refusal(t, harden(t, request(t, "", nil), s), c.rule, c.want)
		})
	}
}

func TestBindMountsAllowedAndForcedNosuidNodev(t *testing.T) {
	dir := t.TempDir()
	s := ctrSpec()
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "rw", "suid"}},
		specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: "/var/lib/kubelet/pods/uid/etc-hosts", Options: []string{"rbind"}},
		specs.Mount{Destination: "/tmp", Type: "bind", Source: dir, Options: []string{"rbind"}},
	)
	// A pod's container may mount from its own pod's kubelet directory only.
	pod := func(ns, uid string) *Request {
		ann := map[string]string{annotationSandboxUID: uid}
		req := request(t, "", nil)
		req.Namespace = ns
		req.CarveOuts = carveOuts(ns, req.Config, Node{}, ann)
		return req
	}
	for _, other := range []*Request{pod("k8s.io", "another-pod"), pod("default", "uid"), request(t, "", nil)} {
		if err := harden(t, other, mustClone(t, s)); err == nil || !strings.Contains(err.Error(), "/var/lib/kubelet is ") {
			t.Errorf("another pod's kubelet directory: %v", err)
		}
	}
	if err := harden(t, pod("k8s.io", "uid"), s); err != nil {
		t.Fatal(err)
	}
	for _, m := range s.Mounts {
		if isBind(m) && (!slices.Contains(m.Options, "nosuid") || !slices.Contains(m.Options, "nodev") || slices.Contains(m.Options, "suid")) {
			t.Errorf("bind %s options %v", m.Destination, m.Options)
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(s.Mounts), func(m specs.Mount) bool { return m.Destination != "/tmp" })); n != 1 {
		t.Errorf("the volume at /tmp was not kept alone: %d mounts at /tmp", n)
	}
}

func TestPidsLimit(t *testing.T) {
	lim := func(n int64) *int64 { return &n }
	cases := []struct {
		name string
		ann  map[string]string
		spec *int64
		want int64
	}{
		{"profile limit", nil, nil, 256},
		{"higher spec value clamped", nil, lim(100000), 256},
		{"unlimited spec clamped", nil, lim(-1), 256},
		{"lower spec value kept", nil, lim(32), 32},
		{"annotation lowers", map[string]string{policy.AnnotationPidsLimit: "64"}, nil, 64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ctrSpec()
			if c.spec != nil {
				s.Linux.Resources.Pids = &specs.LinuxPids{Limit: c.spec}
			}
			if err := harden(t, request(t, "", c.ann), s); err != nil {
				t.Fatal(err)
			}
			if got := *s.Linux.Resources.Pids.Limit; got != c.want {
				t.Errorf("limit %d, want %d", got, c.want)
			}
		})
	}
}

func TestResourcesUpdate(t *testing.T) {
	req := request(t, "", nil)
	for _, n := range []int64{257, 0, -1} {
		if _, err := Resources(req, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &n}}); err == nil || !errdefs.IsFailedPrecondition(err) {
			t.Errorf("update to %d: %v", n, err)
		}
	}
	n := int64(100)
	if _, err := Resources(req, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &n}}); err != nil {
		t.Errorf("lowering: %v", err)
	}
	if _, err := Resources(req, &specs.LinuxResources{}); err != nil {
		t.Errorf("no pids: %v", err)
	}
	if _, err := Resources(req, &specs.LinuxResources{Unified: map[string]string{"pids.max": "max"}}); err == nil || !errdefs.IsFailedPrecondition(err) {
		t.Errorf("lifting the limit through cgroup v2 unified: %v", err)
	}
}

func TestProcessForExec(t *testing.T) {
	in := &specs.Process{Args: []string{"sh"}, Capabilities: &specs.LinuxCapabilities{Bounding: caps.RuntimeDefault, Effective: caps.RuntimeDefault, Permitted: caps.RuntimeDefault}}
	p, _, err := Process(request(t, "", nil), in)
	if err != nil {
		t.Fatal(err)
	}
	if in.NoNewPrivileges || in.User.UID != 0 {
		t.Errorf("Process changed the request's own process: %+v", in)
	}
	if !p.NoNewPrivileges || p.User.UID != 65534 || !slices.Equal(p.Capabilities.Effective, []string{"CAP_NET_BIND_SERVICE"}) || len(p.Capabilities.Ambient) != 0 {
		t.Errorf("exec process %+v caps %+v", p, p.Capabilities)
	}
	if _, _, err := Process(request(t, "", nil), nil); err == nil {
		t.Error("nil exec process accepted")
	}
	sysAdmin := &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN"}}}
	if _, _, err := Process(request(t, "", nil), sysAdmin); err == nil {
		t.Error("exec with CAP_SYS_ADMIN accepted")
	}
}

// Verify is independent of the transforms: a spec that skipped the pipeline
// fails it, naming each broken invariant.
func TestVerifyCatchesUnhardenedSpec(t *testing.T) {
	err := Verify(request(t, "", nil), nil, ctrSpec())
	if err == nil || !errdefs.IsInternal(err) {
		t.Fatalf("verify: %v", err)
	}
	for _, rule := range []string{"verify-no-new-privileges", "verify-capabilities", "verify-user", "verify-readonly-rootfs", "verify-pids-limit", "verify-masked-paths", "verify-readonly-paths"} {
		if !strings.Contains(err.Error(), "rule "+rule) {
			t.Errorf("verification did not report %s: %v", rule, err)
		}
	}
}

// FuzzSpec checks the pipeline's invariants on arbitrary specs: it never
// panics, a hardened spec always verifies, hardening is idempotent, and it
// is monotone: no capability appears that neither the spec nor the
// annotation asked for.
func FuzzSpec(f *testing.F) {
	seed, _ := json.Marshal(ctrSpec())
	f.Add(seed, "", "")
	f.Add([]byte(`{"root":{"path":"r"},"process":{"args":["/bin/sh"],"user":{"uid":0}},"linux":{}}`), "baseline", "IPC_LOCK")
	f.Add([]byte(`{"root":{"path":"r"},"process":{"noNewPrivileges":true,"capabilities":{"bounding":["CAP_NET_RAW"]}},"linux":{"resources":{"pids":{"limit":9}}}}`), "", "net_bind_service")
	f.Add([]byte(`{}`), "", "")
	f.Fuzz(func(t *testing.T, data []byte, profile, capAdd string) {
		var s specs.Spec
		if json.Unmarshal(data, &s) != nil {
			return
		}
		if profile != "" && profile != "baseline" && profile != "restricted" {
			return
		}
		ann := map[string]string{}
		if capAdd != "" {
			ann[policy.AnnotationCapAdd] = capAdd
		}
		cfg := config.Default()
		cfg.ProfilesDir = ""
		cfg.SelectableProfiles = []string{"baseline"}
		if profile != "" {
			ann[policy.AnnotationProfile] = profile
		}
		pol, err := policy.Resolve("ns/c1", cfg, ann)
		if err != nil {
			return
		}
		req := &Request{Namespace: "ns", ID: "c1", Config: cfg, Policy: pol}
		var asked []string
		if s.Process != nil && s.Process.Capabilities != nil {
			c := s.Process.Capabilities
			for _, l := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
				asked = append(asked, l...)
			}
		}
		plan, _, err := Harden(req, &s)
		if err == nil {
			s = *plan.Spec
		}
		if err != nil {
			if errdefs.IsInternal(err) {
				t.Fatalf("the pipeline produced a spec its own verification rejects: %v", err)
			}
			return // refused: fine, as long as it did not panic
		}
		if err := Verify(req, &plan.Decisions, &s); err != nil {
			t.Fatalf("hardened spec fails verification: %v", err)
		}
		for _, c := range s.Process.Capabilities.Bounding {
			if !slices.Contains(asked, c) && !slices.Contains(pol.CapAdd, c) {
				t.Fatalf("capability %s was granted but never asked for", c)
			}
		}
		once, _ := json.Marshal(&s)
		changes, err := hardenInPlace(req, &s)
		if err != nil {
			t.Fatalf("hardening a hardened spec failed: %v", err)
		}
		twice, _ := json.Marshal(&s)
		changes = slices.DeleteFunc(changes, func(c audit.Change) bool { return c.Note })
		if len(changes) != 0 || !reflect.DeepEqual(once, twice) {
			t.Fatalf("hardening is not idempotent: changes %+v\n%s\n%s", changes, once, twice)
		}
	})
}

// BenchmarkPipeline is the hardening of a ctr-style spec under restricted,
// policy resolution and seccomp included, without any file IO.
func BenchmarkPipeline(b *testing.B) {
	cfg := config.Default()
	cfg.ProfilesDir = ""
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s := ctrSpec()
		pol, err := policy.Resolve("ns/c1", cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := Harden(&Request{Namespace: "ns", ID: "c1", Config: cfg, Policy: pol}, s); err != nil {
			b.Fatal(err)
		}
	}
}

// The exec allow-list needs Landlock: with the injected detector saying the
// kernel lacks it, Create refuses unless the admin accepted API-only checks,
// and the audit changes say which happened.
func TestExecAllowlistWithoutLandlock(t *testing.T) {
	root, helper := execFixture(t)
	for _, c := range []struct {
		landlock string
		abi      func() (int, error)
		refuse   string
		wrapped  bool
		note     string
	}{
		{config.LandlockRequire, func() (int, error) { return 0, syscall.EOPNOTSUPP }, "the exec allow-list needs Landlock, which this kernel does not provide", false, ""},
		{config.LandlockIfAvailable, func() (int, error) { return 0, syscall.EOPNOTSUPP }, "", false, "Landlock unavailable"},
		{config.LandlockRequire, func() (int, error) { return 7, nil }, "", true, ""},
	} {
		req := request(t, "", map[string]string{policy.AnnotationExecAllow: "/bin/app"})
		req.Config.Landlock = c.landlock
		req.LandlockABI = c.abi
		req.Helper = helper
		req.Rootfs = func(f func(string) error) error { return f(root) }
		s := ctrSpec()
		s.Process.Args = []string{"/bin/app"}
		changes, err := hardenInPlace(req, s)
		if c.refuse != "" {
			refusal(t, err, "exec-allowlist", c.refuse)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.landlock, err)
		}
		if wrapped := s.Process.Args[0] == "/dev/.palisade-init"; wrapped != c.wrapped {
			t.Errorf("%s: args %v, wrapped = %v, want %v", c.landlock, s.Process.Args, wrapped, c.wrapped)
		}
		if c.note != "" && !slices.ContainsFunc(changes, func(ch audit.Change) bool { return strings.Contains(fmt.Sprint(ch.After), c.note) }) {
			t.Errorf("%s: no audited note %q in %+v", c.landlock, c.note, changes)
		}
		if c.wrapped {
			again, err := hardenInPlace(req, s)
			again = slices.DeleteFunc(again, func(c audit.Change) bool { return c.Note }) // observations, such as an absent LSM
			if err != nil || len(again) != 0 {
				t.Errorf("hardening a wrapped spec again: %v %+v", err, again)
			}
		}
	}
}

func TestHostDeviceMismatch(t *testing.T) {
	if why := hostDeviceMismatch(specs.LinuxDevice{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}); why != "" {
		t.Errorf("/dev/null as it is: %s", why)
	}
	if why := hostDeviceMismatch(specs.LinuxDevice{Path: "/dev/null", Type: "b", Major: 8, Minor: 0}); !strings.Contains(why, "the spec says b 8:0 but the host's is c 1:3") {
		t.Errorf("/dev/null with a disk's numbers: %q", why)
	}
}

// A client mount at the helper's path cannot stand in for the helper.
func TestHelperMountCannotBeSpoofed(t *testing.T) {
	root, helper := execFixture(t)
	fake := t.TempDir()
	req := request(t, "", map[string]string{policy.AnnotationExecAllow: "/bin/app"})
	req.LandlockABI = func() (int, error) { return 7, nil }
	req.Helper = helper
	req.Rootfs = func(f func(string) error) error { return f(root) }
	s := ctrSpec()
	s.Process.Args = []string{"/bin/app"}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/.palisade-init", Type: "bind", Source: fake, Options: []string{"rbind"}})
	if _, err := hardenInPlace(req, s); err != nil {
		t.Fatal(err)
	}
	for _, m := range s.Mounts {
		if m.Source == fake {
			t.Fatalf("the client's mount at the helper path survived: %+v", s.Mounts)
		}
	}
}

// execFixture makes a root filesystem with /bin/app and a stand-in helper.
func execFixture(t *testing.T) (root, helper string) {
	t.Helper()
	root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/app"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	helper = filepath.Join(t.TempDir(), "palisade-init")
	if err := os.WriteFile(helper, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root, helper
}

func mustClone(t *testing.T, s *specs.Spec) *specs.Spec {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out specs.Spec
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// Harden changes nothing it was given: not the client's spec, not the
// request, not the policy.
func TestHardenChangesNothingGiven(t *testing.T) {
	root, helper := execFixture(t)
	req := request(t, "", map[string]string{policy.AnnotationExecAllow: "/bin/app"})
	req.LandlockABI = func() (int, error) { return 7, nil }
	req.Helper = helper
	req.Rootfs = func(f func(string) error) error { return f(root) }
	s := ctrSpec()
	s.Process.Args = []string{"/bin/app"}
	before, _ := json.Marshal(s)
	pol, _ := json.Marshal(req.Policy)
	plan, _, err := Harden(req, s)
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := json.Marshal(s); string(after) != string(before) {
		t.Errorf("the client's spec was changed:\n%s\n%s", before, after)
	}
	if after, _ := json.Marshal(req.Policy); string(after) != string(pol) {
		t.Errorf("the policy was changed:\n%s\n%s", pol, after)
	}
	if plan.Spec == s || !plan.Spec.Root.Readonly || !plan.ExecEnforced || !slices.Equal(plan.ExecAllow, []string{"/bin/app"}) {
		t.Errorf("the plan: root %+v, exec %+v", plan.Spec.Root, plan.Decisions)
	}
}

// A secret's custom target inside the read-only secrets directory cannot be
// placed there: refused with a message, not left to fail inside runc.
func TestSecretTargetInsideSecretsDir(t *testing.T) {
	cfg := config.Default()
	cfg.ProfilesDir = ""
	cfg.Secrets.Store = t.TempDir()
	pol, err := policy.Resolve("ns/c1", cfg, map[string]string{policy.AnnotationSecrets: "db=/run/secrets/database"})
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{Namespace: "ns", ID: "c1", Config: cfg, Policy: pol, SecretsDir: "/run/palisade/secrets/ns/c1"}
	refusal(t, harden(t, req, ctrSpec()), "secrets", "target /run/secrets/database lies inside the read-only secrets directory /run/secrets")
}

// A bind source is judged where its symlinks lead, also when its last
// components do not exist yet; a link that leads nowhere yet is refused.
func TestResolveHostPath(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, to := range map[string]string{"link": target, "dangling": filepath.Join(target, "not-yet"), "loop": filepath.Join(dir, "loop")} {
		if err := os.Symlink(to, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{filepath.Join(dir, "link"), target},
		{filepath.Join(dir, "link", "a", "b"), filepath.Join(target, "a", "b")},
		{dir + "/link/../target/g", ""}, // missing, after ".."
		{dir + "/link/../link", target},
		{filepath.Join(dir, "plain", "d"), filepath.Join(dir, "plain", "d")},
		{filepath.Join(dir, "dangling"), ""},
		{filepath.Join(dir, "dangling", "e"), ""},
		{filepath.Join(dir, "loop", "f"), ""},
	} {
		got, err := resolveHostPath(tc.in)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("resolveHostPath(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
