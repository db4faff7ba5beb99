package seccomp

import (
	"sync"
)

// Syscall numbers without a libseccomp lookup per name.
//
// Validating a profile resolves each of its names for amd64 and arm64, and
// libseccomp finds a name by a linear scan of its table: the built-in
// profile's ≈ 400 names cost about 0.3 ms at a shim's first Create, on the
// container's start path. syscallTable (syscalls_table.go, written by
// `go generate` from libseccomp itself) holds libseccomp's answers for one
// version of it; when the host's libseccomp is that version, names (and
// numbers) are looked up there, and otherwise — or for a name the table
// does not hold — libseccomp answers, as before. TestSyscallTable checks
// every entry, and that no name libseccomp knows is missing, against the
// host's libseccomp. The shim is built without libseccomp (HaveLibseccomp):
// the table is then all it knows, for the five architectures of its
// filters (amd64, arm64 and their compat ABIs x86, x32 and arm).

//go:generate sh -c "go run ./internal/gensyscalls > syscalls_table.go.new && mv syscalls_table.go.new syscalls_table.go"

// syscallEntry is libseccomp's number for a name on each architecture
// palisade knows (negative: a name of another architecture, which
// libseccomp knows but the kernel does not have there).
type syscallEntry struct {
	name                        string
	amd64, arm64, x86, x32, arm int32
}

// on is the entry's number on a.
func (e *syscallEntry) on(a ScmpArch) (int32, bool) {
	switch a {
	case ArchAMD64:
		return e.amd64, true
	case ArchARM64:
		return e.arm64, true
	case ArchX86:
		return e.x86, true
	case ArchX32:
		return e.x32, true
	case ArchARM:
		return e.arm, true
	}
	return 0, false
}

// tableArches are the table's columns, in order.
var tableArches = []ScmpArch{ArchAMD64, ArchARM64, ArchX86, ArchX32, ArchARM}

// tableUsable tells whether the host's libseccomp is the table's version
// (always, in a build without libseccomp: the table is all it knows).
var tableUsable = sync.OnceValue(func() bool {
	maj, minor, micro := libraryVersion()
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

// syscallNumberName is one row of syscallNameTable.
type syscallNumberName struct {
	nr   int32
	name string
}

// tableNames finds a number's name on each architecture, built on first
// use (nil when the table is not usable here).
var tableNames = sync.OnceValue(func() map[ScmpArch]map[int32]string {
	if !tableUsable() {
		return nil
	}
	m := map[ScmpArch]map[int32]string{}
	for i, a := range tableArches {
		m[a] = make(map[int32]string, len(syscallNameTable[i]))
		for _, e := range syscallNameTable[i] {
			m[a][e.nr] = e.name
		}
	}
	return m
})

// syscallNumber is libseccomp's GetSyscallFromNameByArch, from the table
// when it holds the name.
func syscallNumber(name string, arch ScmpArch) (int32, error) {
	if e := tableIndex()[name]; e != nil {
		if nr, ok := e.on(arch); ok {
			return nr, nil
		}
	}
	return libSyscallNumber(name, arch)
}

// syscallName is libseccomp's GetNameByArch, from the table when it holds
// the number.
func syscallName(nr int32, arch ScmpArch) (string, error) {
	if n, ok := tableNames()[arch][nr]; ok {
		return n, nil
	}
	return libSyscallName(nr, arch)
}
