package harden

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// requiredAttrs are the attributes a mount must end up with, by kind.
// The mounts step enforces them and its check verifies them, both from
// this one table. /dev and devpts keep device nodes working.
func requiredAttrs(m specs.Mount) []attr {
	switch {
	case isBind(m):
		return []attr{attrNoSUID, attrNoDev}
	case m.Type == "sysfs" || m.Type == "cgroup" || m.Type == "cgroup2":
		return []attr{attrRO, attrNoSUID, attrNoDev, attrNoExec}
	case m.Type == "proc" || m.Type == "mqueue":
		return []attr{attrNoSUID, attrNoDev, attrNoExec}
	case m.Type == "devpts":
		return []attr{attrNoSUID, attrNoExec}
	case m.Type == "tmpfs" && filepath.Clean(m.Destination) == "/dev":
		return []attr{attrNoSUID}
	case m.Type == "tmpfs":
		return []attr{attrNoSUID, attrNoDev}
	}
	return nil
}

// mountProblem says why a mount may not be made at all, or "": a
// destination that is not absolute, an option with no safe meaning, an
// id-mapped mount (except one mapped exactly as the container's own user
// namespace), a filesystem other than the pseudo filesystems and tmpfs, a
// pseudo filesystem away from its place, a sensitive bind source.
// resolved says that resolving m.Source (filepath.EvalSymlinks) was just
// tried, its result (if any) put in place, and it is judged as it is;
// otherwise it is resolved first.
func (req *Request) mountProblem(m specs.Mount, linux *specs.Linux, resolved bool) (string, string) {
	if !filepath.IsAbs(m.Destination) {
		return fmt.Sprintf("mount destination %q is not an absolute path", m.Destination), "give mount destinations as absolute paths"
	}
	if o, why := refusedOption(m.Options); o != "" {
		return fmt.Sprintf("mount at %s has option %q: %s", m.Destination, o, why), "remove the option"
	}
	if (len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0) && !ownUserNamespaceMapping(m, linux) {
		return fmt.Sprintf("mount at %s is id-mapped: id-mapped mounts are not allowed by palisade", m.Destination), "remove the mount's uidMappings and gidMappings"
	}
	switch {
	case isBind(m):
		if why := req.sensitiveSource(m.Source, resolved); why != "" {
			return fmt.Sprintf("bind mount of %s at %s is not allowed: %s", m.Source, m.Destination, why),
				"mount a dedicated directory or volume instead of host system paths or container runtime state"
		}
	case slices.Contains(kernelMountTypes, m.Type):
		if want, fixed := kernelMountPlace[m.Type]; fixed && filepath.Clean(m.Destination) != want {
			return fmt.Sprintf("a %s mount at %s is not allowed (only at %s): it would expose the kernel's interfaces outside the masked and read-only paths", m.Type, m.Destination, want),
				"remove the extra mount"
		}
	default:
		return fmt.Sprintf("mount of type %q at %s is not allowed", m.Type, m.Destination),
			"use bind mounts of volumes or tmpfs; other filesystems could expose host devices"
	}
	return "", ""
}

// mounts refuses mounts palisade cannot make safe (see mountProblem), binds
// each bind mount to its source as resolved now (the container gets the
// object that was checked, whatever a symlink in the path points at later),
// and makes every mount end up with its required attributes: options that
// would clear them, plainly or recursively (rsuid, rdev, rrw), are removed.
func mounts(r *run, s *specs.Spec) error {
	for i := range s.Mounts {
		m := &s.Mounts[i]
		before := *m
		before.Options = slices.Clone(m.Options)
		resolved := false
		if isBind(*m) && !r.req.ownMount(m.Source) && filepath.IsAbs(m.Source) {
			// Resolved once: the check below and runc see the same path,
			// and the check after it sees whether it still resolves so.
			if p, err := resolveHostPath(m.Source); err == nil {
				m.Source = p
			} else {
				return r.refuse(fmt.Sprintf("bind source %s cannot be resolved on the host: %v", m.Source, err),
					"bind a path whose symlinks lead to existing directories: palisade judges a bind mount by what it resolves to")
			}
			resolved = true
		}
		if why, fix := r.req.mountProblem(*m, s.Linux, resolved); why != "" {
			if m.Source != before.Source {
				why += " (the source was given as " + before.Source + ")"
			}
			return r.refuse(why, fix)
		}
		if isBind(*m) && !r.req.ownMount(m.Source) {
			if again, err := filepath.EvalSymlinks(m.Source); err == nil && again != m.Source {
				return r.refuse(fmt.Sprintf("bind source %s changed while palisade checked it (a path component became a symlink to %s)", m.Source, again),
					"bind a directory no other process can rename or replace")
			}
		}
		if want := requiredAttrs(*m); len(lacking(m.Options, want...)) > 0 || weakens(m.Options, want) {
			m.Options = enforceAttrs(m.Options, want...)
		}
		if !sameMount(before, *m) { // the strings are built only for a change
			if b, a := mountString(before), mountString(*m); a != b {
				r.record(b, a)
			}
		}
	}
	return nil
}

// weakens reports whether options hold one that clears an attribute of
// want, even if a later one sets it again (kept out of the final spec so
// that reading it needs no knowledge of option order).
func weakens(options []string, want []attr) bool {
	return slices.ContainsFunc(options, func(o string) bool {
		e, ok := attrOptions[o]
		return ok && e.clear && slices.Contains(want, e.attr)
	})
}

func verifyMounts(req *Request, _ *Decisions, s *specs.Spec) string {
	for _, m := range s.Mounts {
		if why, _ := req.mountProblem(m, s.Linux, false); why != "" {
			return why
		}
		if l := lacking(m.Options, requiredAttrs(m)...); len(l) > 0 {
			return fmt.Sprintf("%s mount at %s does not end up %s", m.Type, m.Destination, strings.Join(l, ","))
		}
	}
	return ""
}

