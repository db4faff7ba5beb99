package harden

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/caps"
	"palisade.dev/palisade/libshim/policy"
)

// requireProcess refuses a spec without a process or root: there is
// nothing to run and nothing the other steps could harden.
func requireProcess(r *run, s *specs.Spec) error {
	if s.Process == nil {
		return r.refuse("the spec has no process", "the OCI spec must contain a process to run")
	}
	if s.Root == nil {
		return r.refuse("the spec has no root filesystem", "the OCI spec must name a root")
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if why := r.req.rootfsProblem(s.Root.Path); why != "" {
		return r.refuse("root filesystem "+s.Root.Path+" is not allowed: "+why, "use the container's own root filesystem (the bundle's rootfs, or a directory of your own)")
	}
	for _, m := range append(append([]specs.LinuxIDMapping{}, s.Linux.UIDMappings...), s.Linux.GIDMappings...) {
		if mapsHostRoot(m) {
			return r.refuse(fmt.Sprintf("the user namespace maps container id %d to host id 0 (root)", m.ContainerID), "map container ids to unprivileged host ids")
		}
	}
	return nil
}

// mapsHostRoot reports whether an id mapping's host range holds id 0,
// counting a range that runs past the last id and wraps around to 0 (the
// kernel refuses one, but palisade does not rely on that).
func mapsHostRoot(m specs.LinuxIDMapping) bool {
	return m.HostID == 0 || uint64(m.HostID)+uint64(m.Size) > 1<<32
}

// rootfsProblem says why a root path may not be used, or "". A relative
// path must stay inside the bundle; an absolute one (ctr run --rootfs,
// palisade run) must not be a host system path or runtime state.
func (req *Request) rootfsProblem(root string) string {
	if !filepath.IsAbs(root) {
		if rel := filepath.Clean(root); rel == ".." || strings.HasPrefix(rel, "../") || rel == "." {
			return "a relative root must be a directory inside the bundle"
		}
		return ""
	}
	if req.Bundle != "" && filepath.Clean(root) == filepath.Join(req.Bundle, "rootfs") {
		return ""
	}
	return sensitiveSource(root, req.HostPaths, nil)
}

// refusePrivileged refuses what `--privileged` (or privileged: true)
// produces: every capability of the host, or access to every device. No
// profile can make such a container safe, so none allows it.
func refusePrivileged(r *run, s *specs.Spec) error {
	var why []string
	host, err := caps.Host()
	if err != nil {
		return r.refuse(fmt.Sprintf("cannot read the host's capability set: %v", err), "check the shim's environment")
	}
	if c := s.Process.Capabilities; c != nil && containsAll(c.Bounding, host) {
		why = append(why, "every capability")
	}
	if s.Linux.Resources != nil {
		for _, d := range s.Linux.Resources.Devices {
			if d.Allow && (d.Type == "" || d.Type == "a") && d.Major == nil && d.Minor == nil && strings.Contains(d.Access, "rw") {
				why = append(why, "every device")
				break
			}
		}
	}
	if len(why) == 0 {
		return nil
	}
	return r.refuse("privileged containers are not allowed: the spec grants "+strings.Join(why, " and "),
		"run it without --privileged (Kubernetes: securityContext.privileged: false) and ask only for the capabilities it needs with "+policy.AnnotationCapAdd)
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return len(want) > 0
}

// user replaces root with the profile's user when the profile does not
// allow root, and removes the root group from the supplementary groups.
func user(r *run, p *specs.Process) error {
	prof := r.req.Policy.Profile
	if prof.User.AllowRoot {
		return nil
	}
	before := p.User
	before.AdditionalGids = slices.Clone(p.User.AdditionalGids)
	if p.User.UID == 0 {
		p.User.UID = prof.User.UID
	}
	if p.User.GID == 0 {
		p.User.GID = prof.User.GID
	}
	p.User.AdditionalGids = slices.DeleteFunc(p.User.AdditionalGids, func(g uint32) bool { return g == 0 })
	if before.UID != p.User.UID || before.GID != p.User.GID || len(before.AdditionalGids) != len(p.User.AdditionalGids) {
		r.record(userString(before), userString(p.User))
	}
	return nil
}

func userString(u specs.User) string {
	return fmt.Sprintf("uid=%d gid=%d groups=%v", u.UID, u.GID, u.AdditionalGids)
}

// capabilities applies palisade's capability rule. The process keeps the
// capabilities of its spec that the profile allows, plus those asked for
// with palisade.dev/cap-add (already checked against the profile). Runtime
// defaults outside the profile are dropped and recorded; any other
// capability outside the profile refuses the container. All five sets are
// set consistently; a non-root process gets its capabilities as ambient
// (with inheritable) so it can use them after execve.
func capabilities(r *run, p *specs.Process) error {
	pol := r.req.Policy
	allowed := pol.Profile.Capabilities.Allowed
	var requested []string
	if c := p.Capabilities; c != nil {
		for _, l := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
			for _, name := range l {
				canon, err := caps.Canonical(name)
				if err != nil {
					return r.refuse(fmt.Sprintf("the spec asks for %v", err), "remove it from the container's capabilities")
				}
				requested = append(requested, canon)
			}
		}
	}
	requested = caps.Set(requested)
	// A set that holds most of the runtime's default set came from that
	// default: what the profile does not allow is clamped. A small set was
	// chosen by the client (Kubernetes: drop ALL, add NET_RAW): a capability
	// in it that the profile does not allow is refused, never dropped
	// silently, since the workload would otherwise fail obscurely.
	fromDefault := 2*len(requested) > len(caps.RuntimeDefault)
	var keep, dropped []string
	for _, c := range requested {
		switch {
		case slices.Contains(allowed, c):
			keep = append(keep, c)
		case slices.Contains(caps.RuntimeDefault, c) && fromDefault:
			dropped = append(dropped, c)
		default:
			if err := r.wouldRefuse(fmt.Sprintf("capability %s is not allowed by profile %q (allowed: %s)", c, pol.Profile.Name, caps.Short(allowed)),
				"remove it from the container's capabilities (ctr --cap-add, Kubernetes securityContext.capabilities.add), or select a profile that allows it",
				audit.SubjectCapability, c); err != nil {
				return err
			}
			dropped = append(dropped, c) // alert mode: recorded, and not granted
		}
	}
	final := caps.Set(keep, pol.CapAdd)
	want := &specs.LinuxCapabilities{Bounding: final, Effective: final, Permitted: final}
	if p.User.UID != 0 && len(pol.CapAdd) > 0 {
		// A non-root process loses its capabilities at execve unless they
		// are ambient. Only what the workload asked for with cap-add is
		// made ambient: runtime defaults a non-root process would lose
		// anyway are not turned into lasting privilege.
		want.Inheritable, want.Ambient = pol.CapAdd, pol.CapAdd
	}
	if !sameCaps(p.Capabilities, want) {
		before := "none"
		if len(requested) > 0 {
			before = caps.Short(requested)
		}
		after := caps.Short(final)
		if len(want.Ambient) > 0 {
			after += "; ambient: " + caps.Short(want.Ambient)
		}
		if len(dropped) > 0 {
			after += "; dropped runtime defaults: " + caps.Short(dropped)
		}
		r.record(before, after)
	}
	p.Capabilities = want
	return nil
}

