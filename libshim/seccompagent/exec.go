package seccompagent

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/execguard"
)

// unread names a program whose path could not be read in time.
const unread = "(path not read)"

// program reads which program an execve or execveat names, from the
// calling process's memory, and resolves it inside the container (symbolic
// links followed within its root). Only for the record: the call proceeds
// whatever is read, so a race with the process changing its memory changes
// the record, not what runs. One read is in flight at a time, and the
// answer waits for it at most readTimeout.
func (a *Agent) program(fd int, n *notif, call string) (p, resolved string) {
	select {
	case a.reading <- struct{}{}:
	default:
		return unread, "" // a read still hangs: do not pile up more
	}
	type result struct{ p, resolved string }
	ch := make(chan result, 1)
	go func() {
		r := result{unread, ""}
		func() {
			defer func() { _ = recover() }()
			p, resolved := readProgram(n, call)
			if valid(fd, n.ID) { // else the process is gone: what was read may be another's
				r = result{p, resolved}
			}
		}()
		<-a.reading // free before the answer: the next call (a restart of this one) may read at once
		ch <- r
	}()
	select {
	case r := <-ch:
		return r.p, r.resolved
	case <-time.After(readTimeout):
		return unread, ""
	}
}

func readProgram(n *notif, call string) (string, string) {
	pid := int(n.Pid)
	addr, dirfd, flags := n.Args[0], int32(unix.AT_FDCWD), uint64(0)
	if call == "execveat" {
		addr, dirfd, flags = n.Args[1], int32(n.Args[0]), n.Args[4]
	}
	name, err := readString(pid, addr)
	if err != nil {
		return unread, ""
	}
	root := fmt.Sprintf("/proc/%d/root", pid)
	if name == "" && flags&unix.AT_EMPTY_PATH != 0 {
		// the program is the descriptor itself (e.g. a memfd)
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, dirfd))
		if err != nil {
			return fmt.Sprintf("fd %d", dirfd), ""
		}
		return fmt.Sprintf("fd %d", dirfd), inside(pid, target)
	}
	dir := "/"
	if !path.IsAbs(name) {
		link := fmt.Sprintf("/proc/%d/cwd", pid)
		if dirfd != unix.AT_FDCWD {
			link = fmt.Sprintf("/proc/%d/fd/%d", pid, dirfd)
		}
		target, err := os.Readlink(link)
		if err != nil {
			return name, ""
		}
		dir = inside(pid, target)
	}
	// the kernel takes a relative name from the directory, never from PATH
	res, err := execguard.Resolve(root, path.Join(dir, name), nil, "/")
	if err != nil {
		return name, ""
	}
	return name, res.Path
}

// inside turns a path the host sees through /proc/PID (cwd, fd) into the
// path inside the container: below the container's root as the host sees
// it.
func inside(pid int, hostPath string) string {
	root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
	if err != nil || root == "/" {
		return hostPath
	}
	if rest, ok := strings.CutPrefix(hostPath, root); ok && (rest == "" || rest[0] == '/') {
		return "/" + strings.TrimPrefix(rest, "/")
	}
	return hostPath // not below the root: a memfd, a deleted file
}

// readString reads a NUL-terminated string of at most PATH_MAX bytes at
// addr in process pid, page by page (a string may end just before an
// unmapped page).
func readString(pid int, addr uint64) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	var out []byte
	page := uint64(os.Getpagesize())
	for len(out) < unix.PathMax {
		chunk := make([]byte, page-addr%page)
		n, err := f.ReadAt(chunk, int64(addr))
		if i := bytes.IndexByte(chunk[:n], 0); i >= 0 {
			return string(append(out, chunk[:i]...)), nil
		}
		if err != nil {
			return "", err
		}
		out = append(out, chunk[:n]...)
		addr += uint64(n)
	}
	return "", fmt.Errorf("longer than PATH_MAX")
}