// ownMount reports whether a bind source is one of the pipeline's own: the
// container's secrets tmpfs or the exec helper, below palisade's paths.
func (req *Request) ownMount(src string) bool {
	clean := filepath.Clean(src)
	return (req.SecretsDir != "" && (clean == req.SecretsDir || strings.HasPrefix(clean, req.SecretsDir+"/"))) || (req.Helper != "" && clean == req.Helper)
}

// sensitiveSource says why a bind source may not be mounted, or "" when it
// may. The pipeline's own mounts are the exceptions. resolved: as
// mountProblem.
func (req *Request) sensitiveSource(src string, resolved bool) string {
	if req.ownMount(src) {
		return ""
	}
	if resolved {
		return sensitivePath(filepath.Clean(src), req.HostPaths, req.CarveOuts)
	}
	return sensitiveSource(src, req.HostPaths, req.CarveOuts)
}

// sensitiveSource says why a bind source may not be mounted, or "" when it
// may: a protected path, anything below one (except below a carve-out), or
// anything above one. Symlinks are resolved on the host, as the mount will
// resolve them.
func sensitiveSource(src string, protected []ProtectedPath, carveOuts []string) string {
	if !filepath.IsAbs(src) {
		return "the source is not an absolute path"
	}
	p, err := resolveHostPath(src)
	if err != nil {
		return "it cannot be resolved on the host: " + err.Error()
	}
	return sensitivePath(p, protected, carveOuts)
}

// resolveHostPath resolves an absolute path's symlinks as a mount of it
// would now: wholly when it exists; else its longest existing ancestor,
// resolved, with the missing rest appended (there is nothing to follow in
// it yet), so that /tmp/link/missing with /tmp/link leading into
// containerd's state is judged there. A component that exists but cannot
// be resolved (a dangling symlink, a loop, no permission), or a missing path
// with "..", is an error: what it would lead to once it resolves is unknown.
func resolveHostPath(src string) (string, error) {
	r, err := filepath.EvalSymlinks(src)
	if err == nil || slices.Contains(strings.Split(src, "/"), "..") {
		// ".." after a symlink is the link target's parent: a missing path
		// with one cannot be cut short lexically.
		return r, err
	}
	p, rest := filepath.Clean(src), ""
	for {
		// one lstat per level to find the longest existing ancestor, then
		// one resolution of it
		_, lerr := os.Lstat(p)
		if lerr == nil {
			r, err := filepath.EvalSymlinks(p)
			if err != nil {
				return "", err
			}
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(lerr, fs.ErrNotExist) {
			return "", lerr
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest, p = filepath.Join(filepath.Base(p), rest), parent
	}
}

// sensitivePath is sensitiveSource for an absolute, clean path whose
// symlinks are resolved.
func sensitivePath(p string, protected []ProtectedPath, carveOuts []string) string {
	if !filepath.IsAbs(p) {
		return "the source is not an absolute path"
	}
	for _, c := range carveOuts {
		if strings.HasPrefix(p, filepath.Clean(c)+"/") {
			return ""
		}
	}
	// The most specific protected path names the reason.
	best := -1
	for i, sp := range protected {
		clean := filepath.Clean(sp.Path)
		if (p == clean || strings.HasPrefix(p, clean+"/")) && (best < 0 || len(clean) > len(filepath.Clean(protected[best].Path))) {
			best = i
		}
	}
	if best >= 0 {
		return filepath.Clean(protected[best].Path) + " is " + protected[best].Why
	}
	for _, sp := range protected {
		if clean := filepath.Clean(sp.Path); p == "/" || strings.HasPrefix(clean, p+"/") {
			return "it contains " + clean + " (" + sp.Why + ")"
		}
	}
	return ""
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

func mountString(m specs.Mount) string {
	return fmt.Sprintf("%s %s on %s (%s)", m.Type, m.Source, m.Destination, strings.Join(m.Options, ","))
}

// ownUserNamespaceMapping reports whether an id-mapped mount maps exactly
// as the container's own user namespace does (containerd's CRI mounts a
// hostUsers: false pod's volumes and /etc files that way): files then show
// the owners the container's root would see on a plain mount as host root —
// no more than a container without a user namespace gets.
func ownUserNamespaceMapping(m specs.Mount, linux *specs.Linux) bool {
	if linux == nil || len(linux.UIDMappings) == 0 || len(linux.GIDMappings) == 0 ||
		!slices.ContainsFunc(linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }) {
		return false
	}
	return slices.Equal(m.UIDMappings, linux.UIDMappings) && slices.Equal(m.GIDMappings, linux.GIDMappings)
}

// hostIDs are the host uid and gid of the container's process: its own in
// a container without a user namespace, else mapped through the spec's
// uidMappings/gidMappings (a hostUsers: false pod), so that files palisade
// creates for it (secrets) belong to it inside. ok is false when either is
// not mapped.
func hostIDs(s *specs.Spec) (uid, gid uint32, ok bool) {
	uid, gid = s.Process.User.UID, s.Process.User.GID
	if s.Linux == nil || !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }) {
		return uid, gid, true
	}
	u, uok := mapID(s.Linux.UIDMappings, uid)
	g, gok := mapID(s.Linux.GIDMappings, gid)
	return u, g, uok && gok
}

func mapID(m []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, r := range m {
		if id >= r.ContainerID && uint64(id) < uint64(r.ContainerID)+uint64(r.Size) {
			return r.HostID + (id - r.ContainerID), true
		}
	}
	return 0, false
}