func sameCaps(a, b *specs.LinuxCapabilities) bool {
	if a == nil {
		a = &specs.LinuxCapabilities{}
	}
	eq := func(x, y []string) bool { return slices.Equal(caps.Set(x), caps.Set(y)) && len(x) == len(y) }
	return eq(a.Bounding, b.Bounding) && eq(a.Effective, b.Effective) && eq(a.Permitted, b.Permitted) &&
		eq(a.Inheritable, b.Inheritable) && eq(a.Ambient, b.Ambient)
}

// noNewPrivileges sets no_new_privs: no setuid binary, file capability or
// LSM transition can give the process more than it started with.
func noNewPrivileges(r *run, p *specs.Process) error {
	if !p.NoNewPrivileges {
		r.record(false, true)
		p.NoNewPrivileges = true
	}
	return nil
}

func verifyNoNewPrivileges(_ *Request, _ *Decisions, p *specs.Process) string {
	if !p.NoNewPrivileges {
		return "noNewPrivileges is not set"
	}
	return ""
}

func verifyCapabilities(req *Request, _ *Decisions, p *specs.Process) string {
	c := p.Capabilities
	if c == nil {
		return ""
	}
	allowed := req.Policy.Profile.Capabilities.Allowed
	for set, l := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted, "inheritable": c.Inheritable, "ambient": c.Ambient} {
		for _, name := range l {
			if !slices.Contains(allowed, name) {
				return fmt.Sprintf("%s set holds %s, which the profile does not allow", set, name)
			}
		}
	}
	for _, a := range c.Ambient {
		if !slices.Contains(c.Permitted, a) || !slices.Contains(c.Inheritable, a) {
			return fmt.Sprintf("ambient %s is not also permitted and inheritable", a)
		}
		if !slices.Contains(req.Policy.CapAdd, a) {
			return fmt.Sprintf("ambient %s was not asked for with cap-add", a)
		}
	}
	return ""
}

func verifyUser(req *Request, _ *Decisions, p *specs.Process) string {
	if req.Policy.Profile.User.AllowRoot {
		return ""
	}
	if p.User.UID == 0 || p.User.GID == 0 || slices.Contains(p.User.AdditionalGids, 0) {
		return fmt.Sprintf("the process runs as uid %d gid %d groups %v, but the profile does not allow root", p.User.UID, p.User.GID, p.User.AdditionalGids)
	}
	return ""
}

func verifyRoot(req *Request, _ *Decisions, s *specs.Spec) string {
	if s.Root == nil {
		return "no root filesystem"
	}
	if why := req.rootfsProblem(s.Root.Path); why != "" {
		return "root " + s.Root.Path + ": " + why
	}
	for _, m := range append(append([]specs.LinuxIDMapping{}, s.Linux.UIDMappings...), s.Linux.GIDMappings...) {
		if mapsHostRoot(m) {
			return "a user namespace mapping onto host root"
		}
	}
	return ""
}
