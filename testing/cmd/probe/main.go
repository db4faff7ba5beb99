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
// copyexec SRC DST (copy a program, then execute the copy).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

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
	case "copyexec":
		if len(args) != 2 {
			fail("usage: probe try copyexec SRC DST")
		}
		err = tryCopyExec(args[0], args[1])
	default:
		fail("unknown action " + action)
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
