package launch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/seccomp"
	"palisade.dev/palisade/testing/require"
)

// compileHere stands in for palisade-init on the host: it answers
// `compile` as cmd/palisade-init does, with seccomp.NewProgram in this
// (cgo) test binary. The end-to-end tests run the real helper.
func compileHere(c *exec.Cmd) ([]byte, error) {
	if len(c.Args) != 2 || c.Args[1] != "compile" {
		return nil, errors.New("unexpected helper command")
	}
	var sc specs.LinuxSeccomp
	if err := json.NewDecoder(c.Stdin).Decode(&sc); err != nil {
		return nil, err
	}
	prog, err := seccomp.NewProgram(&sc, runtime.GOARCH)
	if err != nil {
		fmt.Fprint(c.Stderr, err)
		return nil, errors.New("exit status 1")
	}
	_, err = c.Stdout.Write(prog)
	return nil, err
}

// privateDirs points ProgramDir and HelperDir at fresh directories and
// returns a helper file to copy.
func privateDirs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		require.Skipf(t, "needs root: the helper copies must be root's")
	}
	dir := t.TempDir()
	oldP, oldH := ProgramDir, HelperDir
	ProgramDir, HelperDir = filepath.Join(dir, "programs"), filepath.Join(dir, "helpers")
	t.Cleanup(func() { ProgramDir, HelperDir = oldP, oldH })
	helper := filepath.Join(dir, "palisade-init")
	if err := os.WriteFile(helper, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return helper
}

// restricted is a spec as the pipeline leaves it under the default
// profile.
func restricted(t *testing.T) *specs.Spec {
	t.Helper()
	l, err := seccomp.Default()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := seccomp.Resolve(l, runtime.GOARCH, []string{"CAP_NET_BIND_SERVICE"}, seccomp.NativeOnly)
	if err != nil {
		t.Fatal(err)
	}
	caps := []string{"CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Process: &specs.Process{Args: []string{"/bin/sh", "-c", "true"}, NoNewPrivileges: true,
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}},
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc"}, {Destination: "/dev", Type: "tmpfs", Source: "tmpfs"}},
		Linux: &specs.Linux{Seccomp: sc, Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}}},
	}
}

func TestDeliverWrapsTheProcessAndMountsTheCopy(t *testing.T) {
	helper := privateDirs(t)
	in := restricted(t)
	keep := *in.Process
	out, d, err := deliver(context.Background(), in, helper, compileHere)
	if err != nil || d == nil || d.Program == "" {
		t.Fatalf("deliver: %v %+v", err, d)
	}
	if in.Linux.Seccomp == nil || !slices.Equal(in.Process.Args, keep.Args) || len(in.Mounts) != 2 {
		t.Errorf("deliver modified the pipeline's spec")
	}
	if out.Linux.Seccomp != nil {
		t.Errorf("runc's spec keeps the filter")
	}
	want := append([]string{execguard.HelperPath, "seccomp", d.Program, "--"}, keep.Args...)
	if !slices.Equal(out.Process.Args, want) {
		t.Errorf("args %.80q", out.Process.Args)
	}
	last := out.Mounts[len(out.Mounts)-1]
	if last.Destination != execguard.HelperPath || last.Source != d.Helper || !strings.HasPrefix(d.Helper, HelperDir+"/") {
		t.Errorf("last mount %+v, helper %s", last, d.Helper)
	}
	var st unix.Stat_t
	if err := unix.Stat(d.Helper, &st); err != nil || st.Mode != unix.S_IFREG|0o111 {
		t.Errorf("copy %s: mode %o %v, want 0111", d.Helper, st.Mode, err)
	}
	// the program is the filter, compiled: what NewProgram makes
	prog, err := seccomp.NewProgram(in.Linux.Seccomp, runtime.GOARCH)
	if err != nil || len(prog)/8 != d.Instructions {
		t.Errorf("program of %d instructions, NewProgram %d (%v)", d.Instructions, len(prog)/8, err)
	}

	// behind an exec allow-list: the helper's mount is replaced, its exec
	// command kept after the program
	in2 := restricted(t)
	in2.Process.Args = []string{execguard.HelperPath, "exec", "--allow", "/bin/sh", "--", "/bin/sh"}
	in2.Mounts = append(in2.Mounts, specs.Mount{Destination: execguard.HelperPath, Type: "bind", Source: helper, Options: []string{"bind", "ro"}})
	out2, d2, err := deliver(context.Background(), in2, helper, compileHere)
	if err != nil || d2.Program == "" {
		t.Fatalf("deliver behind an allow-list: %v %+v", err, d2)
	}
	want = append([]string{execguard.HelperPath, "seccomp", d2.Program}, in2.Process.Args[1:]...)
	if !slices.Equal(out2.Process.Args, want) || len(out2.Mounts) != 3 || out2.Mounts[2].Source != d2.Helper {
		t.Errorf("args %.80q, mounts %+v", out2.Process.Args, out2.Mounts)
	}
}

