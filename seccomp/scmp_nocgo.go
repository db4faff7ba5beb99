//go:build !cgo

package seccomp

import (
	"errors"
	"fmt"
)

// ScmpArch stands for libseccomp's architecture token in a build without
// libseccomp.
type ScmpArch uint

// The architectures palisade knows (the values are this build's own).
const (
	ArchAMD64 ScmpArch = iota + 1
	ArchX86
	ArchX32
	ArchARM64
	ArchARM
)

// HaveLibseccomp: see scmp_cgo.go.
const HaveLibseccomp = false

// scmpArchTokens are libseccomp's architecture names: the five palisade
// filters for, and the others libseccomp knows (a profile may name them in
// a condition).
var scmpArchTokens = map[string]ScmpArch{
	"amd64": ArchAMD64, "x86": ArchX86, "x32": ArchX32, "arm64": ArchARM64, "arm": ArchARM,
	"mips": 100, "mipsel": 101, "mips64": 102, "mipsel64": 103, "mips64n32": 104, "mipsel64n32": 105,
	"ppc": 106, "ppc64": 107, "ppc64le": 108, "s390": 109, "s390x": 110, "parisc": 111, "parisc64": 112,
	"riscv64": 113, "loong64": 114, "m68k": 115, "sh": 116, "sheb": 117,
}

func archFromString(s string) (ScmpArch, error) {
	if a, ok := scmpArchTokens[s]; ok {
		return a, nil
	}
	return 0, fmt.Errorf("seccomp: unknown architecture %q", s)
}

// libraryVersion is the version of the libseccomp whose answers the table
// holds: the only one this build knows.
func libraryVersion() (maj, minor, micro uint) {
	return syscallTableVersion[0], syscallTableVersion[1], syscallTableVersion[2]
}

var errNotInTable = errors.New("seccomp: not in the syscall table (this build has no libseccomp)")

func libSyscallNumber(string, ScmpArch) (int32, error) { return 0, errNotInTable }

func libSyscallName(int32, ScmpArch) (string, error) { return "", errNotInTable }
