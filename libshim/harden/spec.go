package harden

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/audit"
)

// hooks refuses OCI hooks the admin did not allow: a hook runs on the host,
// as root, outside every protection the container gets.
func hooks(r *run, s *specs.Spec) error {
	for _, hook := range allHooks(s.Hooks) {
		if !slices.Contains(r.req.Policy.AllowedHooks, hook.Path) {
			return r.refuse(fmt.Sprintf("OCI hook %s is not allowed (hooks run on the host as root)", hook.Path),
				"remove the hook, or ask the node administrator to add its path to allowed_hooks in "+r.req.Config.Source)
		}
	}
	return nil
}

// allHooks lists every hook of every kind runc runs.
func allHooks(h *specs.Hooks) []specs.Hook {
	if h == nil {
		return nil
	}
	var out []specs.Hook
	for _, l := range [][]specs.Hook{h.Prestart, h.CreateRuntime, h.CreateContainer, h.StartContainer, h.Poststart, h.Poststop} { //nolint:staticcheck // Prestart is deprecated but still run by runc
		out = append(out, l...)
	}
	return out
}

// readonlyRootfs makes the root filesystem read-only unless the profile
// says otherwise.
func readonlyRootfs(r *run, s *specs.Spec) error {
	if !r.req.Policy.Profile.Filesystem.WritableRootfs && !s.Root.Readonly {
		r.record(false, true)
		s.Root.Readonly = true
	}
	return nil
}

// tmpfs mounts the profile's scratch tmpfs. A bind mount the container
// already has at that path (a declared volume) is kept; any other mount
// there is replaced by the profile's tmpfs.
func tmpfs(r *run, s *specs.Spec) error {
	if err := writablePaths(r, s); err != nil {
		return err
	}
	for _, t := range r.req.Policy.Profile.Filesystem.Tmpfs {
		want, err := tmpfsMount(t.Path, t.Size, t.Mode, t.Exec)
		if err != nil {
			return r.refuse(err.Error(), "fix the profile "+r.req.Policy.Profile.Source)
		}
		i := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return filepath.Clean(m.Destination) == t.Path })
		switch {
		case i < 0:
			// Before any mount below it, or the tmpfs would hide it.
			at := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return strings.HasPrefix(filepath.Clean(m.Destination), t.Path+"/") })
			if at < 0 {
				at = len(s.Mounts)
			}
			s.Mounts = slices.Insert(s.Mounts, at, want)
			r.record(nil, mountString(want))
		case isBind(s.Mounts[i]):
			// a volume: the container's own writable storage
		case !sameMount(s.Mounts[i], want):
			r.record(mountString(s.Mounts[i]), mountString(want))
			s.Mounts[i] = want
		}
	}
	return nil
}

