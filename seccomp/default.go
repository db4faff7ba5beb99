package seccomp

import (
	"slices"
	"sort"
	"sync"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultName is the built-in profile's name.
const DefaultName = "palisade-default"

// Deviation is one way palisade's default profile is stricter than Docker's.
type Deviation struct {
	Names []string
	Why   string
}

// Deviations are the syscalls palisade's default denies although Docker's
// default allows them (always, or given a capability). Each is denied on
// every architecture and whatever capabilities the container holds, with
// EPERM. The table is the documentation: docs/seccomp.md renders it.
var Deviations = []Deviation{
	{[]string{"unshare", "setns"}, "creating or joining namespaces is the first step of most container escapes and of unprivileged user-namespace exploits"},
	{[]string{"mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "pivot_root"},
		"mounting (old and new mount API) rearranges what the container sees of the host"},
	{[]string{"bpf"}, "eBPF programs run in the kernel; verifier bugs are a recurring escalation path"},
	{[]string{"perf_event_open"}, "performance counters leak kernel and co-tenant information and have a long CVE record"},
	{[]string{"keyctl", "add_key", "request_key"}, "kernel keyrings are not namespaced: keys could leak between containers"},
	{[]string{"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"},
		"reading or steering other processes' memory and descriptors; Docker allows ptrace on kernels >= 4.8"},
	{[]string{"userfaultfd"}, "used to win race conditions in kernel exploits"},
	{[]string{"io_uring_setup", "io_uring_enter", "io_uring_register"},
		"io_uring performs operations seccomp cannot see and has been a major source of kernel bugs"},
	{[]string{"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load"}, "loading kernel code or a new kernel"},
	{[]string{"open_by_handle_at"}, "opens host files by handle, bypassing the mount namespace (the 'shocker' escape)"},
	{[]string{"syslog"}, "the kernel log leaks addresses and host activity"},
	{[]string{"acct"}, "process accounting is host-wide"},
	{[]string{"swapon", "swapoff"}, "swap is host-wide"},
	{[]string{"reboot"}, "rebooting is for the host"},
	{[]string{"settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime", "clock_adjtime64"},
		"the clock is the host's; adjtimex and clock_adjtime are denied too, read-only uses included"},
	{[]string{"lookup_dcookie", "quotactl", "quotactl_fd", "fanotify_init", "iopl", "ioperm", "vhangup"},
		"host-wide or hardware-level interfaces no container needs"},
}

// neverByCapability keeps namespace flags denied for clone and clone3 even
// when a capability would make Docker's profile allow them.
var neverByCapability = []string{"clone", "clone3"}

// DefaultProfile is palisade's built-in profile: Docker's default
// (moby/profiles) with every Deviation denied, and no rule relaxed by a
// capability for clone and clone3 (clone with namespace flags is denied,
// clone3 answers ENOSYS so that libc falls back to clone). It is built fresh
// on each call; seccomp/palisade-default.json is generated from it and a
// test fails when the two drift.
func DefaultProfile() *Profile {
	p := mobyseccomp.DefaultProfile()
	var denied []string
	for _, d := range Deviations {
		denied = append(denied, d.Names...)
	}
	sort.Strings(denied)
	var rules []*mobyseccomp.Syscall
	for _, r := range p.Syscalls {
		r.Names = slices.DeleteFunc(r.Names, func(n string) bool {
			return slices.Contains(denied, n) ||
				(r.Includes != nil && len(r.Includes.Caps) > 0 && slices.Contains(neverByCapability, n))
		})
		if r.Excludes != nil && len(r.Excludes.Caps) > 0 {
			// Docker lifts these restrictions (clone's flag mask, clone3's
			// ENOSYS) for CAP_SYS_ADMIN; palisade never does.
			r.Excludes.Caps = nil
			if len(r.Excludes.Arches) == 0 && r.Excludes.MinKernel == nil {
				r.Excludes = nil
			}
		}
		if len(r.Names) > 0 {
			rules = append(rules, r)
		}
	}
	eperm := uint(unix.EPERM)
	rules = append(rules, &mobyseccomp.Syscall{
		LinuxSyscall: specs.LinuxSyscall{Names: denied, Action: specs.ActErrno, ErrnoRet: &eperm},
		Comment:      "palisade: denied whatever the capabilities (see docs/seccomp.md)",
	})
	p.Syscalls = rules
	return p
}

// Default is the validated built-in profile, computed once.
var Default = sync.OnceValues(func() (*Loaded, error) {
	return Validate(DefaultName, "builtin:"+DefaultName, DefaultProfile())
})
