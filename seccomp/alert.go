package seccomp

import (
	"slices"
	"sort"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Alert returns the alert-mode form of an enforce filter: every system call
// the filter denies outright — named in a rule whose action is not allow or
// log and that has no argument condition, or known to libseccomp on one of
// the filter's architectures and named by no rule at all (the default
// action) — is handed to the listener at listener instead (SCMP_ACT_NOTIFY),
// and so are the allowed calls named in record (execve, execveat, to record
// what runs). What stays as the enforce filter has it:
//
//   - the default action, for numbers libseccomp does not know (runc refuses
//     NOTIFY as the default action, and unknown numbers are not a workload's
//     ordinary calls);
//   - rules with argument conditions (clone with namespace flags): a call
//     that fails their condition falls to the default action, and libseccomp
//     cannot express "notify when this condition fails";
//   - rules that answer ENOSYS (clone3, so that libc falls back to clone,
//     whose flags are checked);
//   - write, which runc may not hand to a listener (runc init writes the
//     listener's descriptor number with it);
//   - the calls no capability bounds that reach kernel state a container
//     does not own or exploit-prone kernel code (stillDenied): the kernel
//     keyrings, which are not namespaced, io_uring, userfaultfd, perf
//     events, eBPF, syslog, modify_ldt; and a new user namespace (unshare with CLONE_NEWUSER),
//     inside which the workload holds every capability and reaches the
//     kernel's mount, network and device-filesystem code; unshare without
//     that flag is handed over;
//   - the architectures: a compat ABI the filter leaves out is still killed.
//
// The enforce filter is not modified. recorded are the names of record the
// filter allowed: the listener records those calls and nothing else of them.
func Alert(sc *specs.LinuxSeccomp, listener string, record ...string) (alert *specs.LinuxSeccomp, recorded []string) {
	out := *sc
	out.ListenerPath, out.ListenerMetadata = listener, ""
	named := map[string]bool{}
	var notify []string
	out.Syscalls = make([]specs.LinuxSyscall, 0, len(sc.Syscalls)+1)
	for _, r := range sc.Syscalls {
		r.Names = slices.Clone(r.Names)
		r.Args = slices.Clone(r.Args)
		for _, n := range r.Names {
			named[n] = true
		}
		switch {
		case len(r.Args) > 0:
		case r.Action == specs.ActAllow || r.Action == specs.ActLog:
			r.Names = slices.DeleteFunc(r.Names, func(n string) bool {
				if slices.Contains(record, n) {
					notify, recorded = append(notify, n), append(recorded, n)
					return true
				}
				return false
			})
		case r.Action == specs.ActErrno && errnoOf(r.ErrnoRet) == uint(unix.ENOSYS):
		default:
			r.Names = slices.DeleteFunc(r.Names, func(n string) bool {
				if n == "write" || stillDenied[n] {
					return false
				}
				notify = append(notify, n)
				return true
			})
		}
		if len(r.Names) > 0 {
			out.Syscalls = append(out.Syscalls, r)
		}
	}
	for _, a := range sc.Architectures {
		for _, n := range knownSyscalls(a) {
			if !named[n] && n != "write" && !stillDenied[n] {
				notify = append(notify, n)
			}
		}
	}
	sort.Strings(notify)
	notify = slices.Compact(notify)
	var notifyIf []string
	notify = slices.DeleteFunc(notify, func(n string) bool {
		if _, ok := notifyIfClear[n]; ok {
			notifyIf = append(notifyIf, n)
			return true
		}
		return false
	})
	if len(notify) > 0 {
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: notify, Action: specs.ActNotify})
	}
	for _, n := range notifyIf {
		// the call without the flag is handed over; with it, it falls to
		// the default action (the enforce filter denies it outright)
		c := notifyIfClear[n]
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActNotify,
			Args: []specs.LinuxSeccompArg{{Index: c.index, Value: c.flags, ValueTwo: 0, Op: specs.OpMaskedEqual}}})
	}
	return &out, recorded
}

// stillDenied are calls alert mode never lets through: they need no
// capability (or only a host sysctl bounds them) and reach kernel state
// shared with the host and every other container, or kernel code that has
// carried container escapes: the keyrings (not namespaced: a container's
// root would read and write the host root's user keyring), io_uring,
// userfaultfd (the classic race-widening primitive), perf events, eBPF,
// the kernel log and x86's LDT.
var stillDenied = map[string]bool{
	"keyctl": true, "add_key": true, "request_key": true,
	"io_uring_setup": true, "io_uring_enter": true, "io_uring_register": true,
	"userfaultfd": true, "perf_event_open": true, "bpf": true, "syslog": true, "modify_ldt": true,
}

// notifyIfClear are calls alert mode hands over only when the argument at
// index has none of flags: unshare(CLONE_NEWUSER) needs no capability, and
// inside the new user namespace the workload holds all of them (mount,
// network and device-filesystem code the profile keeps out of reach).
var notifyIfClear = map[string]struct {
	index uint
	flags uint64
}{"unshare": {0, unix.CLONE_NEWUSER}}

// syscallRanges are where an architecture's system call numbers lie: the
// ordinary table, x32's (bit 30 set) and ARM's private calls.
var syscallRanges = map[specs.Arch][][2]int{
	specs.ArchX86_64:  {{0, 1024}},
	specs.ArchX86:     {{0, 1024}},
	specs.ArchX32:     {{0x40000000, 0x40000000 + 1024}},
	specs.ArchAARCH64: {{0, 1024}},
	specs.ArchARM:     {{0, 1024}, {0x0f0000, 0x0f0010}},
}

var known = struct {
	sync.Mutex
	m map[specs.Arch][]string
}{m: map[specs.Arch][]string{}}

// knownSyscalls lists the names libseccomp knows on an architecture, once.
func knownSyscalls(a specs.Arch) []string {
	known.Lock()
	defer known.Unlock()
	if l, ok := known.m[a]; ok {
		return l
	}
	names := namesIn(a, syscallName)
	known.m[a] = names
	return names
}

// namesIn names every number of an architecture's ranges with name.
func namesIn(a specs.Arch, name func(int32, ScmpArch) (string, error)) []string {
	var names []string
	if scmp, err := archFromString(scmpArchNames[a]); err == nil && scmpArchNames[a] != "" {
		for _, r := range syscallRanges[a] {
			for nr := r[0]; nr < r[1]; nr++ {
				if n, err := name(int32(nr), scmp); err == nil && n != "" {
					names = append(names, n)
				}
			}
		}
	}
	return names
}

// SyscallName names system call nr as the kernel reported it in a seccomp
// notification (seccomp_data.arch is an AUDIT_ARCH_ value): the name and
// the OCI architecture, or "" when libseccomp does not know it.
func SyscallName(audit uint32, nr int32) (name string, arch specs.Arch) {
	for _, t := range Arches {
		if audit == auditArch[t.GoArch] {
			if t.GoArch == "amd64" && nr&0x40000000 != 0 {
				return nameOf(ArchX32, nr), specs.ArchX32
			}
			return nameOf(t.Scmp, nr), t.Arch
		}
		for _, c := range t.Compat {
			if audit == c.Audit && c.Name != "x32" {
				return nameOf(c.Scmp, nr), c.Arch
			}
		}
	}
	return "", ""
}

func nameOf(a ScmpArch, nr int32) string {
	n, err := syscallName(nr, a)
	if err != nil {
		return ""
	}
	return n
}
