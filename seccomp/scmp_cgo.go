//go:build cgo

package seccomp

import (
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// ScmpArch is libseccomp's architecture token.
type ScmpArch = libseccomp.ScmpArch

// libseccomp's tokens for the architectures palisade knows.
const (
	ArchAMD64 = libseccomp.ArchAMD64
	ArchX86   = libseccomp.ArchX86
	ArchX32   = libseccomp.ArchX32
	ArchARM64 = libseccomp.ArchARM64
	ArchARM   = libseccomp.ArchARM
)

// HaveLibseccomp says whether this build links libseccomp (cgo): it then
// compiles filters itself and answers for any name or version; without it
// (the shim's build), names come from the generated table and filters are
// compiled by palisade-init (NewProgram fails with ErrNoLibseccomp).
const HaveLibseccomp = true

func archFromString(s string) (ScmpArch, error) { return libseccomp.GetArchFromString(s) }

// libraryVersion is the version of the libseccomp that answers.
func libraryVersion() (maj, minor, micro uint) { return libseccomp.GetLibraryVersion() }

func libSyscallNumber(name string, a ScmpArch) (int32, error) {
	nr, err := libseccomp.GetSyscallFromNameByArch(name, a)
	return int32(nr), err
}

func libSyscallName(nr int32, a ScmpArch) (string, error) {
	return libseccomp.ScmpSyscall(nr).GetNameByArch(a)
}
