package seccomp

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
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

// scmpArchNames maps OCI architecture names to libseccomp's.
var scmpArchNames = map[specs.Arch]string{
	specs.ArchX86_64: "amd64", specs.ArchX86: "x86", specs.ArchX32: "x32",
	specs.ArchAARCH64: "arm64", specs.ArchARM: "arm",
}

// Compile builds the BPF program libseccomp generates for sc on goarch. It
// adds rules as runc does: a rule whose action is the default action is
// skipped; conditions on distinct arguments are ANDed in one rule, several
// conditions on the same argument become one rule each.
func Compile(sc *specs.LinuxSeccomp, goarch string) (*Filter, error) {
	t, ok := Arches[goarch]
	if !ok {
		return nil, fmt.Errorf("seccomp: architecture %q is not supported (amd64, arm64)", goarch)
	}
	raw, err := rawFilter(sc, goarch)
	if err != nil {
		return nil, err
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		return nil, fmt.Errorf("seccomp: the exported program has instructions the interpreter does not know")
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp: the generated program does not load in the interpreter: %w", err)
	}
	return &Filter{target: t, audit: auditArch[goarch], vm: vm, Instructions: len(prog)}, nil
}

// rawFilter is libseccomp's program for sc on goarch, as Compile describes.
func rawFilter(sc *specs.LinuxSeccomp, goarch string) ([]bpf.RawInstruction, error) {
	if _, ok := Arches[goarch]; !ok {
		return nil, fmt.Errorf("seccomp: architecture %q is not supported (amd64, arm64)", goarch)
	}
	def, err := scmpAction(sc.DefaultAction, sc.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("seccomp: new filter: %w", err)
	}
	defer f.Release()
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, err
	}
	keepNative := false
	for _, a := range sc.Architectures {
		name, ok := scmpArchNames[a]
		if !ok {
			continue // other families: irrelevant to this target
		}
		sa, err := libseccomp.GetArchFromString(name)
		if err != nil {
			return nil, err
		}
		if sa == native {
			keepNative = true
		}
		if err := f.AddArch(sa); err != nil {
			return nil, fmt.Errorf("seccomp: add arch %s: %w", name, err)
		}
	}
	if !keepNative {
		if err := f.RemoveArch(native); err != nil {
			return nil, fmt.Errorf("seccomp: remove native arch: %w", err)
		}
	}
	for _, r := range sc.Syscalls {
		if r.Action == sc.DefaultAction && errnoOf(r.ErrnoRet) == errnoOf(sc.DefaultErrnoRet) {
			continue
		}
		act, err := scmpAction(r.Action, r.ErrnoRet)
		if err != nil {
			return nil, err
		}
		conds, err := conditions(r.Args)
		if err != nil {
			return nil, err
		}
		for _, name := range r.Names {
			nr, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue // unknown to this libseccomp: validation dropped it or refused the profile
			}
			if len(conds) == 0 {
				err = f.AddRule(nr, act)
			} else {
				for _, c := range conds {
					if err = f.AddRuleConditional(nr, act, c); err != nil {
						break
					}
				}
			}
			if err != nil {
				return nil, fmt.Errorf("seccomp: rule for %s: %w", name, err)
			}
		}
	}
	return export(f)
}

// conditions groups a rule's argument conditions as runc does.
func conditions(args []specs.LinuxSeccompArg) ([][]libseccomp.ScmpCondition, error) {
	if len(args) == 0 {
		return nil, nil
	}
	seen := map[uint]bool{}
	unique := true
	var all []libseccomp.ScmpCondition
	for _, a := range args {
		unique = unique && !seen[a.Index]
		seen[a.Index] = true
		c, err := libseccomp.MakeCondition(a.Index, scmpOp(a.Op), a.Value, a.ValueTwo)
		if a.Op != specs.OpMaskedEqual {
			c, err = libseccomp.MakeCondition(a.Index, scmpOp(a.Op), a.Value)
		}
		if err != nil {
			return nil, fmt.Errorf("seccomp: condition %+v: %w", a, err)
		}
		all = append(all, c)
	}
	if unique {
		return [][]libseccomp.ScmpCondition{all}, nil
	}
	out := make([][]libseccomp.ScmpCondition, len(all))
	for i, c := range all {
		out[i] = []libseccomp.ScmpCondition{c}
	}
	return out, nil
}

var scmpOps = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual: libseccomp.CompareNotEqual, specs.OpLessThan: libseccomp.CompareLess,
	specs.OpLessEqual: libseccomp.CompareLessOrEqual, specs.OpEqualTo: libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual, specs.OpGreaterThan: libseccomp.CompareGreater,
	specs.OpMaskedEqual: libseccomp.CompareMaskedEqual,
}

func scmpOp(op specs.LinuxSeccompOperator) libseccomp.ScmpCompareOp {
	if o, ok := scmpOps[op]; ok {
		return o
	}
	return libseccomp.CompareInvalid
}

func errnoOf(p *uint) uint {
	if p == nil {
		return uint(unix.EPERM)
	}
	return *p
}

func scmpAction(a specs.LinuxSeccompAction, errno *uint) (libseccomp.ScmpAction, error) {
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(int16(errnoOf(errno))), nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(int16(errnoOf(errno))), nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("seccomp: action %q is not supported", a)
}

// export writes the program through a memfd (libseccomp exports to a file
// descriptor) and reads its instructions back.
func export(f *libseccomp.ScmpFilter) ([]bpf.RawInstruction, error) {
	fd, err := unix.MemfdCreate("palisade-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: memfd: %w", err)
	}
	file := os.NewFile(uintptr(fd), "palisade-seccomp")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("seccomp: export: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(file)
	if err != nil {
		return nil, err
	}
	if len(raw)%8 != 0 {
		return nil, fmt.Errorf("seccomp: exported program has %d bytes, not a multiple of 8", len(raw))
	}
	ins := make([]bpf.RawInstruction, len(raw)/8)
	for i := range ins {
		b := raw[i*8:]
		ins[i] = bpf.RawInstruction{Op: binary.NativeEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.NativeEndian.Uint32(b[4:])}
	}
	return ins, nil
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

func (f *Filter) check(name, abi string, arch libseccomp.ScmpArch, audit uint32, args []uint64) (Verdict, error) {
	v := Verdict{Syscall: name, Args: args, Arch: f.target.GoArch, ABI: abi}
	if len(args) > 6 {
		return v, fmt.Errorf("seccomp: a syscall has at most 6 arguments")
	}
	nr, err := libseccomp.GetSyscallFromNameByArch(name, arch)
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
