//go:build cgo

package seccomp

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The generated table holds what the host's libseccomp answers, row for
// row, and misses no name it knows; lookups through it answer as
// libseccomp does, by name and by number, on every architecture palisade
// filters for — also for names the table does not hold. A build without
// libseccomp (the shim's) has only the table: this is what makes it right.
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
		g := syscallTable[i]
		if g.name != w.Name || g.amd64 != w.AMD64 || g.arm64 != w.ARM64 || g.x86 != w.X86 || g.x32 != w.X32 || g.arm != w.ARM {
			t.Fatalf("row %d is %+v, libseccomp gives %+v: run go generate ./seccomp", i, g, w)
		}
	}
	names := []string{"read", "_llseek", "clone3", "socketcall", "no_such_syscall", "READ", ""}
	for _, r := range DefaultProfile().Syscalls {
		names = append(names, r.Names...)
	}
	names = append(names, newerThanLibseccomp...)
	for _, n := range names {
		for _, a := range tableArches {
			got, gotErr := syscallNumber(n, a)
			want, wantErr := libSyscallNumber(n, a)
			if got != want || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("%q on %v: table lookup gives %d, %v; libseccomp %d, %v", n, a, got, gotErr, want, wantErr)
			}
			if e := tableIndex()[n]; e == nil && wantErr == nil {
				t.Errorf("%q on %v: libseccomp knows it, the table does not", n, a)
			}
		}
	}
	// by number, from the table alone (as the shim's build answers)
	for oci := range syscallRanges {
		tableOnly := func(nr int32, a ScmpArch) (string, error) {
			if n, ok := tableNames()[a][nr]; ok {
				return n, nil
			}
			return "", errors.New("not in the table")
		}
		got, want := namesIn(oci, tableOnly), namesIn(oci, libSyscallName)
		if len(got) != len(want) {
			t.Fatalf("%s: the table names %d numbers, libseccomp %d", oci, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: number %d of the ranges is %q in the table, %q in libseccomp", oci, i, got[i], want[i])
			}
		}
	}
	if n, arch := SyscallName(auditArch["amd64"], 0x40000000); n != "read" || arch != specs.ArchX32 {
		t.Errorf("x32 read: %q %v", n, arch)
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
