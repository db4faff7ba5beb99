package main

import (
	"fmt"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tryBadExec makes an execve whose file name a seccomp agent reading the
// caller's memory cannot take at face value:
//
//	unmapped  the name points at an address nothing is mapped at
//	nonul     a whole page of 'a' with no NUL, followed by an unmapped page
//	uffd      the name lies in a page registered with a userfaultfd
//	          (user-mode faults only: what an unprivileged process gets)
//	          that nobody serves: whoever touches it could wait forever
//	nr N      no execve: raw system call number N with zero arguments
//	          (a number no architecture table names)
//	storm N M no execve: N threads each make M unshare(0) calls at once
//	          (the Go runtime's preemption signals interrupt some of them
//	          while the agent holds them)
//
// Each fails in the kernel (EFAULT, ENAMETOOLONG, runc's ENOSYS for numbers
// its filter does not know);
// the outcome is that error.
func tryBadExec(kind string, args []string) error {
	switch kind {
	case "unmapped":
		_, _, e := unix.RawSyscall(unix.SYS_EXECVE, 0x1000, 0, 0)
		return errnoOrNil(e)
	case "nonul":
		page := unix.Getpagesize()
		mem, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return err
		}
		if _, _, e := unix.Syscall(unix.SYS_MUNMAP, uintptr(unsafe.Pointer(&mem[page])), uintptr(page), 0); e != 0 {
			return e
		}
		for i := range page {
			mem[i] = 'a'
		}
		_, _, e := unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(&mem[0])), 0, 0)
		return errnoOrNil(e)
	case "uffd":
		return tryUffdExec()
	case "nr":
		if len(args) != 1 {
			fail("usage: probe try badexec nr N")
		}
		nr, err := strconv.Atoi(args[0])
		if err != nil {
			fail("badexec nr: " + err.Error())
		}
		_, _, e := unix.RawSyscall(uintptr(nr), 0, 0, 0)
		return errnoOrNil(e)
	case "storm":
		if len(args) != 2 {
			fail("usage: probe try badexec storm N M")
		}
		n, err1 := strconv.Atoi(args[0])
		m, err2 := strconv.Atoi(args[1])
		if err1 != nil || err2 != nil {
			fail("badexec storm: N and M are numbers")
		}
		errs := make(chan unix.Errno, n)
		for range n {
			go func() {
				runtime.LockOSThread()
				var first unix.Errno
				for range m {
					if _, _, e := unix.Syscall(unix.SYS_UNSHARE, 0, 0, 0); e != 0 && first == 0 {
						first = e
					}
				}
				errs <- first
			}()
		}
		var first unix.Errno
		for range n {
			if e := <-errs; e != 0 && first == 0 {
				first = e
			}
		}
		return errnoOrNil(first)
	}
	fail(fmt.Sprintf("unknown badexec kind %q", kind))
	return nil
}

func errnoOrNil(e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// tryUffdExec executes a name in a page registered, missing-mode, with a
// userfaultfd no thread reads.
func tryUffdExec() error {
	const userModeOnly = 1
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|userModeOnly, 0, 0)
	if e != 0 {
		return e
	}
	defer unix.Close(int(fd))
	api := struct{ API, Features, Ioctls uint64 }{API: 0xaa}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, 0xc018aa3f /* UFFDIO_API */, uintptr(unsafe.Pointer(&api))); e != 0 {
		return e
	}
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	reg := struct{ Start, Len, Mode, Ioctls uint64 }{Start: uint64(uintptr(unsafe.Pointer(&mem[0]))), Len: uint64(page), Mode: 1 /* MISSING */}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, 0xc020aa00 /* UFFDIO_REGISTER */, uintptr(unsafe.Pointer(&reg))); e != 0 {
		return e
	}
	_, _, e = unix.RawSyscall(unix.SYS_EXECVE, uintptr(reg.Start), 0, 0)
	return errnoOrNil(e)
}
