package seccompagent

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's seccomp user-notification structures (linux/seccomp.h),
// used through raw ioctls: a descriptor is polled before each receive, so
// no thread ever blocks in the kernel on a filter whose processes are gone.
type notif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type notifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

func init() {
	if unsafe.Sizeof(notif{}) != 80 || unsafe.Sizeof(notifResp{}) != 24 {
		panic("seccompagent: struct seccomp_notif layout mismatch")
	}
}

// errGone is a descriptor whose filter has no process left (POLLHUP).
var errGone = errors.New("the filter's processes are gone")

// wait polls fd for a notification until one arrives (true), the filter's
// processes are gone (errGone), or stop becomes readable or hung up
// (false: the agent is closing).
func wait(fd, stop int) (bool, error) {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(stop), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(pfd, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, err
		}
		if pfd[1].Revents != 0 {
			return false, nil
		}
		if pfd[0].Revents&unix.POLLIN != 0 {
			return true, nil
		}
		if pfd[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			return false, errGone
		}
	}
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// receive reads one notification.
func receive(fd int) (*notif, error) {
	var n notif
	if err := ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n)); err != nil {
		return nil, err
	}
	return &n, nil
}

// proceed answers a notification: let the system call run as if the filter
// had allowed it. ENOENT: the caller was interrupted by a signal (the call
// is restarted, and notified again, or returns EINTR) or died meanwhile.
func proceed(fd int, id uint64) error {
	r := notifResp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&r))
}

// valid says whether the notification is still pending: the process that
// made it is the same and still waits (so what was read of its memory
// belonged to it).
func valid(fd int, id uint64) bool {
	return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil
}
