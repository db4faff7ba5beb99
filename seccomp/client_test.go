package seccomp

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A workload's filter with an entry runc could not read is refused with a
// message naming it, quoted by its start only; a valid one passes.
func TestCheckClient(t *testing.T) {
	errno := uint(1)
	ok := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchAARCH64}, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActNotify, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0o777, ValueTwo: 0o700, Op: specs.OpMaskedEqual}}}}}
	if err := CheckClient(ok); err != nil {
		t.Errorf("a valid filter: %v", err)
	}
	for want, sc := range map[string]*specs.LinuxSeccomp{
		`default action "SCMP_ACT_` + strings.Repeat("X", 55) + `" (1009 bytes)`: {DefaultAction: specs.LinuxSeccompAction("SCMP_ACT_" + strings.Repeat("X", 1000))},
		`syscalls[0] has action "SCMP_ACT_DENY"`:                                 {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: "SCMP_ACT_DENY"}}},
		`architecture "SCMP_ARCH_Z80"`:                                           {DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}},
		`flag "X"`:                                                               {DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"X"}},
		`argument index 6`:                                                       {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}},
		`operator "SCMP_CMP_SOMETIMES"`:                                          {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_SOMETIMES"}}}}},
		`errnoRet with action SCMP_ACT_LOG`:                                      {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActLog, ErrnoRet: &errno}}},
	} {
		err := CheckClient(sc)
		if err == nil || !strings.Contains(err.Error(), want) || len(err.Error()) > 400 {
			t.Errorf("want %q, got %v", want, err)
		}
	}
}
