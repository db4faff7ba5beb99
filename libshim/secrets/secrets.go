// Package secrets delivers secrets to containers as files on a per-container
// tmpfs, never through environment variables, logs, audit records or disk.
//
// A Source reads secret values (DirSource: one file per secret in a
// root-owned store, per scope). A Plan says what a container gets: which
// secrets, where, owned by whom, and which environment variables were moved
// out. Mount creates the tmpfs on the host (size-limited, noswap where the
// kernel has it, 0500 for the container's user), writes each secret 0400,
// and the pipeline bind-mounts it read-only, nosuid, nodev, noexec into the
// container. Unmount and Sweep remove it again, also after a crash.
//
// Values only ever live in memory, in the tmpfs, and in the container. No
// function of this package formats a value into an error or a log line.
package secrets

import (
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/names"
	"palisade.dev/palisade/libshim/safeopen"
)

// EnvReference is the prefix of an environment value that names a secret:
// DB_PASSWORD=palisade-secret:db-password.
const EnvReference = "palisade-secret:"

// nameFirst and nameRest spell ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$.
var nameFirst, nameRest = names.NewSet("A-Za-z0-9"), names.NewSet("A-Za-z0-9._-")

// ValidName checks a secret name: a single path component of safe
// characters, never "." or "..", so it can neither traverse the store nor
// the container.
func ValidName(name string) error {
	if !names.Valid(name, nameFirst, nameRest, 128) || strings.Contains(name, "..") {
		return fmt.Errorf("secret name %q is not allowed (1-128 letters, digits, '.', '_', '-'; no '/', no '..')", name)
	}
	return nil
}

// Source reads secret values.
type Source interface {
	// Read returns the value of secret name in scope, at most max bytes.
	Read(scope, name string, max int64) ([]byte, error)
}

// DirSource is a directory on the host, root-owned and 0700, holding one
// subdirectory per scope and one file per secret: ROOT/SCOPE/NAME, where
// SCOPE is "kubernetes/NAMESPACE" or "containerd/NAMESPACE" (see Scope).
type DirSource struct {
	Root string
}

// Read opens ROOT/SCOPE/NAME with openat2: no symlink is followed anywhere
// and nothing outside the scope's directory can be reached.
func (d DirSource) Read(scope, name string, max int64) ([]byte, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	for _, part := range strings.Split(scope, "/") {
		if err := ValidName(part); err != nil {
			return nil, fmt.Errorf("scope %q: %w", scope, err)
		}
	}
	how := &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	root, err := unix.Openat2(unix.AT_FDCWD, d.Root, how)
	if err != nil {
		return nil, fmt.Errorf("open the secret store %s: %w", d.Root, err)
	}
	defer unix.Close(root)
	beneath := unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV
	dir, err := unix.Openat2(root, scope, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: uint64(beneath)})
	if err != nil {
		return nil, fmt.Errorf("secret %q: no scope %q in the store: %w", name, scope, notFound(err))
	}
	defer unix.Close(dir)
	f, st, err := safeopen.Regular(dir, name, safeopen.Beneath)
	if err != nil {
		var nr *safeopen.NotRegularError
		switch {
		case errors.As(err, &nr):
			return nil, fmt.Errorf("secret %q in scope %q is a %s; the store must hold plain files: %w", name, scope, nr.Type, errdefs.ErrInvalidArgument)
		case errors.Is(err, unix.ELOOP):
			return nil, fmt.Errorf("secret %q in scope %q is a symlink; the store must hold plain files: %w", name, scope, errdefs.ErrInvalidArgument)
		}
		return nil, fmt.Errorf("secret %q not found in scope %q: %w", name, scope, notFound(err))
	}
	defer f.Close()
	if st.Size > max {
		return nil, fmt.Errorf("secret %q in scope %q is larger than %d bytes: %w", name, scope, max, errdefs.ErrInvalidArgument)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read secret %q: %w", name, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("secret %q in scope %q is larger than %d bytes: %w", name, scope, max, errdefs.ErrInvalidArgument)
	}
	return data, nil
}

func notFound(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return errdefs.ErrNotFound
	}
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("%w: the path leaves the store or is a symlink", errdefs.ErrInvalidArgument)
	}
	return err
}

// Item is one secret a container gets.
type Item struct {
	Name   string // file name in the tmpfs
	Target string // path inside the container
	// Value is set for values moved out of the environment; otherwise the
	// secret is read from the Source at Mount.
	Value []byte
}

// Plan is what Mount delivers for one container.
type Plan struct {
	Scope    string
	Dir      string // the tmpfs mount point on the host
	Bundle   string // the container's bundle: the mount lives as long as it does
	UID, GID uint32 // the container process's final user
	Items    []Item
	MaxSize  int64 // per secret
	MaxTotal int64

	// MountLabel is the container's SELinux mount label: the tmpfs is
	// mounted with it as context= ("" where SELinux is not applied).
	MountLabel string
}

// Names lists the secret names, for audit records (never values).
func (p *Plan) Names() []string {
	out := make([]string, len(p.Items))
	for i, it := range p.Items {
		out[i] = it.Name
	}
	return out
}

// ValidTarget checks a custom path for a secret inside the container.
func ValidTarget(t string) error {
	if !path.IsAbs(t) || path.Clean(t) != t || t == "/" {
		return fmt.Errorf("secret target %q is not a clean absolute path", t)
	}
	for _, bad := range []string{"/proc", "/sys", "/dev"} {
		if t == bad || strings.HasPrefix(t, bad+"/") {
			return fmt.Errorf("secret target %q is under %s", t, bad)
		}
	}
	return nil
}

// MatchesPattern reports whether an environment variable name matches one of
// the patterns (shell globs, case-insensitive: "*PASSWORD*").
func MatchesPattern(name string, patterns []string) bool {
	upper := strings.ToUpper(name)
	for _, p := range patterns {
		if ok, _ := filepath.Match(strings.ToUpper(p), upper); ok {
			return true
		}
	}
	return false
}
