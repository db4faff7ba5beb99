package seccomp

import (
	"sort"
	"sync"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Syscall numbers without a libseccomp lookup per name.
//
// Validating a profile resolves each of its names for amd64 and arm64, and
// libseccomp finds a name by a linear scan of its table: the built-in
// profile's ≈ 400 names cost about 0.3 ms at a shim's first Create, on the
// container's start path. syscallTable (syscalls_table.go, written by
// `go generate` from libseccomp itself) holds libseccomp's answers for one
// version of it; when the host's libseccomp is that version, names are
// looked up there, and otherwise — or for a name the table does not hold —
// libseccomp answers, as before. TestSyscallTable checks every entry, and
// that no name libseccomp knows is missing, against the host's libseccomp.

//go:generate sh -c "go run ./internal/gensyscalls > syscalls_table.go.new && mv syscalls_table.go.new syscalls_table.go"

// syscallEntry is libseccomp's number for a name on amd64 and on arm64
// (negative: a name of another architecture, which libseccomp knows but
// the kernel does not have there).
type syscallEntry struct {
	name         string
	amd64, arm64 int32
}

// tableUsable tells whether the host's libseccomp is the table's version.
var tableUsable = sync.OnceValue(func() bool {
	maj, minor, micro := libseccomp.GetLibraryVersion()
	return [3]uint{maj, minor, micro} == syscallTableVersion
})

// tableIndex finds a name's row, built on first use (nil when the table
// is not usable here).
var tableIndex = sync.OnceValue(func() map[string]*syscallEntry {
	if !tableUsable() {
		return nil
	}
	m := make(map[string]*syscallEntry, len(syscallTable))
	for i := range syscallTable {
		m[syscallTable[i].name] = &syscallTable[i]
	}
	return m
})

// syscallNumber is libseccomp.GetSyscallFromNameByArch for amd64 and arm64.
func syscallNumber(name string, arch libseccomp.ScmpArch) (libseccomp.ScmpSyscall, error) {
	if arch == libseccomp.ArchAMD64 || arch == libseccomp.ArchARM64 {
		if e := tableIndex()[name]; e != nil {
			if arch == libseccomp.ArchAMD64 {
				return libseccomp.ScmpSyscall(e.amd64), nil
			}
			return libseccomp.ScmpSyscall(e.arm64), nil
		}
	}
	return libseccomp.GetSyscallFromNameByArch(name, arch)
}

// SyscallTableEntry is one row of the generated table, as
// SyscallTableEntries computes it.
type SyscallTableEntry struct {
	Name         string
	AMD64, ARM64 int32
}

// SyscallTableEntries asks the host's libseccomp for the table's rows: the
// names it knows on amd64 or arm64 (by number) and those the built-in
// profile names, each with its number on both, sorted by name. It is what
// `go generate` writes and what TestSyscallTable compares with.
func SyscallTableEntries() (maj, minor, micro uint, out []SyscallTableEntry) {
	maj, minor, micro = libseccomp.GetLibraryVersion()
	names := map[string]bool{}
	for _, a := range []string{"amd64", "arm64"} {
		for _, n := range knownSyscalls(Arches[a].Arch) {
			names[n] = true
		}
	}
	for _, r := range DefaultProfile().Syscalls {
		for _, n := range r.Names {
			names[n] = true
		}
	}
	for _, n := range newerThanLibseccomp {
		names[n] = true
	}
	for n := range names {
		a, errA := libseccomp.GetSyscallFromNameByArch(n, libseccomp.ArchAMD64)
		b, errB := libseccomp.GetSyscallFromNameByArch(n, libseccomp.ArchARM64)
		if errA != nil || errB != nil {
			continue // unknown to this libseccomp: looked up (and refused) at run time
		}
		out = append(out, SyscallTableEntry{Name: n, AMD64: int32(a), ARM64: int32(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return maj, minor, micro, out
}
