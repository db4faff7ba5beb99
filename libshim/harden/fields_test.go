package harden

import (
	"flag"

	"github.com/containerd/errdefs"
	"os"
	"palisade.dev/palisade/libshim/docgen"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// coveredPaths lists every field path of t (by JSON name) whose rule must
// exist: a field is covered by its own rule or by an ancestor's rule that
// is not a walk.
func uncoveredFields(t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous {
			uncoveredFields(f.Type, path, out)
			continue
		}
		p := jsonPath(path, f)
		rule, ok := specFields[p]
		switch {
		case !ok:
			*out = append(*out, p)
		case rule.kind == ruleWalk:
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() != reflect.Struct {
				*out = append(*out, p+" (a walk rule on a non-struct)")
				continue
			}
			uncoveredFields(ft, p, out)
		}
	}
}

// Every runtime-spec field has a rule: a new runtime-spec release that
// adds a field fails here until palisade decides what it means.
func TestSpecFieldsCovered(t *testing.T) {
	var missing []string
	uncoveredFields(reflect.TypeOf(specs.Spec{}), "", &missing)
	if len(missing) > 0 {
		t.Fatalf("runtime-spec fields without a palisade rule (add them to specFields):\n  %s", strings.Join(missing, "\n  "))
	}
	// and no rule names a field that does not exist or a step that does not
	steps := map[string]bool{}
	for _, st := range pipeline {
		steps[st.name] = true
	}
	var all []string
	var collect func(reflect.Type, string)
	collect = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				collect(f.Type, path)
				continue
			}
			p := jsonPath(path, f)
			all = append(all, p)
			collect(f.Type, p)
		}
	}
	collect(reflect.TypeOf(specs.Spec{}), "")
	for p, rule := range specFields {
		if !slices.Contains(all, p) {
			t.Errorf("rule for %s, which is not a runtime-spec field", p)
		}
		if rule.kind == ruleStep && !steps[rule.why] {
			t.Errorf("rule for %s names step %q, which the pipeline does not have", p, rule.why)
		}
		if (rule.kind == ruleAllow || rule.kind == ruleRefuse) && rule.why == "" {
			t.Errorf("rule for %s gives no reason", p)
		}
	}
}

// A field palisade has no rule for refuses the container (simulated by
// removing a rule), and every refused field refuses it with its reason.
func TestFieldsRefuse(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*specs.Spec)
		want   string
	}{
		{"netDevices", func(s *specs.Spec) { s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth0": {}} }, "linux.netDevices, which is not allowed: it would move a host network interface"},
		{"intelRdt", func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"} }, "linux.intelRdt"},
		{"windows", func(s *specs.Spec) { s.Windows = &specs.Windows{} }, "windows"},
		{"rt cpu", func(s *specs.Spec) {
			n := int64(1000)
			s.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: &n}}
		}, "realtimeRuntime"},
		{"fifo scheduler", func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 99} }, "scheduling policy SCHED_FIFO"},
		{"negative nice", func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: -20} }, "negative nice"},
		{"rt io", func(s *specs.Spec) { s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT} }, "I/O priority class IOPRIO_CLASS_RT"},
		{"rlimit above node", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1 << 62}}
		}, "above what the node allows"},
		{"unknown rlimit", func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_X"}} }, "unknown"},
		{"unified cgroup.procs", func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}
		}, `"cgroup.procs" is not allowed`},
		{"existing cgroup", func(s *specs.Spec) { s.Linux.CgroupsPath = "/" }, "does not name a cgroup of its own"},
		{"parent cgroup", func(s *specs.Spec) { s.Linux.CgroupsPath = existingCgroup(t) }, "already exists"},
		{"dotdot cgroup", func(s *specs.Spec) { s.Linux.CgroupsPath = "/a/../../b" }, "does not name a cgroup of its own"},
		{"shared propagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "rshared" }, `propagation "rshared"`},
		{"personality flags", func(s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux, Flags: []specs.LinuxPersonalityFlag{"ADDR_NO_RANDOMIZE"}}
		}, "personality flags"},
		{"spc_t mount label", func(s *specs.Spec) { s.Linux.MountLabel = "system_u:object_r:spc_t:s0" }, "mount label"},
		{"username", func(s *specs.Spec) { s.Process.User.Username = "Administrator" }, "process.user.username"},
		{"huge annotations", func(s *specs.Spec) { s.Annotations = map[string]string{"x": strings.Repeat("a", maxAnnotations+1)} }, "annotations total"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ctrSpec()
			c.mutate(s)
			refusal(t, harden(t, request(t, "", nil), s), "fields", c.want)
		})
	}
	// Without a rule, a field refuses the container.
	saved := specFields["linux.timeOffsets"]
	delete(specFields, "linux.timeOffsets")
	defer func() { specFields["linux.timeOffsets"] = saved }()
	s := ctrSpec()
	s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1}}
	refusal(t, harden(t, request(t, "", nil), s), "fields", "linux.timeOffsets, a field palisade has no rule for")
}

