package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/seccomp"
	"palisade.dev/palisade/testing/require"
)

// goProgram is what `palisade-init seccomp` accepts as a program: the
// shim's lower-case hex of 1 to 4096 eight-byte records.
func goProgram(s string) ([]byte, bool) {
	if strings.ToLower(s) != s {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) == 0 || len(b)%8 != 0 || len(b)/8 > 4096 {
		return nil, false
	}
	return b, true
}

var programCases = []string{"", "0", "00", "0000000000000000", "000000000000000", "00000000000000000", "0600000000000000",
	"06000000000000ff", "06000000000000FF", "06000000000000fg", "0600000000000000 ", strings.Repeat("06000000ffff7f00", 4096), strings.Repeat("06000000ffff7f00", 4097)}

func checkProgram(t *testing.T, s string) {
	got, gok := cProgram(s)
	want, wok := goProgram(s)
	if gok != wok || string(got) != string(want) {
		t.Errorf("program %.40q: C %x %v, Go %x %v", s, got, gok, want, wok)
	}
}

func TestProgramDecoderMatchesGo(t *testing.T) {
	for _, s := range programCases {
		checkProgram(t, s)
	}
}

func FuzzProgram(f *testing.F) {
	for _, s := range programCases {
		f.Add(s)
	}
	f.Fuzz(checkProgram)
}

// unreadableHelper copies the built helper, mode 0111, into a directory
// others may search: what the shim mounts (a copy nobody may read, so the
// kernel execs it non-dumpable).
func unreadableHelper(t *testing.T) string {
	helper := startableHelper(t)
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // t.TempDir's are 0700
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(helper)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "palisade-init")
	if err := os.WriteFile(out, data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o111); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSeccomp runs `palisade-init seccomp` as an unprivileged user, as in a
// container: the program is loaded (uname(2) fails, the rest runs), also
// after an exec allow-list, and refused when the helper is readable.
func TestSeccomp(t *testing.T) {
	if os.Getuid() != 0 {
		require.Skipf(t, "needs root to run the helper as another user")
	}
	helper := unreadableHelper(t)
	uname, err := exec.LookPath("uname")
	if err != nil {
		require.Skipf(t, "no uname(1) here")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		require.Skipf(t, "no sh(1) here")
	}
	eperm := uint(syscall.EPERM)
	prog, err := seccomp.NewProgram(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow, Architectures: []specs.Arch{seccomp.Arches[runtime.GOARCH].Arch},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"uname"}, Action: specs.ActErrno, ErrnoRet: &eperm}},
	}, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	p := hex.EncodeToString(prog)
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cases := []struct {
		args []string
		attr *syscall.SysProcAttr
		code int
		out  string
	}{
		{[]string{"seccomp", p, "--", sh, "-c", "echo ran"}, nobody, 0, "ran"},
		{[]string{"seccomp", p, "--", uname}, nobody, 1, "not permitted"},
		{[]string{"seccomp", p, "--", "sh", "-c", "uname; echo after $?"}, nobody, 0, "after 1"},
		{[]string{"seccomp", p, "--", "no-such-command-here"}, nobody, 126, `palisade-init: "no-such-command-here" not found in the container`},
		{[]string{"seccomp", p, "--", uname}, nil, 126, "the process is dumpable"}, // root reads the copy
		{[]string{"seccomp", "zz", "--", uname}, nobody, 2, "usage: palisade-init seccomp"},
		{[]string{"seccomp", p, "--"}, nobody, 2, "usage: palisade-init seccomp"},
		{[]string{"seccomp", p, uname, "x"}, nobody, 2, "usage: palisade-init seccomp"},
		{[]string{"seccomp", p}, nobody, 2, "usage: palisade-init seccomp"},
	}
	if _, err := exec.Command(helper, "exec", "--allow", "/", "--", "true").CombinedOutput(); err == nil {
		// with an exec allow-list: Landlock first, then the filter
		cases = append(cases,
			struct {
				args []string
				attr *syscall.SysProcAttr
				code int
				out  string
			}{[]string{"seccomp", p, "exec", "--allow", uname, "--", uname}, nobody, 1, "not permitted"},
			struct {
				args []string
				attr *syscall.SysProcAttr
				code int
				out  string
			}{[]string{"seccomp", p, "exec", "--allow", uname, "--", sh, "-c", "echo ran"}, nobody, 126, "permission denied"},
		)
	}
	for _, c := range cases {
		cmd := exec.Command(helper, c.args...)
		cmd.SysProcAttr = c.attr
		cmd.Dir = "/"
		code, out := exitOf(t, cmd)
		if code != c.code || !strings.Contains(out, c.out) {
			t.Errorf("palisade-init %.60q: exit %d, output %q; want exit %d and %q", c.args, code, out, c.code, c.out)
		}
	}
}

// compile writes what seccomp.NewProgram builds, and refuses what is not a
// native-only filter it can compile.
func TestCompile(t *testing.T) {
	helper := startableHelper(t)
	native := seccomp.Arches[runtime.GOARCH].Arch
	eperm := uint(syscall.EPERM)
	sc := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{native},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"openat", "read"}, Action: specs.ActAllow}, {Names: []string{"mount"}, Action: specs.ActErrno, ErrnoRet: &eperm}}}
	want, err := seccomp.NewProgram(sc, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(sc)
	cmd := exec.Command(helper, "compile")
	cmd.Stdin = bytes.NewReader(data)
	got, err := cmd.Output()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("compile: %v; %d bytes, want %d", err, len(got), len(want))
	}
	compat := *sc
	compat.Architectures = append(compat.Architectures, seccomp.Arches[runtime.GOARCH].Compat[0].Arch)
	data2, _ := json.Marshal(&compat)
	for _, in := range []string{"", "{", `{"defaultAction":"SCMP_ACT_ERRNO","nope":1}`, string(data2)} {
		cmd := exec.Command(helper, "compile")
		cmd.Stdin = strings.NewReader(in)
		if code, out := exitOf(t, cmd); code != 1 || !strings.Contains(out, "palisade-init: compile:") {
			t.Errorf("compile of %.40q: exit %d, %q", in, code, out)
		}
	}
}
