package safeopen

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Private state: small files a root process keeps for itself under /run
// (caches it can always rebuild). Only their owner may reach them, nothing
// on the way to them is a symlink, and anything that is not exactly as
// palisade would have made it is refused rather than used.

// NotPrivateError is returned for a directory or file that palisade's user
// does not own alone: another owner, or group or other permissions where
// none are allowed.
type NotPrivateError struct {
	Name string
	UID  uint32
	Mode uint32
}

func (e *NotPrivateError) Error() string {
	return fmt.Sprintf("%s is not private to uid %d: owner %d, mode %04o", e.Name, os.Geteuid(), e.UID, e.Mode&0o7777)
}

// PrivateDir opens the directory path (absolute) for this process's user
// alone and returns its descriptor. A missing directory is created with mode
// 0700 (and its missing parents with 0700, as palisade creates its /run
// directories). Refused: a symlink anywhere on the path; a parent that is not
// owned by this user or that group or others may write (they could swap the
// directory); a directory not owned by this user or with any group or other
// permission.
func PrivateDir(path string) (int, error) {
	if !filepath.IsAbs(path) {
		return -1, fmt.Errorf("%s is not an absolute path", path)
	}
	path = filepath.Clean(path)
	parent, base := filepath.Dir(path), filepath.Base(path)
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	pfd, err := unix.Openat2(unix.AT_FDCWD, parent, how)
	if errors.Is(err, unix.ENOENT) {
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return -1, err
		}
		pfd, err = unix.Openat2(unix.AT_FDCWD, parent, how)
	}
	if err != nil {
		return -1, fmt.Errorf("%s: %w", parent, err)
	}
	defer func() { _ = unix.Close(pfd) }()
	if err := checkOwned(pfd, parent, 0o022); err != nil {
		return -1, err
	}
	dirHow := &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: Beneath}
	fd, err := unix.Openat2(pfd, base, dirHow)
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("%s: %w", path, err)
		}
		fd, err = unix.Openat2(pfd, base, dirHow)
	}
	if err != nil {
		return -1, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkOwned(fd, path, 0o077); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// checkOwned checks that fd is a directory owned by this process's user
// with none of the forbidden permission bits.
func checkOwned(fd int, name string, forbidden uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is a %s, not a directory", name, TypeName(st.Mode))
	}
	if st.Uid != uint32(os.Geteuid()) || st.Mode&forbidden != 0 {
		return &NotPrivateError{Name: name, UID: st.Uid, Mode: st.Mode}
	}
	return nil
}

// ReadPrivate reads the regular file name directly below the directory
// dirfd (from PrivateDir): it must be owned by this process's user, have no
// group or other permission, and hold at most limit bytes.
func ReadPrivate(dirfd int, name string, limit int64) ([]byte, error) {
	f, st, err := Regular(dirfd, name, Beneath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if st.Uid != uint32(os.Geteuid()) || st.Mode&0o077 != 0 {
		return nil, &NotPrivateError{Name: name, UID: st.Uid, Mode: st.Mode}
	}
	if st.Size > limit {
		return nil, fmt.Errorf("%s holds %d bytes, more than %d", name, st.Size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s holds more than %d bytes", name, limit)
	}
	return data, nil
}

// WritePrivate replaces the file name directly below the directory dirfd
// (from PrivateDir) with data, atomically: a new file of mode 0600 under a
// name of its own in the same directory, renamed over name. Concurrent
// writers never see each other's partial files; the last rename wins.
func WritePrivate(dirfd int, name string, data []byte) (retErr error) {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	tmp := "." + name + "." + strconv.Itoa(os.Getpid()) + "." + hex.EncodeToString(nonce[:]) + ".tmp"
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w", tmp, err)
	}
	defer func() {
		if retErr != nil {
			_ = unix.Unlinkat(dirfd, tmp, 0)
		}
	}()
	f := os.NewFile(uintptr(fd), tmp)
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