// Each condition that keeps the moment before palisade-init's filter out
// of the container's reach: without it, runc loads the filter.
func TestDeliverLeavesTheFilterToRunc(t *testing.T) {
	helper := privateDirs(t)
	allowUnshare := func(s *specs.Spec) {
		sc := *s.Linux.Seccomp
		sc.Syscalls = append(slices.Clone(sc.Syscalls), specs.LinuxSyscall{Names: []string{"unshare"}, Action: specs.ActAllow})
		s.Linux.Seccomp = &sc
	}
	allowExactly := func(name string, index uint, value uint64) func(*specs.Spec) {
		return func(s *specs.Spec) {
			sc := *s.Linux.Seccomp
			sc.Syscalls = append(slices.Clone(sc.Syscalls), specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: index, Value: value, Op: specs.OpEqualTo}}})
			s.Linux.Seccomp = &sc
		}
	}
	for _, c := range []struct {
		name   string
		change func(*specs.Spec)
		why    string
	}{
		// a rule for exactly the flags `unshare -Urm` passes, or setns into
		// a mount namespace, admits no single flag
		{"unshare-user-and-mount", allowExactly("unshare", 0, unix.CLONE_NEWUSER|unix.CLONE_NEWNS), "lets unshare run"},
		{"setns-mount", allowExactly("setns", 1, unix.CLONE_NEWNS), "lets setns run"},
		// flags no example tries: only reading the rules catches them
		{"unshare-odd-flags", allowExactly("unshare", 0, unix.CLONE_NEWUSER|unix.CLONE_NEWNS|unix.CLONE_FS), "lets unshare run"},
		{"clone-odd-flags", allowExactly("clone", 0, unix.CLONE_NEWUSER|unix.CLONE_VM|unix.CLONE_VFORK), "lets clone run with CLONE_NEWUSER"},
		{"clone3-traced", func(s *specs.Spec) {
			sc := *s.Linux.Seccomp
			sc.Syscalls = append(slices.Clone(sc.Syscalls), specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActTrace})
			s.Linux.Seccomp = &sc
		}, "lets clone3 run"},
		{"clone-mask-without-newuser", func(s *specs.Spec) {
			sc := *s.Linux.Seccomp
			sc.Syscalls = append(slices.Clone(sc.Syscalls), specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: unix.CLONE_NEWNS, ValueTwo: 0, Op: specs.OpMaskedEqual}}})
			s.Linux.Seccomp = &sc
		}, "lets clone run with CLONE_NEWUSER"},
		{"clone-repeated-index", func(s *specs.Spec) {
			// two conditions on argument 0 are two rules: the second admits any flags
			sc := *s.Linux.Seccomp
			sc.Syscalls = append(slices.Clone(sc.Syscalls), specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: nsFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}, {Index: 0, Value: 1, Op: specs.OpGreaterThan}}})
			s.Linux.Seccomp = &sc
		}, "lets clone run with CLONE_NEWUSER"},
		{"default-allow", func(s *specs.Spec) {
			sc := *s.Linux.Seccomp
			sc.DefaultAction = specs.ActAllow
			s.Linux.Seccomp = &sc
		}, "default action lets calls run"},
		{"sys-admin", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		}, "CAP_SYS_ADMIN"},
		{"ptrace", func(s *specs.Spec) { s.Process.Capabilities.Ambient = []string{"CAP_SYS_PTRACE"} }, "CAP_SYS_PTRACE"},
		{"dac-override", func(s *specs.Spec) { s.Process.Capabilities.Effective = []string{"CAP_DAC_OVERRIDE"} }, "CAP_DAC_OVERRIDE"},
		{"dac-read-search", func(s *specs.Spec) { s.Process.Capabilities.Permitted = []string{"CAP_DAC_READ_SEARCH"} }, "CAP_DAC_READ_SEARCH"},
		{"nnp", func(s *specs.Spec) { s.Process.NoNewPrivileges = false }, "no_new_privs"},
		{"selinux", func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2" }, "SELinux"},
		{"apparmor", func(s *specs.Spec) { s.Process.ApparmorProfile = "palisade-x" }, "AppArmor"},
		{"listener", func(s *specs.Spec) { sc := *s.Linux.Seccomp; sc.ListenerPath = "/run/x.sock"; s.Linux.Seccomp = &sc }, "listener"},
		{"flags", func(s *specs.Spec) {
			sc := *s.Linux.Seccomp
			sc.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}
			s.Linux.Seccomp = &sc
		}, "flags"},
		{"shared-pid", func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "/proc/1/ns/pid" }, "shares a PID"},
		{"no-mount-ns", func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:1] }, "shares a PID or mount"},
		{"userns", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, "user namespace"},
		{"no-dev-tmpfs", func(s *specs.Spec) { s.Mounts = s.Mounts[:1] }, "tmpfs at /dev"},
		{"dev-bind-after-tmpfs", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/", Type: "bind", Source: "/srv/shared", Options: []string{"rbind"}})
		}, "a later mount over it"},
		{"shared-propagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "rshared" }, "propagation is shared"},
		{"compat", func(s *specs.Spec) {
			sc := *s.Linux.Seccomp
			sc.Architectures = append(slices.Clone(sc.Architectures), seccomp.Arches[runtime.GOARCH].Compat[0].Arch)
			s.Linux.Seccomp = &sc
		}, "compat ABI"},
		{"unshare-allowed", allowUnshare, "lets unshare run"},
		{"no-helper", nil, "cannot prepare palisade-init"},
	} {
		s := restricted(t)
		h := helper
		if c.change != nil {
			c.change(s)
		} else {
			h = filepath.Join(t.TempDir(), "missing")
		}
		out, d, err := deliver(context.Background(), s, h, compileHere)
		if err != nil || d == nil || d.Program != "" || out != s || !strings.Contains(d.ByRunc, c.why) {
			t.Errorf("%s: %v, %+v; want the spec as it is and runc loading the filter (%q)", c.name, err, d, c.why)
		}
	}
	s := restricted(t)
	s.Linux.Seccomp = nil
	if out, d, err := deliver(context.Background(), s, helper, compileHere); out != s || d != nil || err != nil {
		t.Errorf("no filter: %v %v", d, err)
	}
}

