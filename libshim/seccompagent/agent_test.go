package seccompagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
	"palisade.dev/palisade/testing/require"
)

// The tests run a child process (this test binary again) that installs a
// real seccomp filter handing unshare and execve to a listener, and hands
// the listener descriptor to the agent exactly as runc does: the container
// state as JSON with the descriptor in SCM_RIGHTS.
const childEnv = "PALISADE_SECCOMPAGENT_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode, os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// child: notify SOCKET N — install the filter, hand it over, call
// unshare(0) N times (each must succeed), wait for a line on stdin, try
// unshare once more (reporting its errno), execve a missing program, then
// execve /bin/true.
func child(mode, socket string) int {
	runtime.LockOSThread()
	n, _ := strconv.Atoi(os.Getenv("N"))
	if mode == "none" {
		return loop(n)
	}
	f, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		fmt.Println(err)
		return 2
	}
	act := libseccomp.ActNotify
	if mode == "log" {
		act = libseccomp.ActLog
	}
	for _, name := range []string{"unshare", "execve", "execveat"} {
		nr, _ := libseccomp.GetSyscallFromName(name)
		if err := f.AddRule(nr, act); err != nil {
			fmt.Println(err)
			return 2
		}
	}
	if err := f.Load(); err != nil {
		fmt.Println(err)
		return 2
	}
	if mode != "log" {
		fd, err := f.GetNotifFd()
		if err != nil {
			fmt.Println(err)
			return 2
		}
		state, _ := json.Marshal(specs.ContainerProcessState{Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: os.Getpid()})
		conn, err := net.Dial("unix", socket)
		if err != nil {
			fmt.Println(err)
			return 2
		}
		if _, _, err := conn.(*net.UnixConn).WriteMsgUnix(state, unix.UnixRights(int(fd)), nil); err != nil {
			fmt.Println(err)
			return 2
		}
		_ = conn.Close()
		_ = unix.Close(int(fd)) // as runc init does: the agent holds the only copy
	}
	switch mode {
	case "relexec": // a relative name, from the working directory
		_ = os.Chdir("/usr/bin")
		name, _ := unix.BytePtrFromString("true")
		argv := []*byte{name, nil}
		_, _, e := unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(&argv[0])), 0)
		fmt.Println("execve:", e)
		return 3
	case "fdexec": // the program is a descriptor
		fd, err := unix.Open("/bin/true", unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			fmt.Println(err)
			return 2
		}
		empty, _ := unix.BytePtrFromString("")
		argv := []*byte{empty, nil}
		_, _, e := unix.RawSyscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)), uintptr(unsafe.Pointer(&argv[0])), 0, unix.AT_EMPTY_PATH, 0)
		fmt.Println("execveat:", e)
		return 3
	case "notify":
	default:
		return loop(n)
	}
	for range n {
		if _, _, e := unix.RawSyscall(unix.SYS_UNSHARE, 0, 0, 0); e != 0 {
			fmt.Println("unshare:", e)
			return 1
		}
	}
	var line [1]byte
	_, _ = os.Stdin.Read(line[:])
	_, _, e := unix.RawSyscall(unix.SYS_UNSHARE, 0, 0, 0)
	fmt.Println("after:", int(e))
	missing, _ := unix.BytePtrFromString("/nonexistent/prog")
	_, _, _ = unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(missing)), 0, 0)
	err = unix.Exec("/bin/true", []string{"true"}, nil) // allowed by the list: not recorded
	fmt.Println("exec /bin/true:", err)
	return 3
}

// loop calls unshare(0) n times and prints the nanoseconds per call.
func loop(n int) int {
	start := time.Now()
	for range n {
		if _, _, e := unix.RawSyscall(unix.SYS_UNSHARE, 0, 0, 0); e != 0 {
			fmt.Println("unshare:", e)
			return 1
		}
	}
	fmt.Println(time.Since(start).Nanoseconds() / int64(max(n, 1)))
	return 0
}

