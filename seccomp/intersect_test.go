//go:build cgo

package seccomp

import (
	"strings"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// severity orders Verdict actions as the kernel ranks them.
func severity(action string) int {
	switch {
	case action == "allow":
		return 0
	case action == "log":
		return 1
	case action == "trace":
		return 2
	case action == "notify":
		return 3
	case strings.HasPrefix(action, "errno"):
		return 4
	case action == "trap":
		return 5
	case action == "kill-thread":
		return 6
	}
	return 7
}

func resolved(t *testing.T, l *Loaded) *specs.LinuxSeccomp {
	t.Helper()
	sc, err := Resolve(l, "amd64", nil, NativeOnly)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func compiled(t *testing.T, sc *specs.LinuxSeccomp) *Filter {
	t.Helper()
	f, err := Compile(sc, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The combined filter is never weaker than either filter, for every system
// call either names and arguments that hit their conditional rules (clone
// flags with and without namespace bits, personality values, socket
// families); and where both agree it says the same.
func TestIntersectNeverLooser(t *testing.T) {
	ours, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	docker, err := Validate("docker", "moby", mobyseccomp.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	denyMkdir := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}}}
	allowAll := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64}}
	node := resolved(t, ours)
	argSets := [][]uint64{nil, {0}, {unix.CLONE_NEWUSER}, {unix.CLONE_NEWNS | uint64(unix.SIGCHLD)}, {uint64(unix.SIGCHLD)}, {8}, {0xffffffff}, {unix.AF_VSOCK}, {unix.AF_INET}, {1, 0x5401}}
	for _, c := range []struct {
		name     string
		workload *specs.LinuxSeccomp
	}{{"docker default", resolved(t, docker)}, {"deny mkdir", denyMkdir}, {"allow all", allowAll}} {
		both := Intersect(node, c.workload, specs.ArchX86_64)
		fn, fw, fb := compiled(t, node), compiled(t, c.workload), compiled(t, both)
		names := map[string]bool{}
		for _, sc := range []*specs.LinuxSeccomp{node, c.workload} {
			for _, r := range sc.Syscalls {
				for _, n := range r.Names {
					names[n] = true
				}
			}
		}
		names["mkdir"], names["getpid"], names["open_by_handle_at"] = true, true, true
		for n := range names {
			for _, args := range argSets {
				vn, err := fn.Check(n, args...)
				if err != nil || vn.Absent {
					continue
				}
				vw, _ := fw.Check(n, args...)
				vb, _ := fb.Check(n, args...)
				want := max(severity(vn.Action), severity(vw.Action))
				if got := severity(vb.Action); got < want {
					t.Errorf("%s: %s%v: combined %s, node %s, workload %s: looser than one of them", c.name, n, args, vb.Action, vn.Action, vw.Action)
				}
				if vn.Action == vw.Action && vb.Action != vn.Action && c.name != "docker default" {
					t.Errorf("%s: %s%v: combined %s, both say %s", c.name, n, args, vb.Action, vn.Action)
				}
			}
		}
	}
}

// A pod's profile that denies mkdir is kept (the regression the issue
// reports); the node's denials stay; what both allow still works.
func TestIntersectKeepsTheStricter(t *testing.T) {
	ours, _ := Default()
	node := resolved(t, ours)
	pod := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}}}
	f := compiled(t, Intersect(node, pod, specs.ArchX86_64))
	for call, want := range map[string]string{"mkdir": "errno EPERM", "mkdirat": "errno EPERM", "read": "allow", "mount": "errno EPERM", "keyctl": "errno EPERM"} {
		if v, _ := f.Check(call); v.Action != want {
			t.Errorf("%s = %s, want %s", call, v.Action, want)
		}
	}
	if v, _ := f.Check("clone", unix.CLONE_NEWUSER); v.Action == "allow" {
		t.Errorf("clone(CLONE_NEWUSER) allowed by the combined filter")
	}
	if v, _ := f.Check("clone", uint64(unix.SIGCHLD)); v.Action != "allow" {
		t.Errorf("a plain clone = %s, want allow", v.Action)
	}
	// a workload's listener is not the node's: notify becomes EPERM
	notify := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActNotify}}}
	both := Intersect(node, notify, specs.ArchX86_64)
	if both.ListenerPath != "" {
		t.Error("the workload's listener was kept")
	}
	if v, _ := compiled(t, both).Check("getpid"); v.Action != "errno EPERM" {
		t.Errorf("getpid under a workload notify rule = %s, want errno EPERM", v.Action)
	}
}

// A pod's profile whose architectures omit the native one (written for
// arm64 nodes, run on amd64) still filters native calls, as runc applies
// it: the combined filter covers the native architecture, with the pod's
// denial, and admits no compat ABI the node does not.
func TestIntersectNativeAlwaysCovered(t *testing.T) {
	ours, _ := Default()
	node := resolved(t, ours)
	pod := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchAARCH64, specs.ArchARM, specs.ArchX86},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}}}
	both := Intersect(node, pod, specs.ArchX86_64)
	if len(both.Architectures) != 1 || both.Architectures[0] != specs.ArchX86_64 {
		t.Fatalf("architectures %v, want the native one only", both.Architectures)
	}
	if v, _ := compiled(t, both).Check("mkdir"); !strings.HasPrefix(v.Action, "errno") {
		t.Errorf("mkdir: %s, want the pod's errno", v.Action)
	}
}

// A rule that compares one argument twice is, as runc installs it, the
// disjunction of its conditions. Combining it with the other filter's
// conditions on another argument must not make each condition enough on
// its own: the combined filter stays as strict as each filter.
func TestIntersectRepeatedArgumentNotMerged(t *testing.T) {
	eq := func(i uint, v uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Value: v, Op: specs.OpEqualTo}
	}
	node := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{eq(0, 8), eq(0, 0)}}}}
	pod := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{eq(1, 7)}}}}
	fn, fp, fb := compiled(t, node), compiled(t, pod), compiled(t, Intersect(node, pod, specs.ArchX86_64))
	for _, args := range [][]uint64{{8, 7}, {0, 7}, {8, 1}, {3, 7}, {3, 1}} {
		vn, _ := fn.Check("personality", args...)
		vp, _ := fp.Check("personality", args...)
		vb, _ := fb.Check("personality", args...)
		if severity(vb.Action) < max(severity(vn.Action), severity(vp.Action)) {
			t.Errorf("personality%v: combined %s, node %s, pod %s: looser", args, vb.Action, vn.Action, vp.Action)
		}
	}
}
