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
	if s.Linux.Seccomp != nil && sameFilter(s.Linux.Seccomp, alertFilter(r, want)) {
		return nil
	}
	before, name := "none", pol.SeccompName
	if s.Linux.Seccomp != nil {
		// the workload's own filter (a pod's Localhost or RuntimeDefault
		// profile) may tighten the node's, never loosen it
		before = fmt.Sprintf("client filter (default %s, %d rules)", s.Linux.Seccomp.DefaultAction, len(s.Linux.Seccomp.Syscalls))
		want, name = seccomp.IntersectCached(want, s.Linux.Seccomp, arch.Native().OCI), name+" ∩ client filter"
	}
	after := fmt.Sprintf("%s (default %s, %d rules, %s)", name, want.DefaultAction, len(want.Syscalls), abiNote(want))
	if final := alertFilter(r, want); final != want {
		after += "; alert mode: the calls it denies are handed to palisade's seccomp agent, which records them and lets them run"
		want = final
	}
	r.record(before, after)
	s.Linux.Seccomp = want
	return nil
}

// alertFilter is the filter a container in alert mode gets: the calls the
// enforce filter denies (and, with an exec allow-list, execve and execveat,
// to record the programs run) go to the container's seccomp agent
// (seccomp.Alert). In enforce mode, or where no agent runs, it is the
// enforce filter itself.
func alertFilter(r *run, enforce *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	r.dec.SeccompAgent, r.dec.SeccompExecCalls = "", nil
	if !r.req.Policy.Alert || r.req.SeccompAgent == "" {
		return enforce
	}
	var record []string
	if r.req.Policy.Exec != nil {
		record = execCalls
	}
	out, recorded := seccomp.Alert(enforce, r.req.SeccompAgent, record...)
	r.dec.SeccompAgent, r.dec.SeccompExecCalls = r.req.SeccompAgent, recorded
	return out
}

// execCalls are the calls that run a program.
var execCalls = []string{"execve", "execveat"}

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
	agent := req.Policy.Alert && req.SeccompAgent != ""
	if (sc.ListenerPath != "" && (!agent || sc.ListenerPath != req.SeccompAgent)) || sc.ListenerMetadata != "" {
		return "the seccomp filter hands decisions to a listener other than palisade's agent in alert mode"
	}
	for _, rule := range sc.Syscalls {
		if rule.Action == specs.ActNotify && sc.ListenerPath == "" {
			return "the seccomp filter hands calls to a listener in enforce mode"
		}
	}
	return ""
}
