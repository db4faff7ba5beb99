package arch

import (
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Every row is complete and consistent with itself: the seccomp name is the
// kernel's machine name, every compat ABI has an ELF machine, loaders are
// absolute, the native loader comes first.
func TestRowsAreComplete(t *testing.T) {
	if len(Supported) != 2 {
		t.Fatalf("%d rows; palisade releases amd64 and arm64", len(Supported))
	}
	for _, a := range Supported {
		t.Run(a.GoArch, func(t *testing.T) {
			if string(a.OCI) != "SCMP_ARCH_"+strings.ToUpper(a.Uname) {
				t.Errorf("OCI arch %s does not name the kernel's machine %s", a.OCI, a.Uname)
			}
			if len(a.Compat) == 0 || len(a.CompatMachines) == 0 {
				t.Errorf("no compat ABI: a 64-bit %s kernel runs 32-bit programs, filters must cover them", a.Uname)
			}
			if !a.Runs(a.Machine) || !a.Runs(a.CompatMachines[0]) {
				t.Errorf("Runs denies the row's own machines")
			}
			if len(a.Loaders) == 0 || !strings.Contains(a.Loaders[0], strings.ReplaceAll(a.Uname, "_", "-")) {
				t.Errorf("loaders %v: the native glibc loader must come first", a.Loaders)
			}
			for _, l := range a.Loaders {
				if !filepath.IsAbs(l) || filepath.Clean(l) != l {
					t.Errorf("loader %q is not a clean absolute path", l)
				}
			}
			if !strings.HasPrefix(a.Triplet, a.Uname+"-") || a.QEMU != "qemu-"+a.Uname {
				t.Errorf("triplet %s / qemu %s do not follow the machine name %s", a.Triplet, a.QEMU, a.Uname)
			}
			if got, err := Lookup(a.GoArch); err != nil || got.GoArch != a.GoArch {
				t.Errorf("Lookup(%s) = %v, %v", a.GoArch, got.GoArch, err)
			}
		})
	}
}

// The rows do not share what tells them apart.
func TestRowsAreDistinct(t *testing.T) {
	amd, _ := Lookup("amd64")
	arm, _ := Lookup("arm64")
	if amd.Runs(arm.Machine) || arm.Runs(amd.Machine) || amd.Runs(elf.EM_ARM) || arm.Runs(elf.EM_386) {
		t.Error("an architecture claims to run the other's programs")
	}
	for _, l := range amd.Loaders {
		if arm.KnownLoader(l) {
			t.Errorf("loader %s is in both rows", l)
		}
	}
	if !amd.KnownLoader("/lib64/ld-linux-x86-64.so.2") || !arm.KnownLoader("/lib/ld-linux-aarch64.so.1") {
		t.Error("the glibc loaders are missing")
	}
	if got := arm.Arches(); len(got) != 2 || got[0] != arm.OCI {
		t.Errorf("arm64 seccomp arches %v", got)
	}
}

func TestLookupUnsupported(t *testing.T) {
	_, err := Lookup("riscv64")
	if !errors.Is(err, errdefs.ErrNotImplemented) || !strings.Contains(err.Error(), "amd64, arm64") {
		t.Fatalf("riscv64: %v", err)
	}
}

// The row this test runs under (amd64 on the host, arm64 under qemu in make
// test-arm64) matches the kernel's view and this very binary.
func TestNativeMatchesThisProgram(t *testing.T) {
	n := Native()
	if n.GoArch != runtime.GOARCH {
		t.Fatalf("Native() = %q on %s", n.GoArch, runtime.GOARCH)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	if m := unix.ByteSliceToString(u.Machine[:]); m != n.Uname {
		t.Errorf("uname -m says %s, row says %s", m, n.Uname)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if f.Machine != n.Machine {
		t.Errorf("this test binary is %v, row says %v", f.Machine, n.Machine)
	}
}

// Where this host has a row's C library (libc6 on amd64; libc6:arm64 after
// the cross toolchain is installed), its loader is the row's first loader and
// an ELF program of the row's machine.
func TestLoadersMatchInstalledLibc(t *testing.T) {
	for _, a := range Supported {
		t.Run(a.GoArch, func(t *testing.T) {
			multiarch := filepath.Join("/usr/lib", a.Triplet, filepath.Base(a.Loaders[0]))
			f, err := elf.Open(multiarch)
			if err != nil {
				t.Skipf("no %s C library here (%v): nothing to compare with", a.GoArch, err)
			}
			defer func() { _ = f.Close() }()
			if f.Machine != a.Machine {
				t.Errorf("%s is %v, row says %v", multiarch, f.Machine, a.Machine)
			}
			if real, err := filepath.EvalSymlinks(a.Loaders[0]); err != nil {
				t.Errorf("Debian's libc6 provides %s but %s does not resolve: %v", multiarch, a.Loaders[0], err)
			} else if want, _ := filepath.EvalSymlinks(multiarch); real != want {
				t.Errorf("%s resolves to %s, not to %s", a.Loaders[0], real, want)
			}
		})
	}
}
