package service

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Handing the node's layout to a new shim.
//
// containerd starts a shim by running the binary once more ("shim start"),
// which spawns the long-lived shim and exits. That start process asks
// containerd for its layout (askContainerd) while it spawns the shim, and
// hands the answer to the new shim through a pipe the shim inherits: the
// shim's first Create then needs no gRPC connection of its own. Running a
// gRPC client left the long-lived shim about 0.9 MB larger for its whole
// life (bench -memory, the same build with and without the handoff), and
// its first call took about 2.5 ms on the Create path; in the start process
// the call runs while the shim starts, and its memory goes when the process
// exits.
//
// The pipe carries nothing a client controls: the start process is run by
// containerd, the pipe is created by it and held only by it and the shim it
// spawns, and the answer is containerd's own (the same call the shim would
// make, at the same address, checked on receipt). Anything amiss — no pipe,
// no answer, another address, an answer that does not decode — and the
// shim asks containerd itself, as before.
//
// The answer is the same for every start under one containerd instance,
// and asking costs each start process a cold gRPC client (a few ms of CPU
// on the critical path of every container start, and a call containerd
// serves). So the start process keeps it (layoutcache.go) in
// /run/palisade/layout, one file per gRPC address, and asks containerd
// only when no entry names the instance now behind the address. Why that
// is safe:
//   - Who can write it: the directory and its files must be owned by root
//     (the shim's user) with no group or other permission, the parent
//     writable only by root, no symlink anywhere on the path (openat2 with
//     RESOLVE_NO_SYMLINKS, the file reached below the directory's
//     descriptor with safeopen); anything else is ignored, never followed,
//     never written through. Only root writes under /run/palisade, and
//     palisade refuses to mount it into any container (harden's host
//     paths), so a workload cannot reach it. An attacker who is already
//     root on the node gains nothing here he did not have.
//   - Who chooses the key: the address is containerd's own, from the
//     bootstrap parameters containerd writes to the start process's stdin;
//     a containerd client (ctr, CRI) cannot choose it. The start process
//     only stats the socket, never connects to it for this (a bare connect
//     would make containerd log a failed HTTP/2 preface on every start).
//   - What changes when containerd restarts: containerd unlinks its socket
//     and creates it anew at every start (pkg/sys.CreateUnixSocket; it has
//     no socket activation that would keep one socket across restarts; if
//     a future containerd gained one, this key would have to change). The
//     new socket's device, inode and change time (in ns; a restart takes
//     far longer than a tick of the coarsest file clock) differ from the
//     old one's, the old entry no longer matches, and a different
//     containerd (restarted, reconfigured, another socket) is asked. A
//     containerd that was killed leaves its socket, and the next one
//     starts shims (its restart monitor) before it makes its own: so the
//     entry also names the containerd process (PID and start time: the
//     start process's parent). It names containerd's TTRPC address and
//     the shim binary (its inode, size and times) too, so an upgraded
//     shim, which may derive the layout differently, asks again. One containerd's layout is fixed for
//     its life: its plugins and their roots are set when it starts.
//   - Stale entries: an entry is written only when the same socket is
//     behind the address before and after the call (a restart during the
//     call writes nothing), atomically (a temporary file renamed in the
//     same directory), and read bounded (256 KiB). The entry of a
//     containerd that is gone names a process that is gone with it, so it
//     is never served again; it stays (a few hundred bytes per address)
//     until the next answer at that address replaces it or a reboot empties
//     /run. A corrupt, oversized or foreign entry is a miss.
//   - The cache never fails a start: any error is a miss, and the start
//     process asks containerd as it always did.

const (
	// layoutFDEnv names the descriptor of the pipe in the new shim's
	// environment.
	layoutFDEnv = "PALISADE_LAYOUT_FD"
	// layoutFDMin keeps the pipe's descriptor clear of those the stock
	// start hands the shim by number (its sockets, from 3 on).
	layoutFDMin = 64
	// maxLayoutSize bounds the answer read from the pipe.
	maxLayoutSize = 1 << 20
	// handoffWait bounds how long a shim waits on the pipe: the start
	// process has written and exited before containerd sends the first
	// Create, so the wait only guards against a pipe that is not one.
	handoffWait = time.Second
)

