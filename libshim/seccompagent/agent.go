// Package seccompagent is the seccomp agent a palisade shim runs for each
// of its containers in alert mode. The container's filter hands every
// system call its profile would deny (and, with an exec allow-list, every
// execve and execveat) to the agent (seccomp user notification, runc's
// listenerPath); the agent counts what it sees, per call and architecture,
// per program outside the allow-list, and always answers "continue": the
// workload runs as if the call were allowed. What it counted becomes audit
// records at a bounded rate and when the container goes.
//
// The workload decides what reaches the agent — how often, which calls,
// what memory a path points to — so the agent keeps fixed bounds: a fixed
// number of distinct entries per container (then a dropped count), a fixed
// number of descriptors, one memory read in flight, paths cut at a fixed
// length, records at most once per interval. Nothing on the answering path
// writes to disk or logs per call, and a failure closes a descriptor
// instead of leaving calls waiting: the kernel then fails the calls the
// filter hands over with ENOSYS, the enforcing direction.
package seccompagent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/seccomp"
)

// Dir holds the agents' sockets: root's, mode 0700, on the host only (no
// container may mount it: harden's protected paths).
const Dir = "/run/palisade/alert"

// maxFds bounds the filters one container hands the agent: its init and
// each exec process bring one.
const maxFds = 64

// readTimeout bounds reading a program's path out of a process's memory
// (the page could be a userfaultfd's, or on a slow filesystem): past it the
// call continues and the program is recorded as unread. A read takes
// microseconds; the bound is generous for a loaded node, and a read that
// hangs costs one call this long (the next ones skip reading until it
// returns).
const readTimeout = time.Second

// DefaultInterval is how often counted calls become a record, at most.
const DefaultInterval = 30 * time.Second

// SocketPath is the agent socket of a container: in Dir, named after its
// bundle (a unix socket path is limited to 107 bytes; a bundle path under
// CRI is longer).
func SocketPath(bundle string) string {
	h := sha256.Sum256([]byte(bundle))
	return filepath.Join(Dir, hex.EncodeToString(h[:16])+".sock")
}

// Config is one container's agent.
type Config struct {
	// Container names it in the shim log: namespace/id.
	Container string
	// Socket is where runc hands the filter's descriptor over.
	Socket string
	// ExecCalls are calls the profile allows and the filter hands over only
	// to record which program runs (execve, execveat).
	ExecCalls []string
	// ExecAllow is the container's exec allow-list: programs outside it are
	// recorded.
	ExecAllow []string
	// Report receives what was counted, at most once per Interval and a last
	// time on Close, on the agent's own goroutine.
	Report   func(Report)
	Interval time.Duration
	// Rate bounds the calls answered per second, past a burst (0: 10,000).
	Rate int
}

// Agent is a running agent.
type Agent struct {
	cfg     Config
	ln      *net.UnixListener
	tally   *tally
	done    chan struct{}
	serving sync.WaitGroup
	flushed chan struct{}
	fds     atomic.Int32
	reading chan struct{} // one memory read in flight
	limit   *limiter
	stop    [2]int // a pipe: closing its write end wakes every loop
	once    sync.Once
}

// Start listens on cfg.Socket. The socket is root's, mode 0600, in Dir.
func Start(cfg Config) (*Agent, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o700); err != nil {
		return nil, fmt.Errorf("seccomp agent: %w", err)
	}
	if err := os.Chmod(filepath.Dir(cfg.Socket), 0o700); err != nil {
		return nil, fmt.Errorf("seccomp agent: %w", err)
	}
	if err := os.Remove(cfg.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("seccomp agent: remove a stale socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("seccomp agent: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(cfg.Socket, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("seccomp agent: %w", err)
	}
	a := &Agent{cfg: cfg, ln: ln, tally: newTally(), done: make(chan struct{}), flushed: make(chan struct{}), reading: make(chan struct{}, 1), limit: newLimiter(cfg.Rate, time.Now)}
	if err := unix.Pipe2(a.stop[:], unix.O_CLOEXEC); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("seccomp agent: %w", err)
	}
	a.serving.Add(1) // the accept loop: descriptor loops are added while it runs
	go a.accept()
	go a.flush()
	return a, nil
}

// Close stops the agent: no descriptor is served any longer (calls its
// filters hand over fail with ENOSYS from then on), and what was counted
// is reported a last time before Close returns.
func (a *Agent) Close() {
	a.once.Do(func() {
		close(a.done)
		_ = a.ln.Close()
		_ = unix.Close(a.stop[1]) // wakes every descriptor loop
		a.serving.Wait()
		<-a.flushed
		_ = unix.Close(a.stop[0])
	})
}

