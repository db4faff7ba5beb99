package execguard

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// SetMemfdNoexec sets vm.memfd_noexec = 2 in the PID namespace of process
// pid: memfds created there are not executable and MFD_EXEC is refused.
// Landlock does not mediate memfds, so without this a process could run a
// binary it wrote into a memfd. The sysctl is per PID namespace and applies
// to the writer's namespace, so it is written by a child started in the
// container's PID namespace (helper is palisade-init on the host, which
// runs WriteMemfdNoexec).
func SetMemfdNoexec(pid int, helper string) error {
	runtime.LockOSThread()
	// The thread stays locked and dies with this goroutine: its PID
	// namespace for children is changed for good.
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/pid", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the container's pid namespace: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWPID); err != nil {
		return fmt.Errorf("join the container's pid namespace: %w", err)
	}
	child, err := syscall.ForkExec(helper, []string{"palisade-init", "memfd-noexec-write"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
	if err != nil {
		return fmt.Errorf("start %s: %w", helper, err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(child, &ws, 0, nil); err != nil {
		return err
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("setting vm.memfd_noexec failed (status %v)", ws)
	}
	return nil
}

// WriteMemfdNoexec writes 2 to vm.memfd_noexec for the caller's PID namespace.
func WriteMemfdNoexec() error {
	if err := os.WriteFile("/proc/sys/vm/memfd_noexec", []byte("2\n"), 0); err != nil {
		return fmt.Errorf("write vm.memfd_noexec: %w", err)
	}
	return nil
}

// LandlockABI returns the kernel's Landlock ABI version, or an error when
// Landlock is not available (not built in, or not among the active LSMs).
func LandlockABI() (int, error) {
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0, errno
	}
	return int(abi), nil
}