func existingCgroup(t *testing.T) string {
	for _, root := range cgroupRoots() {
		if st, err := os.Stat(root + "/system.slice"); err == nil && st.IsDir() {
			return "/system.slice"
		}
		if entries, err := os.ReadDir(root); err == nil {
			for _, e := range entries {
				if e.IsDir() {
					return "/" + e.Name()
				}
			}
		}
	}
	t.Skip("no cgroup hierarchy with a child cgroup on this host")
	return ""
}

func TestFieldsAllowedAndClamped(t *testing.T) {
	s := ctrSpec()
	adj := -1000
	s.Process.OOMScoreAdj = &adj
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}}
	s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}
	s.Linux.RootfsPropagation = "rslave"
	s.Linux.CgroupsPath = "/palisade-test-does-not-exist/c1"
	s.Linux.Resources = &specs.LinuxResources{Unified: map[string]string{"memory.max": "1G"}}
	if err := harden(t, request(t, "", nil), s); err != nil {
		t.Fatal(err)
	}
	own, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	if got := *s.Process.OOMScoreAdj; got < -1000 || strings.TrimSpace(string(own)) != "-1000" && got == -1000 {
		t.Errorf("oomScoreAdj -1000 kept (shim's own %s)", strings.TrimSpace(string(own)))
	}
}

// Effective mount attributes follow runc: later plain options win, and the
// recursive ones win over the plain ones.
func TestEffectiveMountAttrs(t *testing.T) {
	cases := []struct {
		opts []string
		want []string // lacking nosuid,nodev
	}{
		{[]string{"rbind", "rw", "nosuid", "nodev"}, nil},
		{[]string{"rbind", "rw", "rsuid", "rdev"}, []string{"nosuid", "nodev"}},
		{[]string{"nosuid", "nodev", "rsuid"}, []string{"nosuid"}},
		{[]string{"rsuid", "rnosuid", "rnodev"}, nil},
		{[]string{"nosuid", "suid", "nodev"}, []string{"nosuid"}},
		{[]string{"rnosuid", "suid", "nodev"}, nil},
	}
	for _, c := range cases {
		if got := lacking(c.opts, attrNoSUID, attrNoDev); !slices.Equal(got, c.want) {
			t.Errorf("%v: lacking %v, want %v", c.opts, got, c.want)
		}
		fixed := enforceAttrs(c.opts, attrNoSUID, attrNoDev)
		if l := lacking(fixed, attrNoSUID, attrNoDev); len(l) > 0 || weakens(fixed, []attr{attrNoSUID, attrNoDev}) {
			t.Errorf("%v enforced to %v still lacks %v", c.opts, fixed, l)
		}
	}
	if l := lacking([]string{"ro", "rrw"}, attrRO); len(l) != 1 {
		t.Error("rrw after ro left the mount read-only")
	}
}

