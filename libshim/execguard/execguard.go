// Package execguard implements exec allow-lists: resolving what a process
// would execute inside a container's root filesystem (PATH lookup and
// symlinks followed within the root, never on the host), checking it against
// an allow-list, and computing the set of paths Landlock must allow for it
// (the palisade-init helper enforces it from inside the container, in C, so
// that no descendant of the process can execute anything else). Landlock
// does not cover memfds: palisade-init memfd-noexec, also in C, sets
// vm.memfd_noexec in the container's PID namespace.
//
// The package is pure Go.
package execguard

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// HelperPath is where palisade-init is bind-mounted (read-only) in every
// container with an enforced allow-list: /dev is runc's tmpfs, so no file is
// created in the image.
const HelperPath = "/dev/.palisade-init"

// DefaultPath is the PATH used when the process environment has none (the
// same default as runc and Docker).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Resolution is where a command resolves inside a root.
type Resolution struct {
	Command string // as given (args[0])
	Path    string // absolute path inside the container, symlinks followed
	Via     []string
}

// Resolve finds the executable a process would run: args0 looked up in the
// PATH of env (unless it has a slash), relative to cwd, every symlink
// followed inside root with securejoin. The result is the path inside the
// container of a regular file with an execute bit.
func Resolve(root, args0 string, env []string, cwd string) (*Resolution, error) {
	if args0 == "" {
		return nil, errors.New("the process has no command (args[0] is empty)")
	}
	res := &Resolution{Command: args0}
	var candidates []string
	switch {
	case strings.Contains(args0, "/"):
		p := args0
		if !path.IsAbs(p) {
			p = path.Join("/", cwd, p)
		}
		candidates = []string{p}
	default:
		pathEnv := DefaultPath
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, "PATH="); ok {
				pathEnv = v
			}
		}
		for _, dir := range filepath.SplitList(pathEnv) {
			if dir == "" {
				dir = "."
			}
			if !path.IsAbs(dir) {
				dir = path.Join("/", cwd, dir)
			}
			candidates = append(candidates, path.Join(dir, args0))
		}
	}
	var lastErr error
	for _, c := range candidates {
		hostPath, err := securejoin.SecureJoin(root, c)
		if err != nil {
			lastErr = err
			continue
		}
		st, err := os.Stat(hostPath) // securejoin resolved every symlink inside root
		if err != nil {
			// name the path inside the container, never the host's mount point
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = fmt.Errorf("%s: %w", c, pe.Err)
			}
			lastErr = err
			continue
		}
		if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			lastErr = fmt.Errorf("%s is not an executable file", c)
			continue
		}
		inside, err := filepath.Rel(root, hostPath)
		if err != nil || strings.HasPrefix(inside, "..") {
			return nil, fmt.Errorf("%s resolves outside the container root", c)
		}
		res.Path = "/" + filepath.ToSlash(inside)
		if res.Path != c {
			res.Via = append(res.Via, c)
		}
		return res, nil
	}
	if lastErr == nil || errors.Is(lastErr, fs.ErrNotExist) {
		return nil, fmt.Errorf("%q not found in the container (PATH searched: %s)", args0, strings.Join(candidates, ", "))
	}
	return nil, fmt.Errorf("%q: %w", args0, lastErr)
}

// Allowed reports whether path (inside the container) is on the list: equal
// to a file entry, or below a directory entry (one ending in "/").
func Allowed(p string, allow []string) bool {
	for _, a := range allow {
		if strings.HasSuffix(a, "/") {
			if strings.HasPrefix(p, a) {
				return true
			}
		} else if p == a {
			return true
		}
	}
	return false
}

// Narrows checks that every entry of a requested list is covered by the
// profile's list: a file by an equal file or a directory above it, a
// directory by a directory at or above it.
func Narrows(requested, profile []string) error {
	for _, r := range requested {
		ok := slices.ContainsFunc(profile, func(a string) bool {
			return a == r || (strings.HasSuffix(a, "/") && strings.HasPrefix(r, a))
		})
		if !ok {
			return fmt.Errorf("%s is not within the profile's allow-list (%s)", r, strings.Join(profile, ", "))
		}
	}
	return nil
}