func tmpfsMount(path, size, mode string, exec bool) (specs.Mount, error) {
	n, err := units.RAMInBytes(size)
	if err != nil || n <= 0 {
		return specs.Mount{}, fmt.Errorf("tmpfs %s: invalid size %q", path, size)
	}
	opts := []string{"nosuid", "nodev"}
	if !exec {
		opts = append(opts, "noexec")
	}
	opts = append(opts, "size="+strconv.FormatInt(n, 10), "mode="+mode)
	return specs.Mount{Destination: path, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
}

func sameMount(a, b specs.Mount) bool {
	return a.Destination == b.Destination && a.Type == b.Type && a.Source == b.Source && slices.Equal(a.Options, b.Options)
}

// maskedPaths adds palisade's minimum and the profile's masked paths.
func maskedPaths(r *run, s *specs.Spec) error {
	s.Linux.MaskedPaths = addPaths(r, s.Linux.MaskedPaths, minimumMaskedPaths, r.req.Policy.Profile.Paths.Masked)
	return nil
}

// readonlyPaths adds palisade's minimum and the profile's read-only paths.
func readonlyPaths(r *run, s *specs.Spec) error {
	s.Linux.ReadonlyPaths = addPaths(r, s.Linux.ReadonlyPaths, minimumReadonlyPaths, r.req.Policy.Profile.Paths.Readonly)
	return nil
}

func addPaths(r *run, have []string, lists ...[]string) []string {
	var added []string
	for _, l := range lists {
		for _, p := range l {
			if !slices.Contains(have, p) {
				have = append(have, p)
				added = append(added, p)
			}
		}
	}
	if len(added) > 0 {
		r.record(nil, added)
	}
	return have
}

// devices refuses device nodes the profile does not list and sets the
// device cgroup to deny everything but the standard set and those nodes.
func devices(r *run, s *specs.Spec) error {
	want := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	for _, d := range standardDevices {
		want = append(want, d.cgroup())
	}
	var kept []specs.LinuxDevice
	for _, d := range s.Linux.Devices {
		if !slices.Contains(r.req.Policy.Profile.Devices.Allowed, d.Path) {
			if err := r.wouldRefuse(fmt.Sprintf("device %s is not allowed", d.Path),
				"remove the device, or select a profile whose devices.allowed lists it", audit.SubjectDevice, d.Path); err != nil {
				return err
			}
			continue // alert mode: recorded, and not created
		}
		if why := hostDeviceMismatch(d); why != "" {
			return r.refuse(fmt.Sprintf("device %s: %s", d.Path, why), "give the device as it exists on the host")
		}
		want = append(want, deviceRule{d.Type[0], d.Major, d.Minor, d.Path}.cgroup())
		kept = append(kept, d)
	}
	if len(kept) != len(s.Linux.Devices) {
		s.Linux.Devices = kept
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	if have := s.Linux.Resources.Devices; !slices.EqualFunc(have, want, sameDeviceRule) {
		if h, w := rulesString(have), rulesString(want); h != w {
			r.record(h, w)
			s.Linux.Resources.Devices = want
		}
	}
	return nil
}

// hostDeviceMismatch checks a requested device node against the host's: the
// profile allows a path, so the type and numbers must be that path's, not
// whatever the spec claims (a "/dev/fuse" with the host disk's numbers).
func hostDeviceMismatch(d specs.LinuxDevice) string {
	var st unix.Stat_t
	if err := unix.Stat(d.Path, &st); err != nil {
		return "cannot find it on the host: " + err.Error()
	}
	typ := map[uint32]string{unix.S_IFCHR: "c", unix.S_IFBLK: "b"}[st.Mode&unix.S_IFMT]
	if typ == "" || d.Type != typ || int64(unix.Major(st.Rdev)) != d.Major || int64(unix.Minor(st.Rdev)) != d.Minor {
		return fmt.Sprintf("the spec says %s %d:%d but the host's is %s %d:%d", d.Type, d.Major, d.Minor, typ, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return ""
}

func (d deviceRule) cgroup() specs.LinuxDeviceCgroup {
	maj, min := d.major, d.minor
	rule := specs.LinuxDeviceCgroup{Allow: true, Type: string(d.typ), Major: &maj, Access: "rwm"}
	if min >= 0 {
		rule.Minor = &min
	}
	return rule
}

// sameDeviceRule reports whether two rules are equal field by field (then
// rulesString shows them alike; it is built only for a change).
func sameDeviceRule(a, b specs.LinuxDeviceCgroup) bool {
	eq := func(x, y *int64) bool { return x == y || (x != nil && y != nil && *x == *y) }
	return a.Allow == b.Allow && a.Type == b.Type && a.Access == b.Access && eq(a.Major, b.Major) && eq(a.Minor, b.Minor)
}

func rulesString(rules []specs.LinuxDeviceCgroup) string {
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	out := make([]string, len(rules))
	for i, d := range rules {
		verb := "deny"
		if d.Allow {
			verb = "allow"
		}
		typ := d.Type
		if typ == "" {
			typ = "a"
		}
		out[i] = fmt.Sprintf("%s %s %s:%s %s", verb, typ, num(d.Major), num(d.Minor), d.Access)
	}
	return strings.Join(out, "; ")
}

// sysctls refuses sysctls outside the safe namespaced set and the profile's
// allow-list.
func sysctls(r *run, s *specs.Spec) error {
	keys := make([]string, 0, len(s.Linux.Sysctl))
	for k := range s.Linux.Sysctl {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(safeSysctls, k) && !slices.Contains(r.req.Policy.Profile.Sysctls.Allowed, k) {
			if err := r.wouldRefuse(fmt.Sprintf("sysctl %s is not allowed", k),
				"remove it, or select a profile whose sysctls.allowed lists it", audit.SubjectSysctl, k); err != nil {
				return err
			}
			delete(s.Linux.Sysctl, k) // alert mode: recorded, and not set
		}
	}
	return nil
}

// pidsLimit sets the PID cgroup limit: the policy's, or the spec's own when
// it is lower.
func pidsLimit(r *run, s *specs.Spec) error {
	limit := r.req.Policy.PidsLimit
	res := s.Linux.Resources
	if k := pidsUnifiedKey(res.Unified); k != "" {
		return r.refuse(fmt.Sprintf("cgroup v2 setting %s would override the PID limit", k), "remove it from linux.resources.unified")
	}
	if res.Pids != nil && res.Pids.Limit != nil && *res.Pids.Limit > 0 && *res.Pids.Limit <= limit {
		return nil
	}
	before := "unlimited"
	if res.Pids != nil && res.Pids.Limit != nil {
		before = strconv.FormatInt(*res.Pids.Limit, 10)
	}
	r.record(before, limit)
	res.Pids = &specs.LinuxPids{Limit: &limit}
	return nil
}

// pidsUnifiedKey returns a cgroup v2 "unified" key that would set the pids
// controller behind the PID limit's back, or "".
func pidsUnifiedKey(unified map[string]string) string {
	for k := range unified {
		if strings.HasPrefix(k, "pids.") {
			return k
		}
	}
	return ""
}

func verifyReadonlyRootfs(req *Request, _ *Decisions, s *specs.Spec) string {
	if !req.Policy.Profile.Filesystem.WritableRootfs && (s.Root == nil || !s.Root.Readonly) {
		return "the root filesystem is writable"
	}
	return ""
}

// verifyPidsLimit compares with the container's own resolved limit (the
// profile's, an admin override's or a lower one the workload asked for).
func verifyPidsLimit(req *Request, _ *Decisions, s *specs.Spec) string {
	l := s.Linux.Resources
	if l == nil || l.Pids == nil || l.Pids.Limit == nil || *l.Pids.Limit <= 0 || *l.Pids.Limit > req.Policy.PidsLimit {
		return fmt.Sprintf("the PID limit is missing or above the container's %d", req.Policy.PidsLimit)
	}
	if pidsUnifiedKey(l.Unified) != "" {
		return "a cgroup v2 pids setting beside the PID limit"
	}
	return ""
}

func verifyMaskedPaths(_ *Request, _ *Decisions, s *specs.Spec) string {
	return missing("masked", s.Linux.MaskedPaths, minimumMaskedPaths)
}

func verifyReadonlyPaths(_ *Request, _ *Decisions, s *specs.Spec) string {
	return missing("read-only", s.Linux.ReadonlyPaths, minimumReadonlyPaths)
}

func verifyHooks(req *Request, _ *Decisions, s *specs.Spec) string {
	for _, hook := range allHooks(s.Hooks) {
		if !slices.Contains(req.Policy.AllowedHooks, hook.Path) {
			return "hook " + hook.Path + " is not allowed"
		}
	}
	return ""
}

func verifyDevices(_ *Request, _ *Decisions, s *specs.Spec) string {
	l := s.Linux.Resources
	if l == nil || len(l.Devices) == 0 || l.Devices[0].Allow || (l.Devices[0].Type != "" && l.Devices[0].Type != "a") || l.Devices[0].Major != nil {
		return "the device cgroup does not start by denying every device"
	}
	for _, d := range l.Devices[1:] {
		if d.Allow && (d.Major == nil || d.Type == "" || d.Type == "a") {
			return "the device cgroup allows a whole class of devices"
		}
	}
	return ""
}

func verifySysctls(req *Request, _ *Decisions, s *specs.Spec) string {
	for k := range s.Linux.Sysctl {
		if !slices.Contains(safeSysctls, k) && !slices.Contains(req.Policy.Profile.Sysctls.Allowed, k) {
			return "sysctl " + k + " is not allowed"
		}
	}
	return ""
}
