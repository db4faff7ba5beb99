package harden

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/arch"
	"palisade.dev/palisade/seccomp"
)

// seccompFilter installs the policy's seccomp profile, resolved for this
// architecture, the container's final capability set and the profile's
// compat ABI choice (native only unless seccomp.compat_abi = true). A
// filter already in the spec (a pod's own profile) is combined with it,
// the stricter verdict winning per call (seccomp.Intersect), and recorded. Unconfined (nil) only when the admin allowed it.
// The installed filter is shared between containers (seccomp.ResolveCached):
// nothing after this step may modify it.
func seccompFilter(r *run, s *specs.Spec) error {
	pol := r.req.Policy
	if s.Linux.Seccomp != nil {
		if err := seccomp.CheckClient(s.Linux.Seccomp); err != nil {
			return r.refuse(err.Error(), "fix the pod's seccomp profile (the Localhost file on the node), or remove it: palisade's filter applies anyway")
		}
	}
	if pol.Seccomp == nil {
		if s.Linux.Seccomp != nil {
			// the admin allowed running without palisade's filter, not
			// without the workload's own: keep it, without what only the
			// node may choose (listener, flags)
			own := seccomp.Intersect(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: s.Linux.Seccomp.Architectures}, s.Linux.Seccomp, arch.Native().OCI)
			if !sameFilter(own, s.Linux.Seccomp) {
				r.record("client filter", fmt.Sprintf("client filter without listener or flags (%s; default %s, %d rules)", seccomp.Unconfined, own.DefaultAction, len(own.Syscalls)))
				s.Linux.Seccomp = own
			}
		}
		return nil
	}
	var bounding []string
	if s.Process.Capabilities != nil {
		bounding = s.Process.Capabilities.Bounding
	}
	want, err := seccomp.ResolveCached(pol.Seccomp, runtime.GOARCH, bounding, compatABIs(pol.Profile.Seccomp.CompatABI))
	if err != nil {
		return r.refuse(err.Error(), "run palisade on amd64 or arm64")
	}
	if s.Linux.Seccomp != nil && sameFilter(s.Linux.Seccomp, want) {
		return nil
	}
	before, name := "none", pol.SeccompName
	if s.Linux.Seccomp != nil {
		// the workload's own filter (a pod's Localhost or RuntimeDefault
		// profile) may tighten the node's, never loosen it
		before = fmt.Sprintf("client filter (default %s, %d rules)", s.Linux.Seccomp.DefaultAction, len(s.Linux.Seccomp.Syscalls))
		want, name = seccomp.Intersect(want, s.Linux.Seccomp, arch.Native().OCI), name+" ∩ client filter"
	}
	r.record(before, fmt.Sprintf("%s (default %s, %d rules, %s)", name, want.DefaultAction, len(want.Syscalls), abiNote(want)))
	s.Linux.Seccomp = want
	return nil
}

func compatABIs(allowed bool) seccomp.ABIs {
	if allowed {
		return seccomp.WithCompat
	}
	return seccomp.NativeOnly
}

// abiNote says which system call ABIs a filter admits, for the audit
// record: "native ABI only, x86 and x32 calls are killed".
func abiNote(sc *specs.LinuxSeccomp) string {
	var in, out []string
	for _, c := range seccomp.Arches[runtime.GOARCH].Compat {
		if slices.Contains(sc.Architectures, c.Arch) {
			in = append(in, c.Name)
		} else {
			out = append(out, c.Name)
		}
	}
	switch {
	case len(in) == 0:
		return "native ABI only, " + strings.Join(out, " and ") + " calls are killed"
	case len(out) == 0:
		return "compat ABIs allowed: " + strings.Join(in, ", ")
	}
	return "compat ABIs allowed: " + strings.Join(in, ", ") + "; " + strings.Join(out, " and ") + " calls are killed"
}

func sameFilter(a, b *specs.LinuxSeccomp) bool {
	if a == b {
		return true
	}
	if a.DefaultAction != b.DefaultAction || len(a.Syscalls) != len(b.Syscalls) || len(a.Architectures) != len(b.Architectures) {
		return false
	}
	return sameJSON(a, b)
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

func verifySeccomp(req *Request, _ *Decisions, s *specs.Spec) string {
	sc := s.Linux.Seccomp
	if req.Policy.Seccomp == nil {
		if sc != nil && (sc.ListenerPath != "" || sc.ListenerMetadata != "" || len(sc.Flags) > 0) {
			return "the workload's seccomp filter keeps a listener or flags"
		}
		return ""
	}
	if sc == nil || sc.DefaultAction == specs.ActAllow || sc.DefaultAction == specs.ActLog {
		return "no seccomp filter that denies by default"
	}
	if !slices.Contains(sc.Architectures, arch.Native().OCI) {
		return "the seccomp filter does not cover this architecture"
	}
	if !req.Policy.Profile.Seccomp.CompatABI && len(sc.Architectures) > 1 {
		return "the seccomp filter admits compat ABIs the profile does not allow (seccomp.compat_abi)"
	}
	if sc.ListenerPath != "" || sc.ListenerMetadata != "" {
		return "the seccomp filter hands decisions to a listener"
	}
	return ""
}
