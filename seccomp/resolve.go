package seccomp

import (
	"fmt"
	"slices"
	"sync"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Resolve turns a profile into the OCI spec's seccomp section for one
// architecture and one capability set: the native architecture (plus, only
// WithCompat, the compat ABIs the profile lists), and the rules whose
// includes/excludes (architecture, capabilities, minimum kernel) match.
// moby/profiles has the same logic but only for the host's own
// architecture, and it edits its input; palisade resolves for either
// architecture (palisade seccomp check --arch) from a shared, read-only
// profile.
func Resolve(l *Loaded, goarch string, bounding []string, abis ABIs) (*specs.LinuxSeccomp, error) {
	t, ok := Arches[goarch]
	if !ok {
		return nil, fmt.Errorf("seccomp: architecture %q is not supported (amd64, arm64)", goarch)
	}
	p := l.Profile
	out := &specs.LinuxSeccomp{
		DefaultAction:   p.DefaultAction,
		DefaultErrnoRet: p.DefaultErrnoRet,
		Flags:           p.Flags,
	}
	out.Architectures = []specs.Arch{t.Arch}
	if abis == WithCompat {
		for _, c := range t.CompatListed(l) {
			out.Architectures = append(out.Architectures, c.Arch)
		}
	}
	kernel := hostKernel()
	for _, r := range p.Syscalls {
		if matches(r, t.Native, bounding, kernel) {
			out.Syscalls = append(out.Syscalls, r.LinuxSyscall)
		}
	}
	return out, nil
}

func matches(r *mobyseccomp.Syscall, native string, bounding []string, kernel mobyseccomp.KernelVersion) bool {
	if f := r.Excludes; f != nil {
		if slices.Contains(f.Arches, native) {
			return false
		}
		for _, c := range f.Caps {
			if slices.Contains(bounding, c) {
				return false
			}
		}
		if f.MinKernel != nil && atLeast(kernel, *f.MinKernel) {
			return false
		}
	}
	if f := r.Includes; f != nil {
		if len(f.Arches) > 0 && !slices.Contains(f.Arches, native) {
			return false
		}
		for _, c := range f.Caps {
			if !slices.Contains(bounding, c) {
				return false
			}
		}
		if f.MinKernel != nil && !atLeast(kernel, *f.MinKernel) {
			return false
		}
	}
	return true
}

func atLeast(have, want mobyseccomp.KernelVersion) bool {
	return have.Kernel > want.Kernel || (have.Kernel == want.Kernel && have.Major >= want.Major)
}

// hostKernel is the running kernel's version ("6.18.44-..." -> 6.18).
var hostKernel = sync.OnceValue(func() mobyseccomp.KernelVersion {
	var u unix.Utsname
	var v mobyseccomp.KernelVersion
	if unix.Uname(&u) == nil {
		_, _ = fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &v.Kernel, &v.Major)
	}
	return v
})
