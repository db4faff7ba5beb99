//go:build cgo

package seccomp

import (
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Compile builds the BPF program libseccomp generates for sc on goarch. It
// adds rules as runc does: a rule whose action is the default action is
// skipped; conditions on distinct arguments are ANDed in one rule, several
// conditions on the same argument become one rule each.
func Compile(sc *specs.LinuxSeccomp, goarch string) (*Filter, error) {
	raw, err := rawFilter(sc, goarch)
	if err != nil {
		return nil, err
	}
	return newFilter(raw, goarch)
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
	return Program(raw).raw(), nil
}
