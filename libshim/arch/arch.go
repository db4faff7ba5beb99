// Package arch holds everything palisade needs to know that differs between
// the architectures it runs on, as one row of data per architecture: the OCI
// and image names, the compat ABIs a 64-bit kernel also runs (which a seccomp
// filter must cover), the ELF machines and the dynamic loaders an exec
// allow-list may need, Landlock, and how a release is cross-built and run.
// Code asks the table; it does not spell an architecture out itself.
package arch

import (
	"debug/elf"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Info is one supported architecture.
type Info struct {
	// GoArch is the GOARCH, also the OCI image platform architecture.
	GoArch string
	// Uname is the kernel's machine name (uname -m).
	Uname string
	// OCI is the runtime-spec seccomp architecture of the native ABI.
	OCI specs.Arch
	// Compat are the other ABIs this architecture's kernel runs (32-bit
	// programs): a seccomp filter that does not name them lets libseccomp's
	// bad-arch action decide, so profiles must cover them.
	Compat []specs.Arch
	// Machine is the ELF machine of native programs; CompatMachines those
	// of the compat ABIs.
	Machine        elf.Machine
	CompatMachines []elf.Machine
	// Loaders are the ELF interpreters (PT_INTERP) of dynamically linked
	// programs in common images: glibc's and musl's, native first, then
	// compat. An exec allow-list needs execute on the loader of each entry.
	Loaders []string
	// Landlock says whether mainline Linux has Landlock on this architecture
	// (since 5.13; whether a node's kernel enables it is probed at run time).
	Landlock bool
	// Triplet is the GNU target triplet: the cross compiler prefix and the
	// Debian multiarch directory.
	Triplet string
	// QEMU is the qemu-user emulator that runs this architecture's programs
	// on another host.
	QEMU string
}

// Supported are the architectures palisade is built, tested and released
// for, in release order.
var Supported = []Info{AMD64, ARM64}

// AMD64 is x86-64, with the i386 and x32 compat ABIs.
var AMD64 = Info{
	GoArch:         "amd64",
	Uname:          "x86_64",
	OCI:            specs.ArchX86_64,
	Compat:         []specs.Arch{specs.ArchX86, specs.ArchX32},
	Machine:        elf.EM_X86_64,
	CompatMachines: []elf.Machine{elf.EM_386},
	Loaders: []string{
		"/lib64/ld-linux-x86-64.so.2", "/lib/ld-musl-x86_64.so.1",
		"/libx32/ld-linux-x32.so.2", "/lib/ld-linux.so.2", "/lib/ld-musl-i386.so.1",
	},
	Landlock: true,
	Triplet:  "x86_64-linux-gnu",
	QEMU:     "qemu-x86_64",
}

// ARM64 is AArch64, with the 32-bit ARM (AArch32) compat ABI.
var ARM64 = Info{
	GoArch:         "arm64",
	Uname:          "aarch64",
	OCI:            specs.ArchAARCH64,
	Compat:         []specs.Arch{specs.ArchARM},
	Machine:        elf.EM_AARCH64,
	CompatMachines: []elf.Machine{elf.EM_ARM},
	Loaders: []string{
		"/lib/ld-linux-aarch64.so.1", "/lib/ld-musl-aarch64.so.1",
		"/lib/ld-linux-armhf.so.3", "/lib/ld-linux.so.3", "/lib/ld-musl-armhf.so.1",
	},
	Landlock: true,
	Triplet:  "aarch64-linux-gnu",
	QEMU:     "qemu-aarch64",
}

// Lookup returns the row of a GOARCH, or an ErrNotImplemented error naming
// the supported ones.
func Lookup(goarch string) (Info, error) {
	for _, a := range Supported {
		if a.GoArch == goarch {
			return a, nil
		}
	}
	return Info{}, fmt.Errorf("architecture %q is not supported (%s): %w", goarch, strings.Join(Names(), ", "), errdefs.ErrNotImplemented)
}

// Native is the row of the architecture this program runs on; the zero Info
// (no OCI arch, no machines) on any other, so every check against it fails.
func Native() Info {
	a, _ := Lookup(runtime.GOARCH)
	return a
}

// Names are the supported GOARCH names.
func Names() []string {
	var out []string
	for _, a := range Supported {
		out = append(out, a.GoArch)
	}
	return out
}

// Arches are the native and compat seccomp architectures, native first.
func (a Info) Arches() []specs.Arch {
	return append([]specs.Arch{a.OCI}, a.Compat...)
}

// Runs says whether a kernel of this architecture runs ELF programs of
// machine m natively or through a compat ABI.
func (a Info) Runs(m elf.Machine) bool {
	return m == a.Machine || slices.Contains(a.CompatMachines, m)
}

// KnownLoader says whether p is one of this architecture's dynamic loaders.
func (a Info) KnownLoader(p string) bool {
	return slices.Contains(a.Loaders, p)
}
