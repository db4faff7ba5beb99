//go:build cgo

package seccomp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The precompiled program does what libseccomp's filter does for every
// native system call the profile names or libseccomp knows, with runc's
// -ENOSYS stub in front: calls numbered above the profile's last get
// ENOSYS, calls through a compat ABI are killed.
func TestProgramIsLibseccompsFilterWithRuncsStub(t *testing.T) {
	l, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	goarch := runtime.GOARCH
	for _, bounding := range [][]string{nil, {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}} {
		sc, err := Resolve(l, goarch, bounding, NativeOnly)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := NewProgram(sc, goarch)
		if err != nil {
			t.Fatal(err)
		}
		got, err := prog.Filter(goarch)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Compile(sc, goarch)
		if err != nil {
			t.Fatal(err)
		}
		if got.Instructions <= want.Instructions {
			t.Fatalf("the program has %d instructions, libseccomp's filter %d: no stub in front", got.Instructions, want.Instructions)
		}
		last := 0
		for _, name := range knownSyscalls(Arches[goarch].Arch) {
			for _, args := range [][]uint64{nil, {unix.CLONE_NEWUSER}, {0, 0, 0}} {
				g, err := got.Check(name, args...)
				if err != nil {
					t.Fatal(err)
				}
				w, _ := want.Check(name, args...)
				if g.Action != w.Action {
					t.Errorf("%s%v: program %s, libseccomp's filter %s", name, args, g.Action, w.Action)
				}
				if g.Number > last && !g.Absent {
					last = g.Number
				}
			}
			comp, err := got.CheckCompat(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range comp {
				if !v.Absent && v.Action != "kill-thread" {
					t.Errorf("%s through %s: %s, want kill-thread", name, v.ABI, v.Action)
				}
			}
		}
		// past every number libseccomp knows here (and past the profile's
		// last): ENOSYS, where libseccomp alone answers EPERM
		for nr := last + 1; nr < last+200; nr += 37 {
			if a := run(t, got, uint32(nr), auditArch[goarch]); a != "errno ENOSYS" {
				t.Errorf("syscall %d: %s, want errno ENOSYS", nr, a)
			}
			if a := run(t, want, uint32(nr), auditArch[goarch]); a != "errno EPERM" {
				t.Errorf("libseccomp's filter, syscall %d: %s, want errno EPERM", nr, a)
			}
		}
		if goarch == "amd64" { // x32: bit 30, killed by the filter even past the last number
			if a := run(t, got, uint32(last+1)|1<<30, auditArch[goarch]); a != "kill-thread" {
				t.Errorf("x32 call past the last: %s, want kill-thread", a)
			}
		}
		if a := run(t, got, 1, 0x12345678); a != "kill-thread" {
			t.Errorf("unknown architecture: %s, want kill-thread", a)
		}
	}
}

// run feeds one raw seccomp_data record (number, arch) to a filter.
func run(t *testing.T, f *Filter, nr, audit uint32) string {
	t.Helper()
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], nr)
	binary.BigEndian.PutUint32(data[4:], audit)
	ret, err := f.vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return actionName(uint32(ret))
}

func TestProgramStubFollowsRunc(t *testing.T) {
	goarch := runtime.GOARCH
	native := Arches[goarch].Arch
	enosys := uint(unix.ENOSYS)
	for _, c := range []struct {
		name string
		sc   specs.LinuxSeccomp
		stub bool
	}{
		{"errno default", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{native}, Syscalls: []specs.LinuxSyscall{{Names: []string{"openat"}, Action: specs.ActAllow}}}, true},
		{"kill default", specs.LinuxSeccomp{DefaultAction: specs.ActKill, Architectures: []specs.Arch{native}, Syscalls: []specs.LinuxSyscall{{Names: []string{"openat"}, Action: specs.ActAllow}}}, true},
		{"ENOSYS default", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &enosys, Architectures: []specs.Arch{native}, Syscalls: []specs.LinuxSyscall{{Names: []string{"openat"}, Action: specs.ActAllow}}}, false},
		{"allow default", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{native}, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActErrno}}}, false},
		{"trace default", specs.LinuxSeccomp{DefaultAction: specs.ActTrace, Architectures: []specs.Arch{native}, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActErrno}}}, false},
	} {
		prog, err := NewProgram(&c.sc, goarch)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		plain, err := rawFilter(&c.sc, goarch)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(prog)/8 > len(plain); got != c.stub {
			t.Errorf("%s: stub %v, want %v", c.name, got, c.stub)
		}
	}
	compat := specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: append([]specs.Arch{native}, Arches[goarch].Compat[0].Arch)}
	if _, err := NewProgram(&compat, goarch); !errors.Is(err, ErrNotNativeOnly) {
		t.Errorf("a filter with a compat ABI: %v, want ErrNotNativeOnly", err)
	}
}

func TestProgramDecodeRefusesBadLengths(t *testing.T) {
	for _, p := range []Program{nil, make(Program, 7), make(Program, 8*4097)} {
		if _, err := p.Instructions(); err == nil {
			t.Errorf("%d bytes decoded", len(p))
		}
	}
}

// A kept program is bound to its key: another filter's program moved
// under a key (a stale or tampered entry) is not used.
func TestKeptProgramIsBoundToItsKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "programs")
	prog := Program{0x06, 0, 0, 0, 0, 0, 0xff, 0x7f} // allow everything
	if err := WriteProgram(dir, "aaaa", prog); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadProgram(dir, "aaaa"); err != nil || !bytes.Equal(got, prog) {
		t.Fatalf("read back: %v %x", err, got)
	}
	if err := os.Rename(filepath.Join(dir, "aaaa"), filepath.Join(dir, "bbbb")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadProgram(dir, "bbbb"); err == nil {
		t.Errorf("a program kept under another key was used")
	}
}