// handoff is the start process's end of the pipe.
type handoff struct {
	r, w *os.File
	done chan struct{}
	data []byte // the JSON of what was learned; nil when nothing was
}

// startHandoff creates the pipe whose read end the shim spawned next
// inherits (named in its environment), and starts learning the layout of
// the containerd at address (its gRPC socket; ttrpc is its TTRPC address),
// from the cache in cacheDir ("" = none) or by asking it. nil when there is
// nothing to hand off.
func startHandoff(ctx context.Context, address, ttrpc, cacheDir string) *handoff {
	_ = os.Unsetenv(layoutFDEnv)
	address = strings.TrimPrefix(address, "unix://")
	if !filepath.IsAbs(address) {
		return nil
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil
	}
	// the duplicate is not close-on-exec: the spawned shim inherits it
	rfd, err := unix.FcntlInt(uintptr(p[0]), unix.F_DUPFD, layoutFDMin)
	_ = unix.Close(p[0])
	if err != nil {
		_ = unix.Close(p[1])
		return nil
	}
	h := &handoff{r: os.NewFile(uintptr(rfd), "palisade-layout"), w: os.NewFile(uintptr(p[1]), "palisade-layout"), done: make(chan struct{})}
	if err := os.Setenv(layoutFDEnv, strconv.Itoa(rfd)); err != nil {
		h.close()
		return nil
	}
	go func() {
		defer close(h.done)
		if got, err := cachedLayout(ctx, cacheDir, address, ttrpc); err == nil {
			h.data, _ = json.Marshal(got)
		}
	}()
	return h
}

// finish hands what was learned to the shim, if one was spawned and holds
// the pipe (a start that found its group's shim running spawns none, and
// then nothing is waited for).
func (h *handoff) finish() {
	if h == nil {
		return
	}
	_ = os.Unsetenv(layoutFDEnv)
	_ = h.r.Close() // a spawned shim holds its own copy
	h.r = nil
	defer h.close()
	fds := []unix.PollFd{{Fd: int32(h.w.Fd()), Events: unix.POLLOUT}}
	if n, err := unix.Poll(fds, 0); err != nil || n != 1 || fds[0].Revents&unix.POLLERR != 0 {
		return // no reader
	}
	<-h.done // askContainerd gives up after its own timeout
	if h.data != nil {
		_, _ = h.w.Write(h.data)
	}
}

func (h *handoff) close() {
	for _, f := range []*os.File{h.r, h.w} {
		if f != nil {
			_ = f.Close()
		}
	}
}

// takeHandoff returns the pipe a start process handed this shim, or nil,
// and takes its name out of the environment, so that nothing the shim
// runs (runc) inherits either.
func takeHandoff() *os.File {
	v, ok := os.LookupEnv(layoutFDEnv)
	if !ok {
		return nil
	}
	_ = os.Unsetenv(layoutFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < layoutFDMin {
		return nil
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil
	}
	unix.CloseOnExec(fd)
	if unix.SetNonblock(fd, true) != nil { // for the read deadline
		return nil
	}
	return os.NewFile(uintptr(fd), "palisade-layout")
}

// receiveLayout reads the start process's answer from the pipe and closes
// it; ok only for an answer about address.
func receiveLayout(f *os.File, address string) (learned, bool) {
	var got learned
	if f == nil {
		return got, false
	}
	defer func() { _ = f.Close() }()
	_ = f.SetReadDeadline(time.Now().Add(handoffWait))
	data, err := io.ReadAll(io.LimitReader(f, maxLayoutSize))
	if err != nil || len(data) == 0 || json.Unmarshal(data, &got) != nil || got.Address != address {
		return learned{}, false
	}
	return got, true
}
