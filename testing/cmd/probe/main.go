// Command probe runs inside test containers and reports, from the inside,
// what the container may do: its identity, capability sets, no_new_privs and
// seccomp mode, and the outcome of actions a hardened container must not be
// able to take. It is built static (CGO_ENABLED=0) into the test image.
//
//	probe report [-text]     identity and security state as JSON (or text)
//	probe try ACTION [ARG]   attempt ACTION, print {"action","ok","errno"} JSON
//	probe exit CODE          exit with CODE
//	probe sleep SECONDS      sleep (a long-running container)
//
// Actions: write PATH, read PATH, unshare, rawsocket, bind PORT, fork N,
// copyexec SRC DST (copy a program, then execute the copy), memfdexec SRC
// ARGV0 [ARG...] (copy a program into a memfd and execute that; it must exit
// 0), threads N,
// loopback (TCP over 127.0.0.1), syscall NAME (a raw call with harmless
// arguments: mount, keyctl, bpf, ptrace, io_uring_setup, perf_event_open,
// userfaultfd, unshare-user, clone-newuser), badexec KIND (an execve whose
// file name is unmapped or has no NUL; or nr N, a raw call by number);
// unlink, rename, chmod, mountover and catch (delivery.go).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: probe report|try|exit|sleep ...")
	}
	switch os.Args[1] {
	case "report":
		report(len(os.Args) > 2 && os.Args[2] == "-text")
	case "try":
		if len(os.Args) < 3 {
			fail("usage: probe try ACTION [ARG]")
		}
		try(os.Args[2], os.Args[3:])
	case "exit":
		code, err := strconv.Atoi(arg(2))
		if err != nil {
			fail("exit: " + err.Error())
		}
		os.Exit(code)
	case "sleep":
		secs, err := strconv.Atoi(arg(2))
		if err != nil {
			fail("sleep: " + err.Error())
		}
		time.Sleep(time.Duration(secs) * time.Second)
	default:
		fail("unknown command " + os.Args[1])
	}
}

func arg(i int) string {
	if len(os.Args) <= i {
		return ""
	}
	return os.Args[i]
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "probe:", msg)
	os.Exit(2)
}

// Report is what `probe report` prints.
type Report struct {
	UID        int                 `json:"uid"`
	GID        int                 `json:"gid"`
	Groups     []int               `json:"groups"`
	NoNewPrivs int                 `json:"no_new_privs"`
	Seccomp    string              `json:"seccomp"`
	Caps       map[string][]string `json:"caps"` // set name -> capability names
	Hostname   string              `json:"hostname"`
}

func report(text bool) {
	r := Report{UID: os.Getuid(), GID: os.Getgid(), Caps: map[string][]string{}}
	r.Groups, _ = os.Getgroups()
	nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		fail("prctl: " + err.Error())
	}
	r.NoNewPrivs = nnp
	r.Hostname, _ = os.Hostname()
	status, err := readStatus()
	if err != nil {
		fail(err.Error())
	}
	r.Seccomp = status["Seccomp"]
	for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		r.Caps[set] = capNames(status[set])
	}
	if !text {
		out, _ := json.Marshal(r)
		fmt.Println(string(out))
		return
	}
	fmt.Printf("uid=%d gid=%d groups=%v\n", r.UID, r.GID, r.Groups)
	fmt.Printf("no_new_privs=%d seccomp=%s\n", r.NoNewPrivs, r.Seccomp)
	for _, set := range []string{"CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"} {
		fmt.Printf("%s=%s\n", set, strings.Join(r.Caps[set], ","))
	}
}

func readStatus() (map[string]string, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, sc.Err()
}

func capNames(hex string) []string {
	mask, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return []string{"?" + hex}
	}
	names := []string{}
	for bit := 0; bit < 64; bit++ {
		if mask&(1<<uint(bit)) == 0 {
			continue
		}
		name := fmt.Sprintf("CAP_%d", bit)
		for _, c := range capability.ListKnown() {
			if int(c) == bit {
				name = "CAP_" + strings.ToUpper(c.String())
			}
		}
		names = append(names, name)
	}
	return names
}

// Outcome is what `probe try` prints.
type Outcome struct {
	Action string `json:"action"`
	OK     bool   `json:"ok"`
	Errno  string `json:"errno,omitempty"`
	Detail string `json:"detail,omitempty"`
}