func (a *Agent) logf(err error, format string, args ...any) {
	log.G(context.Background()).WithError(err).WithField("container", a.cfg.Container).Warnf("palisade: seccomp agent: "+format, args...)
}

func (a *Agent) accept() {
	defer a.serving.Done()
	for {
		conn, err := a.ln.AcceptUnix()
		if err != nil {
			select {
			case <-a.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of descriptors: do not spin
			continue
		}
		a.handover(conn)
	}
}

// handover takes a filter descriptor from runc: the container state as
// JSON, and the descriptor with SCM_RIGHTS. Only root may hand one over.
func (a *Agent) handover(conn *net.UnixConn) {
	defer func() { _ = conn.Close() }()
	defer func() {
		if p := recover(); p != nil {
			a.logf(fmt.Errorf("%v", p), "panic while receiving a descriptor")
		}
	}()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	raw, err := conn.SyscallConn()
	if err != nil {
		return
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil || cred.Uid != 0 {
		a.logf(err, "refused a connection that is not root's")
		return
	}
	buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*4))
	var oobn int
	var rerr error
	err = raw.Read(func(fd uintptr) bool {
		// close-on-exec from the start: the shim forks runc all the time
		_, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err = errors.Join(err, rerr); err != nil {
		a.logf(err, "no descriptor received")
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return
	}
	var fds []int
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	for i, fd := range fds {
		if i > 0 || !isNotifyFd(fd) || a.fds.Load() >= maxFds {
			_ = unix.Close(fd)
			if i == 0 {
				a.logf(nil, "closed a descriptor that is not a seccomp listener or past the bound of %d", maxFds)
			}
			continue
		}
		a.fds.Add(1)
		a.serving.Add(1)
		go a.serve(fd)
	}
}

func isNotifyFd(fd int) bool {
	target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	return err == nil && target == "anon_inode:seccomp notify"
}

// serve answers one filter's notifications until its processes are gone
// or the agent closes. Closing the descriptor makes the kernel fail the
// calls still waiting with ENOSYS: no process waits on a dead agent.
func (a *Agent) serve(fd int) {
	defer a.serving.Done()
	defer a.fds.Add(-1)
	defer func() { _ = unix.Close(fd) }()
	defer func() {
		if p := recover(); p != nil {
			a.logf(fmt.Errorf("%v", p), "panic; the filter's calls now fail with ENOSYS")
		}
	}()
	for {
		ready, err := wait(fd, a.stop[0])
		if err != nil {
			if !errors.Is(err, errGone) {
				a.logf(err, "poll")
			}
			return
		}
		if !ready {
			return // the agent is closing
		}
		n, err := receive(fd)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINTR) {
			continue // the caller went away before it was read
		}
		if err != nil {
			a.logf(err, "receive")
			return
		}
		count := a.observe(fd, n)
		if d := a.limit.delay(); d > 0 {
			time.Sleep(d) // a flood: the caller waits, the shim does not spin
		}
		switch err := proceed(fd, n.ID); {
		case err == nil:
			count() // only calls that went on: a restarted one is counted once
		case errors.Is(err, unix.ENOENT):
		default:
			a.logf(err, "answer")
			return
		}
	}
}

// observe reads what one notification is about and returns the function
// that counts it; a panic here costs the record, never the answer.
func (a *Agent) observe(fd int, n *notif) (count func()) {
	count = func() {}
	defer func() { _ = recover() }()
	now := time.Now().UTC()
	name, arch := seccomp.SyscallName(n.Arch, n.Nr)
	if name == "" {
		name = fmt.Sprintf("#%d", n.Nr)
	}
	archName := string(arch)
	if archName == "" {
		archName = fmt.Sprintf("audit-arch-0x%x", n.Arch)
	}
	if slices.Contains(a.cfg.ExecCalls, name) {
		path, resolved := a.program(fd, n, name)
		if resolved == "" || !execguard.Allowed(resolved, a.cfg.ExecAllow) {
			return func() { a.tally.exec(path, resolved, now) }
		}
		return count
	}
	return func() { a.tally.syscall(name, archName, now) }
}

func (a *Agent) flush() {
	defer close(a.flushed)
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	report := func() {
		defer func() {
			if p := recover(); p != nil {
				a.logf(fmt.Errorf("%v", p), "panic while reporting")
			}
		}()
		if r := a.tally.take(); !r.Empty() && a.cfg.Report != nil {
			a.cfg.Report(r)
		}
	}
	for {
		select {
		case <-t.C:
			report()
		case <-a.done:
			a.serving.Wait()
			report()
			return
		}
	}
}
