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
)

// hooks refuses OCI hooks the admin did not allow: a hook runs on the host,
// as root, outside every protection the container gets.
func hooks(r *run, s *specs.Spec) error {
	if s.Hooks == nil {
		return nil
	}
	h := s.Hooks
	for _, l := range [][]specs.Hook{h.Prestart, h.CreateRuntime, h.CreateContainer, h.StartContainer, h.Poststart, h.Poststop} { //nolint:staticcheck // Prestart is deprecated but still run by runc
		for _, hook := range l {
			if !slices.Contains(r.req.Policy.AllowedHooks, hook.Path) {
				return r.refuse(fmt.Sprintf("OCI hook %s is not allowed (hooks run on the host as root)", hook.Path),
					"remove the hook, or ask the node administrator to add its path to allowed_hooks in "+r.req.Config.Source)
			}
		}
	}
	return nil
}

// nsFile is the /proc/PID/ns entry of each OCI namespace type.
var nsFile = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc",
	specs.UTSNamespace: "uts", specs.MountNamespace: "mnt",
}

// namespaces requires private pid, network, ipc, uts and mount namespaces.
// A missing entry means "share the host's"; a path to the host's own
// namespace means the same. Both are refused unless the profile allows it.
func namespaces(r *run, s *specs.Spec) error {
	allowed := r.req.Policy.Profile.Namespaces.HostAllowed
	for _, typ := range requiredNamespaces {
		i := slices.IndexFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return string(n.Type) == typ })
		if slices.Contains(allowed, typ) {
			continue
		}
		fix := fmt.Sprintf("run it in its own %s namespace (no --net-host/--pid-host style option; Kubernetes: hostNetwork, hostPID, hostIPC false), or select a profile whose namespaces.host_allowed lists %q", typ, typ)
		if i < 0 {
			return r.refuse(fmt.Sprintf("the container would share the host's %s namespace", typ), fix)
		}
		if p := s.Linux.Namespaces[i].Path; p != "" {
			host, err := isHostNamespace(specs.LinuxNamespaceType(typ), p)
			if err != nil {
				return r.refuse(fmt.Sprintf("cannot check the %s namespace at %s: %v", typ, p, err), "give a namespace path that exists")
			}
			if host {
				return r.refuse(fmt.Sprintf("the container would join the host's %s namespace (%s)", typ, p), fix)
			}
		}
	}
	return nil
}

