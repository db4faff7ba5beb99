package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/safeopen"
)

// dirsFile lists more directories admin configs may be read from, one
// absolute path a line ('#' starts a comment). Unlike $PALISADE_CONFIG_DIRS,
// which containerd passes only to the shims it starts (the shim manager's
// `env`), a file is seen by every shim process: containerd runs the feature
// probe `containerd-shim-palisade-v2 -info` with its own environment, and
// with the directories only in the shim `env` the probe refused the very
// config Create accepts. It is a variable only so that the end-to-end
// harness can build a shim that reads it from its private environment
// (-ldflags -X); a client cannot change it.
var dirsFile = DefaultDir + "/config-dirs"

// DirsFile is the path of the file of extra trusted config directories.
func DirsFile() string { return dirsFile }

// maxDirsFile bounds the file: a list of directories is short.
const maxDirsFile = 64 << 10

// readDirsFile returns the directories dirsFile lists. A missing file lists
// none; a file that is not a regular file owned by root and writable only
// by it is an error (and lists none: fail closed).
func readDirsFile() ([]string, error) {
	dfd, err := unix.Open(filepath.Dir(dirsFile), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dirsFile, err)
	}
	defer func() { _ = unix.Close(dfd) }()
	f, st, err := safeopen.Regular(dfd, filepath.Base(dirsFile), safeopen.Beneath)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dirsFile, err)
	}
	defer func() { _ = f.Close() }()
	if st.Uid != 0 || st.Mode&0o022 != 0 {
		return nil, fmt.Errorf("%s is ignored: not owned by root and writable only by it", dirsFile)
	}
	var dirs []string
	sc := bufio.NewScanner(io.LimitReader(f, maxDirsFile))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if !filepath.IsAbs(line) {
			return nil, fmt.Errorf("%s:%d: %q is not an absolute directory; the file is ignored", dirsFile, n, line)
		}
		dirs = append(dirs, filepath.Clean(line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", dirsFile, err)
	}
	return dirs, nil
}
