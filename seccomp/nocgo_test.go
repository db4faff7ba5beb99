//go:build !cgo

package seccomp

import (
	"errors"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The shim's build has no libseccomp: it validates and resolves profiles,
// names system calls and knows every architecture's calls from the
// generated table alone (TestSyscallTable, in a cgo build, holds the table
// to libseccomp's answers), and leaves compiling to palisade-init.
func TestWithoutLibseccomp(t *testing.T) {
	if HaveLibseccomp || !tableUsable() {
		t.Fatal("a build without cgo must answer from the table")
	}
	l, err := Default()
	if err != nil {
		t.Fatalf("the built-in profile does not validate from the table: %v", err)
	}
	sc, err := Resolve(l, runtime.GOARCH, nil, NativeOnly)
	if err != nil || len(sc.Syscalls) == 0 {
		t.Fatalf("resolve: %v", err)
	}
	if _, err := NewProgram(sc, runtime.GOARCH); !errors.Is(err, ErrNoLibseccomp) {
		t.Errorf("NewProgram: %v, want ErrNoLibseccomp", err)
	}
	for _, a := range []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM} {
		if n := len(knownSyscalls(a)); n < 300 {
			t.Errorf("%s: %d calls known", a, n)
		}
	}
	if _, err := Parse("bad", "bad.json", []byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64"],"syscalls":[{"names":["no_such_call"],"action":"SCMP_ACT_ALLOW"}]}`)); err == nil {
		t.Error("an unknown name validated")
	}
	for _, c := range []struct {
		audit uint32
		nr    int32
		name  string
	}{{auditArch["amd64"], 0, "read"}, {auditArch["arm64"], 63, "read"}, {auditArch["amd64"], 0x40000000 | 1, "write"}} {
		if n, _ := SyscallName(c.audit, c.nr); n != c.name {
			t.Errorf("%#x %d: %q, want %q", c.audit, c.nr, n, c.name)
		}
	}
}
