package main

import (
	"fmt"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tryBadExec makes an execve whose file name a seccomp agent reading the
// caller's memory cannot take at face value:
//
//	unmapped  the name points at an address nothing is mapped at
//	nonul     a whole page of 'a' with no NUL, followed by an unmapped page
//	nr N      no execve: raw system call number N with zero arguments
//	          (a number no architecture table names)
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