func startChild(t *testing.T, mode, socket string, n int) (*exec.Cmd, *os.File, *strings.Builder) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$", socket)
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "N="+strconv.Itoa(n))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		skipEmulated(t, err)
		t.Fatal(err)
	}
	return cmd, in.(*os.File), out
}

// skipEmulated skips when this test binary is foreign to the kernel: under
// qemu-user (make test-arm64) its child would start only through the
// emulator, and a seccomp filter loaded by emulated code judges qemu's own
// host system calls, not the program's; these tests need a native kernel.
func skipEmulated(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, unix.ENOEXEC) {
		require.Skipf(t, "this test binary is not native here (%v): under qemu-user a seccomp filter would judge the emulator's system calls; run it on a %s machine", err, runtime.GOARCH)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		require.Skipf(t, "the agent accepts descriptors from root only: run as root")
	}
}

func testSocket(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "a.sock")
}

// Calls the filter hands over proceed and are counted; a program outside
// the allow-list is recorded with its path; the socket is root's alone.
func TestAgentCountsAndContinues(t *testing.T) {
	needRoot(t)
	var mu sync.Mutex
	var reports []Report
	sock := testSocket(t)
	a, err := Start(Config{Container: "test/c", Socket: sock, ExecCalls: []string{"execve"}, ExecAllow: []string{"/usr/bin/"},
		Report: func(r Report) { mu.Lock(); reports = append(reports, r); mu.Unlock() }, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v %v", st, err)
	}
	cmd, in, out := startChild(t, "notify", sock, 50)
	// the child calls unshare 50 times, then waits
	_, _ = in.Write([]byte("\n"))
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "after: 0") {
		t.Fatalf("child: %v (unshare and the exec of /bin/true must proceed)\n%s", err, out)
	}
	a.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 1 {
		t.Fatalf("%d reports, want 1 (on close)", len(reports))
	}
	r := reports[0]
	if len(r.Syscalls) != 1 || r.Syscalls[0].Name != "unshare" || r.Syscalls[0].Count != 51 || r.Syscalls[0].First.After(r.Syscalls[0].Last) {
		t.Errorf("syscalls %+v, want unshare 51 times", r.Syscalls)
	}
	if len(r.Executables) != 1 || r.Executables[0].Path != "/nonexistent/prog" || r.Executables[0].Count != 1 {
		t.Errorf("executables %+v, want /nonexistent/prog once", r.Executables)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket outlives the agent: %v", err)
	}
}