// Every mount option runc knows has a rule here: a new one in a runc
// release fails this test until palisade classifies it.
func TestMountOptionsCoverRunc(t *testing.T) {
	for _, o := range specconv.KnownMountOptions() {
		_, a := attrOptions[o]
		_, r := refusedOptions[o]
		if !a && !r && !slices.Contains(neutralOptions, o) {
			t.Errorf("runc mount option %q has no palisade rule", o)
		}
	}
}

// A bind with recursive options that clear nosuid/nodev is rewritten so
// that the mount ends up nosuid,nodev; the verification reads the effect.
func TestRecursiveOptionsClamped(t *testing.T) {
	s := ctrSpec()
	dir := t.TempDir()
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "rw", "rsuid", "rdev"}})
	req := request(t, "", nil)
	if err := harden(t, req, s); err != nil {
		t.Fatal(err)
	}
	m := s.Mounts[slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/data" })]
	if slices.Contains(m.Options, "rsuid") || slices.Contains(m.Options, "rdev") || len(lacking(m.Options, attrNoSUID, attrNoDev)) > 0 {
		t.Errorf("options %v", m.Options)
	}
	// The check alone catches an unhardened one.
	m.Options = []string{"rbind", "nosuid", "nodev", "rsuid"}
	if msg := verifyMounts(req, nil, &specs.Spec{Mounts: []specs.Mount{m}}); !strings.Contains(msg, "does not end up nosuid") {
		t.Errorf("verify: %q", msg)
	}
	for _, o := range []string{"rshared", "remount", "idmap"} {
		s := ctrSpec()
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", o}})
		refusal(t, harden(t, request(t, "", nil), s), "mounts", `option "`+o+`"`)
	}
}