func try(action string, args []string) {
	o := Outcome{Action: action}
	var err error
	switch action {
	case "write":
		err = tryWrite(firstArg(args))
	case "unshare":
		err = unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWUTS)
	case "rawsocket":
		var fd int
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err == nil {
			unix.Close(fd)
		}
	case "bind":
		err = tryBind(firstArg(args))
	case "fork":
		o.Detail, err = tryFork(firstArg(args))
	case "read":
		o.Detail, err = tryRead(firstArg(args))
	case "syscall":
		err = trySyscall(firstArg(args))
	case "threads":
		o.Detail, err = tryThreads(firstArg(args))
	case "loopback":
		err = tryLoopback()
	case "memfdexec":
		if len(args) < 2 {
			fail("usage: probe try memfdexec SRC ARGV0 [ARG...]")
		}
		err = tryMemfdExec(args[0], args[1:])
	case "copyexec":
		if len(args) != 2 {
			fail("usage: probe try copyexec SRC DST")
		}
		err = tryCopyExec(args[0], args[1])
	case "badexec":
		err = tryBadExec(firstArg(args), args[1:])
	case "exec":
		// run a program as a child (its output discarded): what an
		// exec allow-list decides from inside
		if len(args) < 1 {
			fail("usage: probe try exec PATH [ARG...]")
		}
		err = exec.Command(args[0], args[1:]...).Run()
	default:
		var known bool
		if o.Detail, known, err = tryDelivery(action, args); !known {
			fail("unknown action " + action)
		}
	}
	o.OK = err == nil
	var errno unix.Errno
	if errors.As(err, &errno) {
		o.Errno = unix.ErrnoName(errno)
	} else if err != nil {
		o.Detail = err.Error()
	}
	out, _ := json.Marshal(o)
	fmt.Println(string(out))
}

func firstArg(args []string) string {
	if len(args) == 0 {
		fail("missing argument")
	}
	return args[0]
}

func tryWrite(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString("probe\n")
	return errors.Join(err, f.Close())
}

func tryBind(port string) error {
	p, err := strconv.Atoi(port)
	if err != nil {
		fail("bind: " + err.Error())
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}})
}

// tryFork starts up to n sleeping children and reports how many it got
// before fork failed; the children are killed before returning.
func tryFork(n string) (string, error) {
	limit, err := strconv.Atoi(n)
	if err != nil {
		fail("fork: " + err.Error())
	}
	var pids []int
	defer func() {
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, 0, nil)
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	for i := 0; i < limit; i++ {
		pid, err := syscall.ForkExec(self, []string{"probe", "sleep", "60"}, &syscall.ProcAttr{})
		if err != nil {
			return fmt.Sprintf("started=%d", len(pids)), err
		}
		pids = append(pids, pid)
	}
	return fmt.Sprintf("started=%d", len(pids)), nil
}

// tryRead reads up to 64 KiB of path and reports how many bytes it got.
func tryRead(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n, err := f.Read(buf)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return fmt.Sprintf("bytes=%d", n), err
}

// tryCopyExec copies src to dst (mode 0755) and executes the copy with
// "exit 0"; the outcome is the exec's.
func tryCopyExec(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		return err
	}
	pid, err := syscall.ForkExec(dst, []string{dst, "exit", "0"}, &syscall.ProcAttr{})
	if err != nil {
		return err
	}
	var ws unix.WaitStatus
	_, err = unix.Wait4(pid, &ws, 0, nil)
	return err
}

