package execguard

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/arch"
)

// Ruleset returns the paths to allow execute on for an allow-list, as seen
// from inside the container: every entry, plus the ELF interpreter
// (PT_INTERP, symlinks followed) of every file entry. Directory entries
// allow their whole tree; the interpreters of programs in them must be
// listed (or be inside them).
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

// RestrictAndExec confines the calling thread with Landlock to executing
// only the given paths (files or directory trees), then execs args on that
// same thread, so that the workload and every process it starts inherit the
// restriction. It handles only the execute right, so reading and writing
// are not affected. It never degrades: if the kernel cannot enforce it, it
// fails. On success it does not return.
//
// A Landlock domain, like no_new_privs, belongs to the thread that asked
// for it, and execve keeps only the calling thread: restricting this one
// thread and exec'ing from it is enough, and needs none of the
// all-threads machinery (psx) a long-running Go program would.
func RestrictAndExec(paths, args, env []string) error {
	res, err := Resolve("/", args[0], env, mustGetwd())
	if err != nil {
		return err
	}
	runtime.LockOSThread() // never unlocked: on failure the process exits
	if err := restrictThread(paths); err != nil {
		return fmt.Errorf("cannot apply the exec allow-list with Landlock: %w", err)
	}
	return execve(res.Path, args, env)
}

// rulesetAttr is struct landlock_ruleset_attr as of Landlock ABI 1 (the
// kernel accepts the shorter struct from newer ABIs' point of view).
type rulesetAttr struct{ handledAccessFS uint64 }

// pathBeneathAttr is struct landlock_path_beneath_attr (packed, 12 bytes:
// the kernel reads the first 12 bytes of this 16-byte layout).
type pathBeneathAttr struct {
	allowedAccess uint64
	parentFd      int32
}

func restrictThread(paths []string) error {
	attr := rulesetAttr{handledAccessFS: unix.LANDLOCK_ACCESS_FS_EXECUTE}
	rfd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if errno != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	defer unix.Close(int(rfd))
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", p, err)
		}
		rule := pathBeneathAttr{allowedAccess: unix.LANDLOCK_ACCESS_FS_EXECUTE, parentFd: int32(fd)}
		_, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, rfd, unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&rule)), 0, 0, 0)
		unix.Close(fd)
		if errno != 0 {
			return fmt.Errorf("landlock_add_rule %s: %w", p, errno)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, rfd, 0, 0); errno != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return nil
}

func mustGetwd() string {
	wd, err := os.Getwd()
	if err != nil {
		return "/"
	}
	return wd
}
