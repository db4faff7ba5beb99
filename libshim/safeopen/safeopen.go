// Package safeopen opens files palisade reads from directories it trusts
// only so far (the secret store, the admin config directories): no symlink
// or magic link is followed, nothing outside the directory is reached, and
// only a regular file is ever opened for reading. The file is first reached
// with O_PATH, which never blocks and never runs a driver's open: a FIFO
// (which would hang the reader until a writer comes) or a device node in the
// directory is refused before any read. It also keeps palisade's private
// state under /run (private.go): directories and files only their owner
// may reach, reached without following symlinks, replaced atomically.
package safeopen

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Beneath confines a lookup below its directory, with no symlinks, magic
// links or mount crossings.
const Beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// NotRegularError is returned for an entry that exists but is not a regular
// file (a FIFO, a socket, a device, a directory).
type NotRegularError struct {
	Name string
	Type string
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is a %s, not a regular file", e.Name, e.Type)
}

// Regular opens name below the directory dirfd for reading, resolving it
// with resolve (Beneath, or stricter), and returns it with its status. The
// entry must be a regular file; the descriptor that was checked is the one
// that is read (it is reopened through /proc/self/fd, never looked up again).
func Regular(dirfd int, name string, resolve uint64) (*os.File, *unix.Stat_t, error) {
	pfd, err := unix.Openat2(dirfd, name, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: resolve})
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = unix.Close(pfd) }()
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &st, &NotRegularError{Name: name, Type: TypeName(st.Mode)}
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fd), name), &st, nil
}

// TypeName names a file type from a stat mode.
func TypeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFLNK:
		return "symlink"
	}
	return "file of unknown type"
}
