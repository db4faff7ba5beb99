package seccomp

import (
	"encoding/binary"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Filter is a profile compiled by libseccomp for one architecture, as the
// classic BPF program the kernel would run, loaded into an interpreter.
// Checking a syscall runs the program on a seccomp_data record, exactly as
// the kernel does: what a profile does is known without loading it.
type Filter struct {
	target Target
	audit  uint32
	vm     *bpf.VM
	// Instructions is the program's length.
	Instructions int
}

// Verdict is what a filter does with one syscall.
type Verdict struct {
	Syscall string   `json:"syscall"`
	Args    []uint64 `json:"args,omitempty"`
	Arch    string   `json:"arch"`
	// ABI names a compat ABI the call was made through (x86, x32, arm);
	// empty for the architecture's native ABI.
	ABI    string `json:"abi,omitempty"`
	Number int    `json:"number"`
	Absent bool   `json:"absent,omitempty"` // no such syscall on this architecture
	Action string `json:"action"`           // allow, errno EPERM, errno ENOSYS, kill-process, ...
}

var auditArch = map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}

// newFilter loads a raw program for goarch into the interpreter.
func newFilter(raw []bpf.RawInstruction, goarch string) (*Filter, error) {
	t, ok := Arches[goarch]
	if !ok {
		return nil, fmt.Errorf("seccomp: architecture %q is not supported (amd64, arm64)", goarch)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		return nil, fmt.Errorf("seccomp: the program has instructions the interpreter does not know")
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp: the program does not load in the interpreter: %w", err)
	}
	return &Filter{target: t, audit: auditArch[goarch], vm: vm, Instructions: len(prog)}, nil
}

// scmpArchNames maps OCI architecture names to libseccomp's.
var scmpArchNames = map[specs.Arch]string{
	specs.ArchX86_64: "amd64", specs.ArchX86: "x86", specs.ArchX32: "x32",
	specs.ArchAARCH64: "arm64", specs.ArchARM: "arm",
}

func errnoOf(p *uint) uint {
	if p == nil {
		return uint(unix.EPERM)
	}
	return *p
}

// Check runs the filter on one syscall with up to six arguments, made
// through the architecture's native ABI.
func (f *Filter) Check(name string, args ...uint64) (Verdict, error) {
	return f.check(name, "", f.target.Scmp, f.audit, args)
}

// CheckCompat runs the filter on one syscall made through each compat ABI
// of the architecture (int 0x80 and x32 on amd64, AArch32 on arm64): what a
// 32-bit program in the container would get.
func (f *Filter) CheckCompat(name string, args ...uint64) ([]Verdict, error) {
	var out []Verdict
	for _, c := range f.target.Compat {
		v, err := f.check(name, c.Name, c.Scmp, c.Audit, args)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (f *Filter) check(name, abi string, arch ScmpArch, audit uint32, args []uint64) (Verdict, error) {
	v := Verdict{Syscall: name, Args: args, Arch: f.target.GoArch, ABI: abi}
	if len(args) > 6 {
		return v, fmt.Errorf("seccomp: a syscall has at most 6 arguments")
	}
	nr, err := syscallNumber(name, arch)
	if err != nil {
		return v, fmt.Errorf("seccomp: unknown syscall %q", name)
	}
	v.Number = int(nr)
	if nr < 0 {
		v.Absent, v.Action = true, "absent"
		return v, nil
	}
	// struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }
	// The interpreter loads 32-bit words big-endian (network order); the
	// kernel loads them in host order. Each word is written big-endian,
	// words in little-endian order, as both targets lay them out.
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], uint32(nr))
	binary.BigEndian.PutUint32(data[4:], audit)
	for i, a := range args {
		off := 16 + 8*i
		binary.BigEndian.PutUint32(data[off:], uint32(a))
		binary.BigEndian.PutUint32(data[off+4:], uint32(a>>32))
	}
	ret, err := f.vm.Run(data)
	if err != nil {
		return v, fmt.Errorf("seccomp: run filter: %w", err)
	}
	v.Action = actionName(uint32(ret))
	return v, nil
}

// actionName names a seccomp return value.
func actionName(ret uint32) string {
	data := ret & unix.SECCOMP_RET_DATA
	switch ret & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "kill-process"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "kill-thread"
	case unix.SECCOMP_RET_TRAP:
		return "trap"
	case unix.SECCOMP_RET_ERRNO:
		return "errno " + strings.ToUpper(unix.ErrnoName(unix.Errno(data)))
	case unix.SECCOMP_RET_USER_NOTIF:
		return "notify"
	case unix.SECCOMP_RET_TRACE:
		return "trace"
	case unix.SECCOMP_RET_LOG:
		return "log"
	case unix.SECCOMP_RET_ALLOW:
		return "allow"
	}
	return fmt.Sprintf("unknown 0x%08x", ret)
}
