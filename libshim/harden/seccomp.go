package harden

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/seccomp"
)

// seccompFilter installs the policy's seccomp profile, resolved for this
// architecture and the container's final capability set. The spec's own
// filter is replaced (and recorded): a spec cannot carry two, and the
// node's policy decides. Unconfined (nil) only when the admin allowed it.
func seccompFilter(r *run, s *specs.Spec) error {
	pol := r.req.Policy
	if pol.Seccomp == nil {
		if s.Linux.Seccomp != nil {
			r.record("client filter", seccomp.Unconfined)
			s.Linux.Seccomp = nil
		}
		return nil
	}
	var bounding []string
	if s.Process.Capabilities != nil {
		bounding = s.Process.Capabilities.Bounding
	}
	want, err := seccomp.Resolve(pol.Seccomp, runtime.GOARCH, bounding)
	if err != nil {
		return r.refuse(err.Error(), "run palisade on amd64 or arm64")
	}
	if s.Linux.Seccomp != nil && sameFilter(s.Linux.Seccomp, want) {
		return nil
	}
	before := "none"
	if s.Linux.Seccomp != nil {
		before = fmt.Sprintf("client filter (default %s, %d rules)", s.Linux.Seccomp.DefaultAction, len(s.Linux.Seccomp.Syscalls))
	}
	r.record(before, fmt.Sprintf("%s (default %s, %d rules)", pol.SeccompName, want.DefaultAction, len(want.Syscalls)))
	s.Linux.Seccomp = want
	return nil
}

func sameFilter(a, b *specs.LinuxSeccomp) bool {
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
	if req.Policy.Seccomp == nil {
		return ""
	}
	sc := s.Linux.Seccomp
	if sc == nil || sc.DefaultAction == specs.ActAllow || sc.DefaultAction == specs.ActLog {
		return "no seccomp filter that denies by default"
	}
	if !slices.Contains(sc.Architectures, nativeArch[runtime.GOARCH]) {
		return "the seccomp filter does not cover this architecture"
	}
	if sc.ListenerPath != "" || sc.ListenerMetadata != "" {
		return "the seccomp filter hands decisions to a listener"
	}
	return ""
}

// nativeArch is the OCI name of each Go architecture palisade runs on.
var nativeArch = map[string]specs.Arch{"amd64": specs.ArchX86_64, "arm64": specs.ArchAARCH64}
