package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Actions against palisade-init's seccomp delivery (libshim/launch): the
// helper's mount in the container, and the moment between an exec
// process's start and its filter.
//
//	unlink PATH        unlink(2)
//	rename SRC DST     rename(2)
//	chmod PATH         chmod(2) to 0755
//	mountover PATH     mount a tmpfs over PATH's directory
//	catch SECONDS N    stop unfiltered processes of the container and attack them
//
// It reports whether it knows action.
func tryDelivery(action string, args []string) (string, bool, error) {
	switch action {
	case "unlink":
		return "", true, unix.Unlink(firstArg(args))
	case "rename":
		if len(args) != 2 {
			fail("usage: probe try rename SRC DST")
		}
		return "", true, unix.Rename(args[0], args[1])
	case "chmod":
		return "", true, unix.Chmod(firstArg(args), 0o755)
	case "mountover":
		return "", true, unix.Mount("tmpfs", filepath.Dir(firstArg(args)), "tmpfs", 0, "")
	case "catch":
		if len(args) != 2 {
			fail("usage: probe try catch SECONDS N")
		}
		secs, err1 := strconv.Atoi(args[0])
		n, err2 := strconv.Atoi(args[1])
		if err1 != nil || err2 != nil {
			fail("usage: probe try catch SECONDS N")
		}
		d, err := catchUnfiltered(time.Duration(secs)*time.Second, n)
		return d, true, err
	}
	return "", false, nil
}

// catchUnfiltered watches the container's processes for up to d. Each
// process it finds without a seccomp filter (Seccomp: 0: runc init, then
// palisade-init until it loads the container's program) it follows: stops
// it with SIGSTOP (same user: it may), looks, lets it go on, again and
// again, until it runs palisade-init's helper (argv[0] /dev/.palisade-init)
// still without a filter, has a filter, or is gone. Each process so caught
// unfiltered, it attacks while stopped: write its memory through
// /proc/PID/mem and process_vm_writev, trace it, take its file descriptors
// (pidfd_getfd), read its environment, open its root. It stops after n
// helpers caught. The detail lists each catch and each attempt's errno
// ("helpers=K" first); the outcome is "ok" (the attack worked) if any
// attempt got past the kernel's permission check.
func catchUnfiltered(d time.Duration, n int) (string, error) {
	self := os.Getpid()
	done := map[int]bool{}
	var caught []string
	helpers, worked := 0, false
	deadline := time.Now().Add(d)
	for helpers < n && time.Now().Before(deadline) {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return "", err
		}
		for _, ent := range ents {
			pid, err := strconv.Atoi(ent.Name())
			if err != nil || pid == self || done[pid] || seccompMode(pid) != "0" {
				continue
			}
			done[pid] = true
			what, res, ok := follow(pid)
			if what == "" {
				continue
			}
			worked = worked || ok
			if what == helperPath {
				helpers++
			}
			caught = append(caught, fmt.Sprintf("%d(%s):%s", pid, what, res))
		}
	}
	detail := fmt.Sprintf("helpers=%d %s", helpers, strings.Join(caught, " "))
	if worked {
		return detail, nil
	}
	return detail, errors.New(detail)
}

const helperPath = "/dev/.palisade-init"

// follow stops pid over and over until it is palisade-init's helper
// without a filter (attacked then), or filtered, or gone. It returns what
// it attacked ("" if nothing), the attempts and whether one worked.
func follow(pid int) (string, string, bool) {
	var first string
	var res string
	var ok bool
	for range 200000 {
		if err := unix.Kill(pid, unix.SIGSTOP); err == unix.EPERM {
			continue // runc init, still root: wait for it to become the exec's user
		} else if err != nil {
			return first, res, ok // gone
		}
		stopped := waitStopped(pid)
		mode, a0 := seccompMode(pid), argv0(pid)
		switch {
		case !stopped || mode != "0":
		case a0 == helperPath:
			r, k := attack(pid)
			_ = unix.Kill(pid, unix.SIGCONT)
			return a0, r + tail(res), ok || k
		case first == "":
			first = a0
			res, ok = attack(pid)
		}
		_ = unix.Kill(pid, unix.SIGCONT)
		if mode != "0" {
			return first, res, ok
		}
	}
	return first, res, ok
}

func tail(res string) string {
	if res == "" {
		return ""
	}
	return " (before: " + res + ")"
}

func seccompMode(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Seccomp:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func waitStopped(pid int) bool {
	for range 2000 {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i > 0 && len(s) > i+2 && s[i+2] == 'T' {
			return true
		}
		time.Sleep(10 * time.Microsecond)
	}
	return false
}

func argv0(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	a, _, _ := strings.Cut(string(data), "\x00")
	return a
}

// attack tries each way in; it reports each errno and whether any got
// past the permission check (EFAULT or EIO from a bogus address count as
// past it).
func attack(pid int) (string, bool) {
	var res []string
	ok := false
	note := func(name string, err error) {
		var e unix.Errno
		switch {
		case err == nil:
			ok = true
			res = append(res, name+"=ok")
		case errors.Is(err, unix.EFAULT) || errors.Is(err, unix.EIO):
			ok = true
			res = append(res, name+"=past-check:"+err.Error())
		case errors.As(err, &e):
			res = append(res, name+"="+unix.ErrnoName(e))
		default:
			res = append(res, name+"="+err.Error())
		}
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/mem", pid), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	note("mem", err)
	buf := []byte{0xcc}
	_, err = unix.ProcessVMWritev(pid, []unix.Iovec{{Base: &buf[0], Len: 1}}, []unix.RemoteIovec{{Base: 0x10000, Len: 1}}, 0)
	note("vm_writev", err)
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(pid), 0, 0, 0, 0)
	if e == 0 {
		_, _, _ = unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(pid), 0, 0, 0, 0)
		note("ptrace", nil)
	} else {
		note("ptrace", e)
	}
	if pfd, err := unix.PidfdOpen(pid, 0); err != nil {
		note("pidfd_open", err)
	} else {
		got, err := unix.PidfdGetfd(pfd, 0, 0)
		if err == nil {
			unix.Close(got)
		}
		note("pidfd_getfd", err)
		unix.Close(pfd)
	}
	f, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err == nil && len(f) == 0 {
		err = fmt.Errorf("empty")
	}
	note("environ", unwrapErrno(err))
	rfd, err := unix.Open(fmt.Sprintf("/proc/%d/root/", pid), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(rfd)
	}
	note("root", err)
	return strings.Join(res, ","), ok
}

func unwrapErrno(err error) error {
	var pe *os.PathError
	if err != nil && errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