// isHostNamespace reports whether the namespace file at path is the one the
// shim itself runs in: the shim runs in the host's namespaces.
func isHostNamespace(typ specs.LinuxNamespaceType, path string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Stat(path, &a); err != nil {
		return false, err
	}
	if err := unix.Stat("/proc/self/ns/"+nsFile[typ], &b); err != nil {
		return false, err
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
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

func mountString(m specs.Mount) string {
	return fmt.Sprintf("%s %s on %s (%s)", m.Type, m.Source, m.Destination, strings.Join(m.Options, ","))
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// mounts refuses bind mounts of sensitive host paths and filesystems other
// than the usual pseudo filesystems and tmpfs; it forces nosuid,nodev on
// bind mounts and tmpfs, and read-only on /sys and cgroup filesystems.
func mounts(r *run, s *specs.Spec) error {
	for i := range s.Mounts {
		m := &s.Mounts[i]
		before := mountString(*m)
		if !filepath.IsAbs(m.Destination) {
			return r.refuse(fmt.Sprintf("mount destination %q is not an absolute path", m.Destination), "give mount destinations as absolute paths")
		}
		switch {
		case isBind(*m):
			if why := r.req.sensitiveSource(m.Source); why != "" {
				return r.refuse(fmt.Sprintf("bind mount of %s at %s is not allowed: %s", m.Source, m.Destination, why),
					"mount a dedicated directory or volume instead of host system paths or container runtime state")
			}
			setOptions(m, []string{"nosuid", "nodev"}, []string{"suid", "dev"})
		case slices.Contains(kernelMountTypes, m.Type):
			if want, fixed := kernelMountPlace[m.Type]; fixed && filepath.Clean(m.Destination) != want {
				return r.refuse(fmt.Sprintf("a %s mount at %s is not allowed (only at %s): it would expose the kernel's interfaces outside the masked and read-only paths", m.Type, m.Destination, want),
					"remove the extra mount")
			}
			switch {
			case m.Type == "sysfs" || m.Type == "cgroup" || m.Type == "cgroup2":
				setOptions(m, []string{"ro"}, []string{"rw"})
			case m.Type == "tmpfs" && m.Destination != "/dev": // /dev needs device nodes
				setOptions(m, []string{"nosuid", "nodev"}, []string{"suid", "dev"})
			}
		default:
			return r.refuse(fmt.Sprintf("mount of type %q at %s is not allowed", m.Type, m.Destination),
				"use bind mounts of volumes or tmpfs; other filesystems could expose host devices")
		}
		if after := mountString(*m); after != before {
			r.record(before, after)
		}
	}
	return nil
}

// setOptions adds each of add not yet present and removes every of remove.
func setOptions(m *specs.Mount, add, remove []string) {
	m.Options = slices.DeleteFunc(m.Options, func(o string) bool { return slices.Contains(remove, o) })
	for _, a := range add {
		if !slices.Contains(m.Options, a) {
			m.Options = append(m.Options, a)
		}
	}
}

// sensitiveSource says why a bind source may not be mounted, or "" when it
// may. The pipeline's own mounts (the container's secrets tmpfs, the exec
// helper) are the exceptions: they are palisade's, below palisade's paths.
func (req *Request) sensitiveSource(src string) string {
	clean := filepath.Clean(src)
	if (req.SecretsDir != "" && (clean == req.SecretsDir || strings.HasPrefix(clean, req.SecretsDir+"/"))) || (req.Helper != "" && clean == req.Helper) {
		return ""
	}
	return sensitiveSource(src, req.HostPaths)
}

// sensitiveSource says why a bind source may not be mounted, or "" when it
// may. Symlinks are resolved on the host, as the mount will resolve them.
func sensitiveSource(src string, extra []string) string {
	if !filepath.IsAbs(src) {
		return "the source is not an absolute path"
	}
	p := filepath.Clean(src)
	if resolved, err := filepath.EvalSymlinks(p); err == nil {
		p = resolved
	}
	for _, c := range bindCarveOuts {
		if strings.HasPrefix(p, c) {
			return ""
		}
	}
	for _, sp := range append(slices.Clone(sensitiveHostPaths), extra...) {
		sp = filepath.Clean(sp)
		switch {
		case p == sp || strings.HasPrefix(p, sp+"/"):
			return sp + " is a host system path or container runtime state"
		case p == "/" || strings.HasPrefix(sp, p+"/"):
			return "it contains " + sp
		}
	}
	return ""
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
	for _, d := range s.Linux.Devices {
		if !slices.Contains(r.req.Policy.Profile.Devices.Allowed, d.Path) {
			return r.refuse(fmt.Sprintf("device %s is not allowed", d.Path),
				"remove the device, or select a profile whose devices.allowed lists it")
		}
		if why := hostDeviceMismatch(d); why != "" {
			return r.refuse(fmt.Sprintf("device %s: %s", d.Path, why), "give the device as it exists on the host")
		}
		want = append(want, deviceRule{d.Type[0], d.Major, d.Minor}.cgroup())
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	if have := rulesString(s.Linux.Resources.Devices); have != rulesString(want) {
		r.record(have, rulesString(want))
		s.Linux.Resources.Devices = want
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
			return r.refuse(fmt.Sprintf("sysctl %s is not allowed", k),
				"remove it, or select a profile whose sysctls.allowed lists it")
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

// HostPaths returns the node-specific paths no bind mount may expose:
// containerd's sockets (addresses) and its state directory, found from a
// bundle at STATE/io.containerd.runtime.v2.task/NS/ID.
func HostPaths(bundle string, addresses ...string) []string {
	var out []string
	for _, a := range addresses {
		if a = strings.TrimPrefix(a, "unix://"); filepath.IsAbs(a) {
			out = append(out, a)
		}
	}
	if dir := filepath.Dir(filepath.Dir(filepath.Dir(bundle))); filepath.Base(dir) == "io.containerd.runtime.v2.task" {
		out = append(out, filepath.Dir(dir))
	}
	return out
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