func TestWrapExec(t *testing.T) {
	d := &Seccomp{Program: "0600000000000000"}
	caps := []string{"CAP_NET_BIND_SERVICE"}
	p := &specs.Process{Args: []string{"sh"}, NoNewPrivileges: true, Capabilities: &specs.LinuxCapabilities{Bounding: caps}}
	if err := WrapExec(d, p); err != nil || !slices.Equal(p.Args, []string{execguard.HelperPath, "seccomp", d.Program, "--", "sh"}) {
		t.Errorf("WrapExec: %v %q", err, p.Args)
	}
	p = &specs.Process{Args: []string{execguard.HelperPath, "exec", "--allow", "/bin/sh", "--", "sh"}, NoNewPrivileges: true, Capabilities: &specs.LinuxCapabilities{}}
	if err := WrapExec(d, p); err != nil || !slices.Equal(p.Args, []string{execguard.HelperPath, "seccomp", d.Program, "exec", "--allow", "/bin/sh", "--", "sh"}) {
		t.Errorf("WrapExec behind an allow-list: %v %q", err, p.Args)
	}
	for _, bad := range []*specs.Process{
		{Args: []string{"sh"}},
		{Args: []string{"sh"}, NoNewPrivileges: true, Capabilities: &specs.LinuxCapabilities{Effective: []string{"CAP_SYS_PTRACE"}}},
		{Args: []string{"sh"}, NoNewPrivileges: true, ApparmorProfile: "x"},
		{Args: []string{"sh"}, NoNewPrivileges: true}, // no capabilities set: runc's own would stay
	} {
		args := slices.Clone(bad.Args)
		if err := WrapExec(d, bad); err == nil || !slices.Equal(bad.Args, args) {
			t.Errorf("WrapExec(%+v): %v, args %q", bad, err, bad.Args)
		}
	}
	p = &specs.Process{Args: []string{"sh"}}
	if err := WrapExec(&Seccomp{ByRunc: "x"}, p); err != nil || !slices.Equal(p.Args, []string{"sh"}) {
		t.Errorf("runc's filter: %v %q", err, p.Args)
	}
}

