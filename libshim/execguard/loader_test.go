package execguard

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/arch"
)

// writeELF writes a minimal 64-bit little-endian ELF executable of machine m
// whose only program header is a PT_INTERP naming interp.
func writeELF(t *testing.T, m elf.Machine, interp string) string {
	t.Helper()
	const ehsize, phsize = 64, 56
	data := append([]byte(interp), 0)
	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(m), Version: uint32(elf.EV_CURRENT),
		Phoff: ehsize, Ehsize: ehsize, Phentsize: phsize, Phnum: 1,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	ph := elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: ehsize + phsize, Filesz: uint64(len(data)), Memsz: uint64(len(data)), Align: 1}
	for _, v := range []any{hdr, ph, data} {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(p, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// An interpreter from the architecture table is followed; any other file an
// image names in PT_INTERP is refused unless the list allows it itself.
func TestRulesetFollowsOnlyKnownLoaders(t *testing.T) {
	native := arch.Native()
	loader := native.Loaders[0]
	realLoader, err := filepath.EvalSymlinks(loader)
	if err != nil {
		t.Skipf("no %s C library on this host (%v): install libc6 for %s", native.GoArch, err, native.GoArch)
	}
	prog := writeELF(t, native.Machine, loader)
	if interp, err := interpreter(prog); err != nil || interp != loader {
		t.Fatalf("the test ELF reads as interpreter %q, %v", interp, err)
	}
	paths, err := Ruleset([]string{prog})
	if err != nil || !slices.Contains(paths, realLoader) {
		t.Fatalf("known loader %s: %v, %v", loader, paths, err)
	}

	other := filepath.Join(t.TempDir(), "sh")
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sneaky := writeELF(t, native.Machine, other)
	if _, err := Ruleset([]string{sneaky}); err == nil || !strings.Contains(err.Error(), "not a "+native.GoArch+" dynamic loader") {
		t.Fatalf("an unknown PT_INTERP was followed: %v", err)
	}
	if paths, err := Ruleset([]string{sneaky, other}); err != nil || !slices.Contains(paths, other) {
		t.Fatalf("an interpreter the list allows itself was refused: %v, %v", paths, err)
	}

	for _, a := range arch.Supported {
		if a.GoArch != native.GoArch {
			foreign := writeELF(t, a.Machine, a.Loaders[0])
			if _, err := Ruleset([]string{foreign}); err == nil {
				t.Errorf("the %s loader %s was followed on %s", a.GoArch, a.Loaders[0], native.GoArch)
			}
		}
	}
}
