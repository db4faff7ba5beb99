package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/seccompagent"
)

// ownerFile holds the PID of the process that owns an environment directory.
const ownerFile = "owner.pid"

// CleanStale tears down environments left by runs that died (a killed or
// timed-out test binary), so they never pile up on a machine.
func CleanStale(t *Tools) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not an environment directory
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && alive(pid) {
			continue
		}
		_ = teardown(dir, t.Runc)
	}
}

func alive(pid int) bool {
	return pid > 0 && unix.Kill(pid, 0) == nil
}

// teardown removes everything an environment in dir may have left: its
// containerd, every runc container under its runc root, every process whose
// command line names dir (shims), every mount below dir, and dir itself.
func teardown(dir, runc string) error {
	if b, err := os.ReadFile(filepath.Join(dir, "containerd.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && cmdlineContains(pid, dir) {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	roots, _ := filepath.Glob(filepath.Join(dir, "runc*", "*"))
	for _, root := range roots {
		out, _ := exec.Command(runc, "--root", root, "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			_ = exec.Command(runc, "--root", root, "delete", "-f", id).Run()
		}
	}
	for _, pid := range ProcessesMentioning(dir) {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	var errs []error
	for _, m := range MountsUnder(dir) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func cmdlineContains(pid int, s string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), s)
}

// ProcessesMentioning lists the PIDs whose command line contains s.
func ProcessesMentioning(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmdlineContains(pid, s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// MountsUnder lists the mount points at or below dir, deepest first.
func MountsUnder(dir string) []string {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil
	}
	out := make([]string, len(infos))
	for i, m := range infos {
		out[i] = m.Mountpoint
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// Leftovers lists what remains of container id after it was deleted: mounts,
// its bundle, runc state, cgroups and shim processes. Empty means clean.
func (e *Env) Leftovers(id string) []string {
	var left []string
	bundle := filepath.Join(e.Dir, "state", "io.containerd.runtime.v2.task", e.Namespace, id)
	for _, m := range MountsUnder(bundle) {
		left = append(left, "mount "+m)
	}
	if _, err := os.Stat(bundle); err == nil {
		left = append(left, "bundle "+bundle)
	}
	if sock := seccompagent.SocketPath(bundle); exists(sock) {
		left = append(left, "seccomp agent socket "+sock)
	}
	if st := filepath.Join(e.RuncRoot, e.Namespace, id); exists(st) {
		left = append(left, "runc state "+st)
	}
	cgs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", e.Namespace, id))
	for _, cg := range cgs {
		left = append(left, "cgroup "+cg)
	}
	if cg := filepath.Join("/sys/fs/cgroup", e.Namespace, id); exists(cg) {
		left = append(left, "cgroup "+cg)
	}
	for _, pid := range ProcessesMentioning(e.Address) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(b), "\x00")
		for i := range args {
			if args[i] == "-id" && i+1 < len(args) && args[i+1] == id {
				left = append(left, fmt.Sprintf("shim process %d", pid))
			}
		}
	}
	return left
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
