package seccomp

import (
	"fmt"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ociArches are the architectures of the runtime spec (and of libseccomp).
var ociArches = []specs.Arch{
	specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
	specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64, specs.ArchMIPSEL64N32,
	specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390, specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64,
	specs.ArchRISCV64, specs.ArchLOONGARCH64, specs.ArchM68K, specs.ArchSH, specs.ArchSHEB,
}

// ociFlags are the seccomp flags of the runtime spec.
var ociFlags = []specs.LinuxSeccompFlag{
	specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv,
}

// CheckClient refuses a filter a workload brought (a pod's Localhost or
// RuntimeDefault profile, in the spec's linux.seccomp) that runc would not
// accept as it is: an unknown action, comparison operator, architecture or
// flag, an argument index above 5, errnoRet with an action that has no
// errno. Intersect would otherwise read an
// unknown action as "allow" and drop the rule in silence, and a pod that
// counts on its rule would run without it. Values are quoted only by their
// start: the filter can be large, and the message ends in logs and the
// audit record.
func CheckClient(sc *specs.LinuxSeccomp) error {
	if !knownAction(sc.DefaultAction) {
		return fmt.Errorf("the pod's seccomp profile has default action %s, not a seccomp action (%s)", quoted(string(sc.DefaultAction)), actionList())
	}
	for _, a := range sc.Architectures {
		if !slices.Contains(ociArches, a) {
			return fmt.Errorf("the pod's seccomp profile names architecture %s, not a seccomp architecture such as %s", quoted(string(a)), specs.ArchX86_64)
		}
	}
	for _, f := range sc.Flags {
		if !slices.Contains(ociFlags, f) {
			return fmt.Errorf("the pod's seccomp profile has flag %s, not a seccomp filter flag runc knows", quoted(string(f)))
		}
	}
	for i, r := range sc.Syscalls {
		if !knownAction(r.Action) {
			return fmt.Errorf("the pod's seccomp profile: syscalls[%d] has action %s, not a seccomp action (%s)", i, quoted(string(r.Action)), actionList())
		}
		if r.ErrnoRet != nil && r.Action != specs.ActErrno && r.Action != specs.ActTrace {
			return fmt.Errorf("the pod's seccomp profile: syscalls[%d] has errnoRet with action %s; it is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE", i, r.Action)
		}
		for _, a := range r.Args {
			if a.Index > 5 {
				return fmt.Errorf("the pod's seccomp profile: syscalls[%d] has argument index %d; system calls have arguments 0 to 5", i, a.Index)
			}
			if !slices.Contains(validOps, a.Op) {
				return fmt.Errorf("the pod's seccomp profile: syscalls[%d] has operator %s, not a seccomp comparison", i, quoted(string(a.Op)))
			}
		}
	}
	return nil
}

// knownAction: the actions palisade's own profiles may use, and notify,
// which Intersect turns into an error.
func knownAction(a specs.LinuxSeccompAction) bool {
	return slices.Contains(validActions, a) || a == specs.ActNotify
}

// quoted quotes at most the first 64 bytes of s.
func quoted(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + fmt.Sprintf(" (%d bytes)", len(s))
	}
	return strconv.Quote(s)
}
