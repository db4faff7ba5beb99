package seccomp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// A Program is a filter compiled once, ahead of the container's start, as
// the kernel loads it: the classic BPF program runc would build inside
// `runc init` from the spec's seccomp section (libseccomp's program with
// runc's -ENOSYS stub in front), as raw sock_filter records in the host's
// byte order. palisade-init loads it with seccomp(2) just before it
// executes the container's command (libshim/launch), so runc neither
// compiles the filter on every start nor carries its rules through every
// runc process.
type Program []byte

// ErrNoLibseccomp is returned by NewProgram and Compile in a build without
// libseccomp (HaveLibseccomp): the shim's, which has palisade-init compile.
var ErrNoLibseccomp = errors.New("seccomp: this build has no libseccomp to compile filters with")

// ErrNotNativeOnly is returned by NewProgram for a filter that also admits
// a compat ABI: its -ENOSYS stub is not built here, and runc loads it.
var ErrNotNativeOnly = errors.New("seccomp: the filter admits a compat ABI")

// maxInstructions is the kernel's BPF_MAXINSNS.
const maxInstructions = 4096

// NewProgram compiles sc for goarch, which must be the host's architecture
// (libseccomp generates for the host). Only native-only filters (the
// default) compile here; see ErrNotNativeOnly.
func NewProgram(sc *specs.LinuxSeccomp, goarch string) (Program, error) {
	t, ok := Arches[goarch]
	if !ok {
		return nil, fmt.Errorf("seccomp: architecture %q is not supported (amd64, arm64)", goarch)
	}
	for _, a := range sc.Architectures {
		if a != t.Arch {
			return nil, ErrNotNativeOnly
		}
	}
	raw, err := rawFilter(sc, goarch)
	if err != nil {
		return nil, err
	}
	stub, err := enosysStub(sc, t)
	if err != nil {
		return nil, err
	}
	prog := append(stub, raw...)
	if len(prog) > maxInstructions {
		return nil, fmt.Errorf("seccomp: the filter has %d instructions, more than the kernel's %d", len(prog), maxInstructions)
	}
	out := make(Program, 0, 8*len(prog))
	for _, in := range prog {
		out = binary.NativeEndian.AppendUint16(out, in.Op)
		out = append(out, in.Jt, in.Jf)
		out = binary.NativeEndian.AppendUint32(out, in.K)
	}
	return out, nil
}

// raw splits the program into its records (a trailing partial record is
// dropped).
func (p Program) raw() []bpf.RawInstruction {
	raw := make([]bpf.RawInstruction, len(p)/8)
	for i := range raw {
		b := p[8*i:]
		raw[i] = bpf.RawInstruction{Op: binary.NativeEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.NativeEndian.Uint32(b[4:])}
	}
	return raw
}

// check refuses a program that is not 1 to maxInstructions whole records.
func (p Program) check() error {
	if len(p) == 0 || len(p)%8 != 0 || len(p)/8 > maxInstructions {
		return fmt.Errorf("seccomp: a program of %d bytes is not 1 to %d instructions", len(p), maxInstructions)
	}
	return nil
}

// Instructions decodes the program for an interpreter (tests, checks).
func (p Program) Instructions() ([]bpf.Instruction, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	prog, ok := bpf.Disassemble(p.raw())
	if !ok {
		return nil, errors.New("seccomp: the program has instructions the interpreter does not know")
	}
	return prog, nil
}

// Filter loads the program into the interpreter Compile's filters use, to
// check what it does with a syscall.
func (p Program) Filter(goarch string) (*Filter, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return newFilter(p.raw(), goarch)
}