// trySyscall makes one raw syscall that a seccomp profile may deny, with
// arguments that would succeed (or fail harmlessly) without it.
func trySyscall(name string) error {
	var errno syscall.Errno
	switch name {
	case "mount":
		// onto a fresh directory of its own, unmounted again at once
		dir, err := os.MkdirTemp("", "probe-mnt-")
		if err != nil {
			return err
		}
		defer func() { _ = os.Remove(dir) }()
		if err := unix.Mount("none", dir, "tmpfs", 0, ""); err != nil {
			return err
		}
		return unix.Unmount(dir, unix.MNT_DETACH)
	case "keyctl":
		// KEYCTL_GET_KEYRING_ID of the process keyring, creating it
		_, _, errno = unix.Syscall6(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xfffffffe), 1, 0, 0, 0)
	case "bpf":
		_, _, errno = unix.Syscall(unix.SYS_BPF, 0, 0, 0)
	case "personality-3-7":
		// personality(3) with 7 in the unused second argument register,
		// which a seccomp rule may still compare
		_, _, errno = unix.RawSyscall(unix.SYS_PERSONALITY, 3, 7, 0)
	case "ptrace":
		_, _, errno = unix.Syscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0)
	case "io_uring_setup":
		params := make([]byte, 120)
		fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
		if e == 0 {
			unix.Close(int(fd))
		}
		errno = e
	case "perf_event_open":
		attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_TASK_CLOCK, Bits: unix.PerfBitDisabled | unix.PerfBitExcludeKernel}
		attr.Size = uint32(unsafe.Sizeof(attr))
		fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	case "userfaultfd":
		fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|1 /* UFFD_USER_MODE_ONLY */, 0, 0)
		if e == 0 {
			unix.Close(int(fd))
		}
		errno = e
	case "unshare-user":
		return unix.Unshare(unix.CLONE_NEWUSER)
	case "unshare0":
		// unshare with no flags: a no-op that needs no privilege, so only
		// a seccomp filter makes it fail
		return unix.Unshare(0)
	case "clone-newuser":
		// fork into a new user namespace; the child exits at once
		pid, _, e := unix.RawSyscall6(unix.SYS_CLONE, uintptr(unix.CLONE_NEWUSER|unix.SIGCHLD), 0, 0, 0, 0, 0)
		if e == 0 {
			if pid == 0 {
				_, _, _ = unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0) // the child: no Go runtime calls
			}
			var ws unix.WaitStatus
			_, _ = unix.Wait4(int(pid), &ws, 0, nil)
		}
		errno = e
	default:
		fail("unknown syscall probe " + name)
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// tryThreads runs n goroutines locked to their own OS threads.
func tryThreads(n string) (string, error) {
	count, err := strconv.Atoi(n)
	if err != nil {
		fail("threads: " + err.Error())
	}
	done := make(chan int, count)
	for i := 0; i < count; i++ {
		go func() {
			runtime.LockOSThread()
			done <- unix.Gettid()
		}()
	}
	tids := map[int]bool{}
	for i := 0; i < count; i++ {
		tids[<-done] = true
	}
	return fmt.Sprintf("threads=%d", len(tids)), nil
}

// tryLoopback listens on 127.0.0.1 and talks to itself over TCP.
func tryLoopback() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer func() { _ = l.Close() }()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_, _ = c.Write([]byte("pong"))
			_ = c.Close()
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "pong" {
		return fmt.Errorf("loopback answered %q", buf)
	}
	return nil
}

// tryMemfdExec copies src into a memfd and executes it with execveat
// (AT_EMPTY_PATH) in a child with argv; the program must exit 0.
func tryMemfdExec(src string, argv []string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fd, err := unix.MemfdCreate("probe", unix.MFD_CLOEXEC)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(fd) }()
	if _, err := unix.Write(fd, data); err != nil {
		return err
	}
	empty, _ := unix.BytePtrFromString("")
	argp := make([]*byte, 0, len(argv)+1)
	for _, a := range argv {
		argp = append(argp, mustBytePtr(a))
	}
	argp = append(argp, nil)
	envv := []*byte{nil}
	pid, _, errno := unix.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 {
		return errno
	}
	if pid == 0 {
		_, _, e := unix.RawSyscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
			uintptr(unsafe.Pointer(&argp[0])), uintptr(unsafe.Pointer(&envv[0])), unix.AT_EMPTY_PATH, 0)
		_, _, _ = unix.RawSyscall(unix.SYS_EXIT_GROUP, uintptr(100+e), 0, 0) // report the errno as the exit code
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(int(pid), &ws, 0, nil); err != nil {
		return err
	}
	switch code := ws.ExitStatus(); {
	case code >= 100:
		return syscall.Errno(code - 100)
	case code != 0:
		return fmt.Errorf("the memfd program ran and exited %d", code)
	}
	return nil
}

func mustBytePtr(s string) *byte {
	p, err := unix.BytePtrFromString(s)
	if err != nil {
		fail(err.Error())
	}
	return p
}
