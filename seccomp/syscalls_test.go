package seccomp

import (
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// The generated table holds what the host's libseccomp answers, row for
// row, and misses no name it knows; lookups through it answer as
// libseccomp does, also for names the table does not hold.
func TestSyscallTable(t *testing.T) {
	maj, minor, micro, want := SyscallTableEntries()
	if [3]uint{maj, minor, micro} != syscallTableVersion {
		t.Skipf("the table is for libseccomp %v and this host has %d.%d.%d: lookups here go to libseccomp (regenerate with go generate ./seccomp on a host with the version to serve)",
			syscallTableVersion, maj, minor, micro)
	}
	if !tableUsable() {
		t.Fatal("the table's version matches the host's libseccomp, yet it is not used")
	}
	if len(syscallTable) != len(want) {
		t.Fatalf("the table has %d rows and libseccomp gives %d: run go generate ./seccomp", len(syscallTable), len(want))
	}
	for i, w := range want {
		if g := syscallTable[i]; g.name != w.Name || g.amd64 != w.AMD64 || g.arm64 != w.ARM64 {
			t.Fatalf("row %d is %+v, libseccomp gives %+v: run go generate ./seccomp", i, g, w)
		}
	}
	names := []string{"read", "_llseek", "clone3", "socketcall", "no_such_syscall", "READ", ""}
	for _, r := range DefaultProfile().Syscalls {
		names = append(names, r.Names...)
	}
	names = append(names, newerThanLibseccomp...)
	for _, n := range names {
		for _, a := range []libseccomp.ScmpArch{libseccomp.ArchAMD64, libseccomp.ArchARM64} {
			got, gotErr := syscallNumber(n, a)
			want, wantErr := libseccomp.GetSyscallFromNameByArch(n, a)
			if got != want || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("%q on %v: table lookup gives %d, %v; libseccomp %d, %v", n, a, got, gotErr, want, wantErr)
			}
		}
	}
}

// The table is sorted and holds each name once.
func TestSyscallTableSorted(t *testing.T) {
	for i := 1; i < len(syscallTable); i++ {
		if syscallTable[i-1].name >= syscallTable[i].name {
			t.Fatalf("rows %d and %d out of order: %q, %q", i-1, i, syscallTable[i-1].name, syscallTable[i].name)
		}
	}
}