func TestRootfsMounts(t *testing.T) {
	root := t.TempDir()
	snap := root + "/io.containerd.snapshotter.v1.overlayfs"
	for _, d := range []string{"/snapshots/1/fs", "/snapshots/2/fs", "/snapshots/2/work"} {
		if err := os.MkdirAll(snap+d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	good := RootfsMount{Type: "overlay", Source: "overlay", Options: []string{"index=off", "lowerdir=" + snap + "/snapshots/1/fs", "upperdir=" + snap + "/snapshots/2/fs", "workdir=" + snap + "/snapshots/2/work"}}
	if why := rootfsMountProblem(good, []string{snap}); why != "" {
		t.Fatalf("snapshot refused: %s", why)
	}
	bad := []struct {
		m    RootfsMount
		want string
	}{
		{RootfsMount{Type: "bind", Source: "/", Options: []string{"rbind", "ro"}}, "/ is not a snapshot's fs directory"},
		{RootfsMount{Type: "overlay", Options: []string{"lowerdir=/etc:" + snap + "/snapshots/1/fs"}}, "/etc is not a snapshot's fs directory"},
		{RootfsMount{Type: "overlay", Options: []string{"lowerdir=" + snap + "/snapshots/1/fs/../../../..", "upperdir=/tmp"}}, "is not a snapshot's fs directory"},
		// a comma in a value is a second option to the kernel
		{RootfsMount{Type: "overlay", Options: []string{"upperdir=" + snap + "/snapshots/2/fs,lowerdir=/etc:" + snap + "/snapshots/1/fs"}}, "holds a comma"},
		// the whole snapshots directory is not a snapshot
		{RootfsMount{Type: "bind", Source: snap + "/snapshots", Options: []string{"rbind"}}, "is not a snapshot's fs directory"},
		{RootfsMount{Type: "overlay", Options: []string{"lowerdir=" + snap + "/snapshots/1/fs", "device=/dev/vda"}}, `overlay option "device=/dev/vda"`},
		{RootfsMount{Type: "erofs", Source: snap + "/snapshots/1/layer.erofs"}, `not "erofs"`},
		{RootfsMount{Type: "ext4", Source: "/dev/sda1"}, `not "ext4"`},
		{RootfsMount{Type: "bind", Source: snap + "/snapshots/1/fs", Target: "/x"}, "targets /x"},
		{good, "could not learn"},
	}
	for i, c := range bad {
		roots := []string{snap}
		if i == len(bad)-1 {
			roots = nil
		}
		if why := rootfsMountProblem(c.m, roots); !strings.Contains(why, c.want) {
			t.Errorf("%s: %q, want %q", c.m, why, c.want)
		}
	}
	req := request(t, "", nil)
	req.RootfsMounts = []RootfsMount{bad[0].m}
	req.SnapshotterRoots = []string{snap}
	refusal(t, harden(t, req, ctrSpec()), "rootfs-mounts", "the task's root filesystem mount bind / (rbind,ro) is not allowed")
	bind := RootfsMount{Type: "bind", Source: snap + "/snapshots/1/fs", Options: []string{"ro", "rbind"}}
	if why := rootfsMountProblem(bind, []string{snap}); why != "" {
		t.Errorf("a single-layer snapshot bind refused: %s", why)
	}
}

// Namespace paths: the host's and any other namespace are refused; the
// pod sandbox's (Joinable) and CNI's pinned netns are allowed.
func TestNamespaceJoins(t *testing.T) {
	withNS := func(typ specs.LinuxNamespaceType, path string) *specs.Spec {
		s := ctrSpec()
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == typ {
				s.Linux.Namespaces[i].Path = path
			}
		}
		return s
	}
	refusal(t, harden(t, request(t, "", nil), withNS("pid", "/proc/self/ns/pid")), "namespaces", "join the host's pid namespace")
	refusal(t, harden(t, request(t, "", nil), withNS("pid", "/nonexistent")), "namespaces", "there is no pid namespace at /nonexistent")
	refusal(t, harden(t, request(t, "", nil), withNS("pid", "/proc/self/ns/net")), "namespaces", "not a pid namespace")
	refusal(t, harden(t, request(t, "", nil), withNS("pid", "/etc/hostname")), "namespaces", "not a namespace file")
	// /proc/1/ns/pid is the host's here, so simulate "another container" with
	// a namespace the test sees but the request does not own: the test's own
	// user namespace is the host's too, so use Joinable to prove the allow path.
	req := request(t, "", nil)
	req.Joinable = func(typ specs.LinuxNamespaceType) []string { return []string{"/proc/self/ns/" + nsFile[typ]} }
	req.Policy.Profile.Namespaces.HostAllowed = nil
	if why, _ := req.joinProblem(specs.LinuxNamespace{Type: specs.IPCNamespace, Path: "/proc/self/ns/ipc"}, nil); !strings.Contains(why, "host's") {
		t.Errorf("host namespace through Joinable: %q", why)
	}
}

// setLeaf walks to the n-th leaf field of v (allocating pointers, slices
// and maps on the way) and gives it a value made from data. It returns the
// leaf's path, or "" when n is past the last leaf.
func setLeaf(v reflect.Value, path string, n *int, data []byte) string {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		p := path
		if !f.Anonymous {
			p = jsonPath(path, f)
		}
		ft := f.Type
		isStruct := func(t reflect.Type) bool { return t.Kind() == reflect.Struct }
		switch {
		case ft.Kind() == reflect.Pointer && isStruct(ft.Elem()):
			if *n < 0 {
				return ""
			}
			if fv.IsNil() {
				fv.Set(reflect.New(ft.Elem()))
			}
			if got := setLeaf(fv.Elem(), p, n, data); got != "" {
				return got
			}
		case isStruct(ft):
			if got := setLeaf(fv, p, n, data); got != "" {
				return got
			}
		case ft.Kind() == reflect.Slice && isStruct(ft.Elem()):
			el := reflect.New(ft.Elem()).Elem()
			if got := setLeaf(el, p, n, data); got != "" {
				fv.Set(reflect.Append(fv, el))
				return got
			}
		case ft.Kind() == reflect.Map && isStruct(ft.Elem()):
			el := reflect.New(ft.Elem()).Elem()
			if got := setLeaf(el, p, n, data); got != "" {
				if fv.IsNil() {
					fv.Set(reflect.MakeMap(ft))
				}
				fv.SetMapIndex(reflect.ValueOf(string(data)).Convert(ft.Key()), el)
				return got
			}
		default:
			if *n == 0 {
				fill(fv, data)
				*n = -1
				return p
			}
			*n--
		}
	}
	return ""
}

