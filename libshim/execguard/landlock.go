package execguard

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"palisade.dev/palisade/libshim/arch"
)

// Ruleset returns the paths to allow execute on for an allow-list, as seen
// from inside the container: every entry, plus the ELF interpreter
// (PT_INTERP, symlinks followed) of every file entry. Directory entries
// allow their whole tree; the interpreters of programs in them must be
// listed (or be inside them).
//
// palisade-init computes the same set in C (cmd/palisade-init/init.c, which
// also applies it with Landlock); its tests hold the two to the same answers.
func Ruleset(allow []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, a := range allow {
		if strings.HasSuffix(a, "/") {
			// A directory entry must be that directory, not a link to
			// another (an image with /opt/app -> / would otherwise allow
			// everything).
			real, err := filepath.EvalSymlinks(a)
			if err != nil {
				return nil, fmt.Errorf("allow-list entry %s: %w", a, err)
			}
			if real+"/" != a {
				return nil, fmt.Errorf("allow-list entry %s is a symlink (to %s) in this image; list the real directory", a, real)
			}
			add(a)
			continue
		}
		real, err := filepath.EvalSymlinks(a)
		if err != nil {
			return nil, fmt.Errorf("allow-list entry %s: %w", a, err)
		}
		add(real)
		interp, err := interpreter(real)
		if err != nil {
			return nil, fmt.Errorf("allow-list entry %s: %w", a, err)
		}
		if interp != "" {
			// PT_INTERP is image data: follow it only to a dynamic loader of
			// this architecture, or to a file the list itself allows.
			if native := arch.Native(); !native.KnownLoader(interp) && !slices.Contains(allow, interp) {
				return nil, fmt.Errorf("allow-list entry %s names %s as its ELF interpreter, which is not a %s dynamic loader (%s); add %s to the allow-list if the image really needs it", a, interp, native.GoArch, strings.Join(native.Loaders, ", "), interp)
			}
			realInterp, err := filepath.EvalSymlinks(interp)
			if err != nil {
				return nil, fmt.Errorf("allow-list entry %s needs its ELF interpreter %s: %w", a, interp, err)
			}
			add(realInterp)
		}
	}
	return out, nil
}

// interpreter returns the PT_INTERP of an ELF file, "" for a static program
// or a file that is not ELF (a script: its interpreter must be listed).
func interpreter(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "", nil // not ELF, or shorter than an ELF header (a short script)
		}
		return "", err
	}
	defer func() { _ = f.Close() }()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		buf := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(buf, 0); err != nil {
			return "", fmt.Errorf("read PT_INTERP: %w", err)
		}
		return strings.TrimRight(string(buf), "\x00"), nil
	}
	return "", nil
}
