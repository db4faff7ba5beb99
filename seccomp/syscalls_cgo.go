//go:build cgo

package seccomp

import (
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SyscallTableEntry is one row of the generated table, as
// SyscallTableEntries computes it.
type SyscallTableEntry struct {
	Name                        string
	AMD64, ARM64, X86, X32, ARM int32
}

// SyscallTableEntries asks the host's libseccomp for the table's rows: the
// names it knows on any of the table's architectures (by number) and those
// the built-in profile names, each with its number on every one, sorted by
// name. It is what `go generate` writes and what TestSyscallTable compares
// with.
func SyscallTableEntries() (maj, minor, micro uint, out []SyscallTableEntry) {
	maj, minor, micro = libraryVersion()
	names := map[string]bool{}
	for oci := range syscallRanges {
		for _, n := range libKnownSyscalls(oci) {
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
		var nrs [5]int32
		known := true
		for i, a := range tableArches {
			nr, err := libSyscallNumber(n, a)
			if err != nil {
				known = false // unknown to this libseccomp: looked up (and refused) at run time
				break
			}
			nrs[i] = nr
		}
		if known {
			out = append(out, SyscallTableEntry{Name: n, AMD64: nrs[0], ARM64: nrs[1], X86: nrs[2], X32: nrs[3], ARM: nrs[4]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return maj, minor, micro, out
}

// libKnownSyscalls lists the names the host's libseccomp itself knows on
// an architecture (the table's source).
func libKnownSyscalls(a specs.Arch) []string { return namesIn(a, libSyscallName) }

// SyscallNameEntry is a number and libseccomp's name for it.
type SyscallNameEntry struct {
	Number int32
	Name   string
}

// SyscallNameEntries asks the host's libseccomp for the name of every
// number of each table architecture's ranges (in tableArches order): by
// number, libseccomp does not always answer the inverse of by name (x86's
// direct socket calls resolve by name to socketcall's pseudo numbers).
func SyscallNameEntries() (out [5][]SyscallNameEntry) {
	for i, a := range tableArches {
		for oci, name := range scmpArchNames {
			if t, err := archFromString(name); err != nil || t != a {
				continue
			}
			for _, r := range syscallRanges[oci] {
				for nr := r[0]; nr < r[1]; nr++ {
					if n, err := libSyscallName(int32(nr), a); err == nil && n != "" {
						out[i] = append(out[i], SyscallNameEntry{Number: int32(nr), Name: n})
					}
				}
			}
		}
	}
	return out
}