// A relative name resolves from the process's working directory inside
// its root, and a program run from a descriptor is named by it.
func TestAgentResolvesPrograms(t *testing.T) {
	needRoot(t)
	for mode, want := range map[string]string{"relexec": "true -> /usr/bin/true", "fdexec": "fd "} {
		var mu sync.Mutex
		var got []string
		sock := testSocket(t)
		a, err := Start(Config{Container: "test/c", Socket: sock, ExecCalls: []string{"execve", "execveat"}, ExecAllow: []string{"/opt/"}, Interval: time.Hour,
			Report: func(r Report) {
				mu.Lock()
				defer mu.Unlock()
				for _, x := range r.Executables {
					got = append(got, x.Path+" -> "+x.Resolved)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		cmd, _, out := startChild(t, mode, sock, 0)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, out)
		}
		a.Close()
		mu.Lock()
		if len(got) != 1 || !strings.HasPrefix(got[0], want) || !strings.HasSuffix(got[0], "/usr/bin/true") {
			t.Errorf("%s: recorded %q, want %q… resolving to /usr/bin/true", mode, got, want)
		}
		mu.Unlock()
	}
}

// An agent that goes away never leaves a process waiting: the calls its
// filter hands over fail with ENOSYS instead.
func TestAgentGoneCallsFail(t *testing.T) {
	needRoot(t)
	sock := testSocket(t)
	a, err := Start(Config{Container: "test/c", Socket: sock, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cmd, in, out := startChild(t, "notify", sock, 0)
	deadline := time.Now().Add(10 * time.Second)
	for a.fds.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	a.Close()
	_, _ = in.Write([]byte("\n"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Logf("child: %v", err) // it exits 3 when the exec of /bin/true fails: not this test's concern
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the child still waits on a closed agent")
	}
	if !strings.Contains(out.String(), fmt.Sprintf("after: %d", int(unix.ENOSYS))) {
		t.Errorf("child after the agent closed:\n%s", out)
	}
}

// Only root may hand a descriptor over; anything that is not a seccomp
// listener descriptor is closed.
func TestAgentRefusesOthers(t *testing.T) {
	needRoot(t)
	sock := testSocket(t)
	a, err := Start(Config{Container: "test/c", Socket: sock, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.(*net.UnixConn).WriteMsgUnix([]byte("{}"), unix.UnixRights(int(f.Fd())), nil); err != nil {
		t.Fatal(err)
	}
	// the agent closes the connection once it has dealt with it
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Fatalf("the agent kept the connection: %v", err)
	}
	_ = conn.Close()
	if n := a.fds.Load(); n != 0 {
		t.Errorf("the agent serves %d descriptors, want 0", n)
	}
}

// The tally keeps a fixed number of distinct entries whatever the workload
// shows it, and counts the rest as dropped.
func TestTallyBounded(t *testing.T) {
	tl := newTally()
	now := time.Now()
	for i := range maxSyscalls + 10 {
		tl.syscall(fmt.Sprintf("#%d", i), "SCMP_ARCH_X86_64", now)
	}
	for i := range maxExecs + 5 {
		tl.exec(strconv.Itoa(i)+strings.Repeat("x", 5000), "", now)
	}
	r := tl.take()
	if len(r.Syscalls) != maxSyscalls || len(r.Executables) != maxExecs || r.Dropped != 15 {
		t.Fatalf("%d syscalls, %d executables, %d dropped", len(r.Syscalls), len(r.Executables), r.Dropped)
	}
	if l := len(r.Executables[0].Path); l > maxPathLen+len("…") {
		t.Errorf("a path of %d bytes is kept", l)
	}
	if r := tl.take(); !r.Empty() {
		t.Errorf("take does not start afresh: %+v", r)
	}
}

// What a call the profile would deny costs the workload, per mechanism:
// no filter, SCMP_ACT_LOG (the kernel log), and SCMP_ACT_NOTIFY answered by
// the agent with continue (docs/rollout.md records the figures).
func BenchmarkAlertCall(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("the agent accepts descriptors from root only")
	}
	for _, mode := range []string{"none", "log", "bench"} {
		b.Run(map[string]string{"none": "NoFilter", "log": "ActLog", "bench": "ActNotifyContinue"}[mode], func(b *testing.B) {
			sock := filepath.Join(b.TempDir(), "a.sock")
			// the mechanism's cost, not the flood bound's
			a, err := Start(Config{Container: "bench/c", Socket: sock, Interval: time.Hour, Rate: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			self, _ := os.Executable()
			cmd := exec.Command(self, "-test.run=^$", sock)
			cmd.Env = append(os.Environ(), childEnv+"="+mode, "N="+strconv.Itoa(b.N))
			out, err := cmd.CombinedOutput()
			if err != nil {
				skipEmulated(b, err)
				b.Fatalf("%v: %s", err, out)
			}
			ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			if err != nil {
				b.Fatalf("%s", out)
			}
			b.ReportMetric(ns, "ns/call")
		})
	}
}

// Past its burst, a container's answers are spaced at the bounded rate.
func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(0, func() time.Time { return now })
	for i := range maxBurst {
		if d := l.delay(); d != 0 {
			t.Fatalf("call %d within the burst waits %v", i, d)
		}
	}
	if d := l.delay(); d != time.Second/maxRate {
		t.Fatalf("past the burst: %v, want %v", d, time.Second/maxRate)
	}
	now = now.Add(time.Second) // a quiet second refills the bucket
	if d := l.delay(); d != 0 {
		t.Fatalf("after a quiet second: %v", d)
	}
}