// fill gives a leaf a value made from data.
func fill(v reflect.Value, data []byte) {
	num := uint64(0)
	for _, b := range data {
		num = num<<8 | uint64(b)
	}
	s := string(data)
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		fill(e.Elem(), data)
		v.Set(e)
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		v.SetBool(num%2 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(num))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(num)
	case reflect.Slice:
		el := reflect.New(v.Type().Elem()).Elem()
		fill(el, data)
		v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), el))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		el := reflect.New(v.Type().Elem()).Elem()
		fill(el, data)
		m.SetMapIndex(reflect.ValueOf(s).Convert(v.Type().Key()), el)
		v.Set(m)
	}
}

// FuzzSpecFields mutates one field of a ctr-style spec at a time — any
// field of the runtime spec, chosen by the fuzzer, with a value it chooses —
// and checks that the pipeline never panics, that a field whose rule is
// "refuse" always refuses the container, and that whatever it accepts
// passes its own verification.
func FuzzSpecFields(f *testing.F) {
	for i := range 200 {
		f.Add(uint16(i), []byte("x"))
	}
	f.Add(uint16(3), []byte("/"))
	f.Fuzz(func(t *testing.T, which uint16, data []byte) {
		s := ctrSpec()
		n := int(which)
		path := setLeaf(reflect.ValueOf(s).Elem(), "", &n, data)
		if path == "" {
			return
		}
		req := request(t, "", nil)
		_, err := hardenInPlace(req, s)
		if err != nil {
			if errdefs.IsInternal(err) {
				t.Fatalf("%s: the pipeline produced a spec its own verification rejects: %v", path, err)
			}
			return
		}
		for p, rule := range specFields {
			if rule.kind == ruleRefuse && (path == p || strings.HasPrefix(path, p+".")) && !emptyAfter(s, p) {
				t.Fatalf("%s was set and its rule refuses, yet the container was accepted", path)
			}
		}
	})
}

// emptyAfter reports whether the field at a top-level-or-nested JSON path
// ended up unset (the pipeline removed the value).
func emptyAfter(s *specs.Spec, path string) bool {
	v := reflect.ValueOf(s).Elem()
	for _, part := range strings.Split(path, ".") {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return true
			}
			v = v.Elem()
		}
		found := false
		for i := range v.NumField() {
			if jsonPath("", v.Type().Field(i)) == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return true
		}
	}
	return v.IsZero()
}

var update = flag.Bool("update", false, "rewrite generated doc sections")

// docs/profiles.md lists the pipeline in the code's order, with every
// step's text; a step without a text fails.
func TestPipelineDocumented(t *testing.T) {
	docs := stepDocs()
	for _, st := range pipeline {
		if docs[st.name] == "" {
			t.Errorf("step %s has no text in stepDocs", st.name)
		}
		delete(docs, st.name)
	}
	for name := range docs {
		t.Errorf("stepDocs describes %s, which the pipeline does not have", name)
	}
	diff, err := docgen.Check("../../docs/profiles.md", "pipeline", PipelineDoc(), *update)
	if err != nil {
		t.Fatal(err)
	}
	if diff != "" {
		t.Fatal(diff)
	}
}