// The copy is made once per version of the installed helper; a program
// kept on the node is used, a damaged one compiled again.
func TestCopiesAndProgramsAreKept(t *testing.T) {
	helper := privateDirs(t)
	a, err := unreadableCopy(helper)
	if err != nil {
		t.Fatal(err)
	}
	b, err := unreadableCopy(helper)
	if err != nil || a != b {
		t.Errorf("second copy %s %v, want %s again", b, err, a)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(helper, later, later); err != nil {
		t.Fatal(err)
	}
	if c, err := unreadableCopy(helper); err != nil || c == a {
		t.Errorf("after the helper changed: %s %v, want a new copy", c, err)
	}

	s := restricted(t)
	_, d, err := deliver(context.Background(), s, helper, compileHere)
	if err != nil || d.Program == "" {
		t.Fatal(err, d)
	}
	key, err := seccomp.ProgramKey(s.Linux.Seccomp, runtime.GOARCH, filepath.Base(d.Helper))
	if err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(ProgramDir, key)
	data, err := os.ReadFile(kept)
	if err != nil {
		t.Fatalf("the program was not kept: %v", err)
	}
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(kept, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := seccomp.ReadProgram(ProgramDir, key); err == nil {
		t.Errorf("a damaged program was read")
	}
	_, d2, err := deliver(context.Background(), s, helper, compileHere)
	if err != nil || d2.Program != d.Program {
		t.Errorf("after damage: %v, program changed %v", err, d2.Program != d.Program)
	}
}

func TestVerifyDeliveredCatchesChanges(t *testing.T) {
	helper := privateDirs(t)
	in := restricted(t)
	out, d, err := deliver(context.Background(), in, helper, compileHere)
	if err != nil || d.Program == "" {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*specs.Spec){
		"program":  func(s *specs.Spec) { s.Process.Args[2] = "0600000000000000" },
		"command":  func(s *specs.Spec) { s.Process.Args[len(s.Process.Args)-1] = "false" },
		"dropped":  func(s *specs.Spec) { s.Process.Args = append(s.Process.Args[:3], s.Process.Args[5:]...) }, // "--" and the command gone
		"filter":   func(s *specs.Spec) { s.Linux.Seccomp = in.Linux.Seccomp },
		"mount":    func(s *specs.Spec) { s.Mounts[len(s.Mounts)-1].Source = helper },
		"not-last": func(s *specs.Spec) { s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x"}) },
		"caps": func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN"}}
		},
	} {
		o := *out
		p := *out.Process
		p.Args = slices.Clone(p.Args)
		o.Process, o.Mounts = &p, slices.Clone(out.Mounts)
		linux := *out.Linux
		o.Linux = &linux
		change(&o)
		if why := verifyDelivered(in, &o, d); why == "" {
			t.Errorf("%s: not caught", name)
		}
	}
	if why := verifyDelivered(in, out, d); why != "" {
		t.Errorf("deliver's own spec: %s", why)
	}
}

// Behind the rules' reading, the compiled program is tried on examples
// too: a filter the reading would pass by mistake is still caught.
func TestCompileTriesNamespaceCalls(t *testing.T) {
	privateDirs(t)
	s := restricted(t)
	sc := *s.Linux.Seccomp
	sc.Syscalls = append(slices.Clone(sc.Syscalls), specs.LinuxSyscall{Names: []string{"unshare"}, Action: specs.ActAllow})
	_, why, err := compile(context.Background(), &sc, "/palisade-init", compileHere)
	if err != nil || !strings.Contains(why, "allows unshare") {
		t.Errorf("compile: %q %v", why, err)
	}
}
