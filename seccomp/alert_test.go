//go:build cgo

package seccomp

import (
	"encoding/json"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
	"palisade.dev/palisade/testing/require"
)

// Alert mode hands what the default profile denies to the listener, keeps
// what it allows, and keeps the conditions it cannot invert (clone's flags,
// clone3's ENOSYS) and the killed compat ABIs; the enforce filter it was
// made from is left as it was.
func TestAlertFilter(t *testing.T) {
	if api, err := libseccomp.GetAPI(); err != nil || api < 5 {
		// qemu-user (make test-arm64) does not pass the seccomp system
		// call's probes through: libseccomp then reports API level 1 and
		// builds no filter with SCMP_ACT_NOTIFY
		require.Skipf(t, "libseccomp API level %d (%v) here, below 5: no user-space notification to build filters with; a native kernel reports 6", api, err)
	}
	l, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, goarch := range []string{"amd64", "arm64"} {
		enforce, err := Resolve(l, goarch, nil, NativeOnly)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := json.Marshal(enforce)
		alert, recorded := Alert(enforce, "/run/palisade/alert/x.sock", "execve", "execveat", "unshare")
		if strings.Join(recorded, " ") != "execve execveat" {
			t.Errorf("%s: recorded-only calls %v, want execve and execveat (unshare is denied)", goarch, recorded)
		}
		if after, _ := json.Marshal(enforce); string(after) != string(before) {
			t.Fatalf("%s: Alert modified the enforce filter", goarch)
		}
		if alert.ListenerPath != "/run/palisade/alert/x.sock" || alert.DefaultAction != enforce.DefaultAction {
			t.Fatalf("%s: listener %q, default %s", goarch, alert.ListenerPath, alert.DefaultAction)
		}
		f, err := Compile(alert, goarch)
		if err != nil {
			t.Fatalf("%s: %v", goarch, err)
		}
		for _, c := range []struct {
			name string
			args []uint64
			want string
		}{
			{"unshare", []uint64{0}, "notify"},                                          // denied by palisade's deviations
			{"unshare", []uint64{unix.CLONE_NEWUSER | unix.CLONE_NEWNS}, "errno EPERM"}, // a user namespace: still refused
			{"keyctl", nil, "errno EPERM"},                                              // keyrings are not namespaced: still refused
			{"add_key", nil, "errno EPERM"},
			{"request_key", nil, "errno EPERM"},
			{"io_uring_setup", nil, "errno EPERM"}, // exploit-prone kernel code: still refused
			{"userfaultfd", nil, "errno EPERM"},
			{"perf_event_open", nil, "errno EPERM"},
			{"bpf", nil, "errno EPERM"},
			{"kcmp", nil, "notify"},                                // ditto
			{"vm86", nil, "absent"},                                // not on these architectures' native ABI
			{"nfsservctl", nil, "notify"},                          // named by no rule: the default action
			{"execve", nil, "notify"},                              // allowed, recorded
			{"read", nil, "allow"},                                 // allowed
			{"write", nil, "allow"},                                // never handed to a listener
			{"clone", []uint64{unix.CLONE_NEWUSER}, "errno EPERM"}, // argument conditions stay enforced
			{"clone", []uint64{uint64(unix.SIGCHLD)}, "allow"},
			{"clone3", nil, "errno ENOSYS"},
		} {
			if goarch == "arm64" && c.name == "nfsservctl" {
				continue
			}
			v, err := f.Check(c.name, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			if v.Action != c.want && (c.want != "absent" || !v.Absent) {
				t.Errorf("%s %s%v: %s, want %s", goarch, c.name, c.args, v.Action, c.want)
			}
		}
		compat, err := f.CheckCompat("read")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range compat {
			if v.Action != "kill-process" && v.Action != "kill-thread" {
				t.Errorf("%s: a %s call in alert mode: %s, want killed", goarch, v.ABI, v.Action)
			}
		}
	}
}

func TestSyscallName(t *testing.T) {
	if n, a := SyscallName(unix.AUDIT_ARCH_X86_64, 272); n != "unshare" || a != specs.ArchX86_64 {
		t.Errorf("x86_64 272: %s %s", n, a)
	}
	if n, a := SyscallName(unix.AUDIT_ARCH_AARCH64, 97); n != "unshare" || a != specs.ArchAARCH64 {
		t.Errorf("aarch64 97: %s %s", n, a)
	}
	if n, _ := SyscallName(unix.AUDIT_ARCH_X86_64, 100000); n != "" {
		t.Errorf("an unknown number is named %q", n)
	}
}