// enosysStub is runc's -ENOSYS stub (libcontainer/seccomp/patchbpf) for a
// native-only filter: a native system call numbered above every call the
// profile names returns ENOSYS instead of the default action, so that a
// program probing a syscall newer than the profile falls back as it would
// on an older kernel (glibc and clone3, for one). runc adds it only when
// the default action denies and is not ENOSYS already. On amd64, an x32
// call (bit 30 of the number) goes on to the filter, which kills it.
func enosysStub(sc *specs.LinuxSeccomp, t Target) ([]bpf.RawInstruction, error) {
	switch sc.DefaultAction {
	case specs.ActAllow, specs.ActLog, specs.ActTrace:
		return nil, nil
	}
	if sc.DefaultErrnoRet != nil && *sc.DefaultErrnoRet == uint(unix.ENOSYS) {
		return nil, nil
	}
	var last int32
	for _, r := range sc.Syscalls {
		for _, name := range r.Names {
			if nr, err := syscallNumber(name, t.Scmp); err == nil && nr > last {
				last = nr
			}
		}
	}
	if last == 0 {
		return nil, nil // as runc: no section for an architecture without calls
	}
	toFilter := func(from int, n int) uint8 { return uint8(n - from - 1) }
	var prog []bpf.Instruction
	if t.GoArch == "amd64" {
		// 0 ld arch; 1 jne x86_64 → filter; 2 ld nr; 3 jset x32 → filter;
		// 4 jle last → filter; 5 ret ENOSYS; 6 filter
		const n = 6
		prog = []bpf.Instruction{
			bpf.LoadAbsolute{Off: 4, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArch[t.GoArch], SkipFalse: toFilter(1, n)},
			bpf.LoadAbsolute{Off: 0, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 1 << 30, SkipTrue: toFilter(3, n)},
			bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: uint32(last), SkipFalse: toFilter(4, n)},
			bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		}
	} else {
		const n = 5
		prog = []bpf.Instruction{
			bpf.LoadAbsolute{Off: 4, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArch[t.GoArch], SkipFalse: toFilter(1, n)},
			bpf.LoadAbsolute{Off: 0, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: uint32(last), SkipFalse: toFilter(3, n)},
			bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		}
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp: -ENOSYS stub: %w", err)
	}
	return slices.Clip(raw), nil
}

// programFormat changes whenever NewProgram would compile the same filter
// differently (the stub), or what libshim/launch checks before it keeps a
// program changes (a kept program is used unchecked), so that programs
// kept by an older shim are not used.
const programFormat = "palisade-seccomp-program-2"

// ProgramKey names the program of sc for goarch among those kept on a node:
// a digest of the filter's JSON, the architecture, the program format and
// compiler, which names what compiled it (palisade-init's version of it).
func ProgramKey(sc *specs.LinuxSeccomp, goarch, compiler string) (string, error) {
	data := Encoded(sc)
	if data == nil {
		var err error
		if data, err = json.Marshal(sc); err != nil {
			return "", fmt.Errorf("seccomp: encode filter: %w", err)
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", programFormat, goarch, compiler)
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ReadProgram reads a program WriteProgram kept under key in dir. The file
// holds the SHA-256 of the key and the program ahead of it; a file that
// does not match (a torn or damaged write, or another filter's program
// moved under this key) is an error, and the caller compiles afresh.
func ReadProgram(dir, key string) (Program, error) {
	f, err := os.Open(filepath.Join(dir, key))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != uint32(os.Geteuid()) || st.Mode&0o022 != 0 || st.Size > sha256.Size+8*maxInstructions {
		return nil, errors.New("seccomp: kept program is not a private file of this user's")
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	if len(data) < sha256.Size {
		return nil, errors.New("seccomp: kept program too short")
	}
	prog := Program(data[sha256.Size:])
	if sum := keptSum(key, prog); !bytes.Equal(sum[:], data[:sha256.Size]) {
		return nil, errors.New("seccomp: kept program does not match its digest (damaged, or kept under another key)")
	}
	if _, err := prog.Instructions(); err != nil {
		return nil, err
	}
	return prog, nil
}

// keptSum binds a kept program to its key: a program is used only for the
// filter it was compiled from.
func keptSum(key string, prog Program) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write(prog)
	return [sha256.Size]byte(h.Sum(nil))
}

// WriteProgram keeps prog under key in dir (created mode 0700, root's),
// atomically.
func WriteProgram(dir, key string, prog Program) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != uint32(os.Geteuid()) || st.Mode&0o077 != 0 {
		return fmt.Errorf("seccomp: %s is not a private directory of this user", dir)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	sum := keptSum(key, prog)
	_, err = tmp.Write(append(sum[:], prog...))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, key))
}
