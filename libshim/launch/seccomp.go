package launch

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/seccomp"
)

// How a container's seccomp filter reaches the kernel.
//
// The pipeline decides the filter and writes it into the spec; runc would
// compile it with libseccomp inside `runc init` on every start, and carry
// its ≈ 400 rules through the JSON of every runc process (create, init,
// start, state, delete): together about 13 ms of a start here (see
// docs/benchmarks.md). Where it is safe, the launcher instead has the
// filter compiled once per node (`palisade-init compile`, which runs
// seccomp.NewProgram: the shim is built without libseccomp; kept in
// ProgramDir), removes it
// from the spec runc reads, and makes the container's process — and each
// exec process — start through palisade-init, which loads the program with
// seccomp(2) as the last step before it executes the command:
//
//	/dev/.palisade-init seccomp PROGRAM -- COMMAND...
//	/dev/.palisade-init seccomp PROGRAM exec --allow PATH... -- COMMAND...
//
// The filter the kernel enforces is the same program runc would build
// (libseccomp's, with runc's -ENOSYS stub), and the hardened spec the
// pipeline verified — and the audit record — still name it. What changes is
// the moment it is loaded: after runc executes palisade-init rather than
// before. For that moment to be unreachable from the container, every
// condition below must hold, or runc loads the filter as before:
//
//   - palisade-init is mounted from a copy nobody may read (HelperDir, mode
//     0111): the kernel then executes it non-dumpable, so no process of the
//     container can write into it (/proc/PID/mem, ptrace) before its filter
//     holds; palisade-init refuses to load a filter while dumpable;
//   - no capability that defeats that: CAP_DAC_OVERRIDE or
//     CAP_DAC_READ_SEARCH (read the copy), CAP_SYS_PTRACE (trace a
//     non-dumpable process), CAP_SYS_ADMIN (mount over the helper's path);
//   - the container has its own PID and mount namespaces and no user
//     namespace, and its filter denies creating namespaces (clone, clone3,
//     unshare) and joining them (setns): nothing in it can put another
//     program at the helper's path for a later exec process to run
//     unfiltered;
//   - no_new_privs, no SELinux label or AppArmor profile on the process
//     (their policies would have to allow executing the helper), no seccomp
//     agent, listener or flags, a native-only filter (the default);
//   - the helper's mount point on the container's own /dev tmpfs: the last
//     mount at /dev in the spec, a private rootfs propagation, and — since
//     a symlink can lead a later volume over /dev — the mounts runc really
//     made checked after it creates the container (helpermount.go): a file
//     of a volume another container shares could be unlinked from there,
//     which detaches the helper's mount here, and replaced.
//
// Exec processes of such a container must start through the same helper
// (WrapExec): runc has no filter of the container's to give them.

// ProgramDir and HelperDir hold what the launcher keeps per node: compiled
// programs and palisade-init's unreadable copies. Variables only so that
// tests can use their own.
var (
	ProgramDir = "/run/palisade/seccomp"
	HelperDir  = "/run/palisade/helper"
)

// Seccomp is how a launched container's filter is loaded.
type Seccomp struct {
	// Program is the compiled filter, in hex, as palisade-init takes it;
	// "" when runc loads the filter.
	Program string
	// Helper is the host path of the palisade-init copy mounted at
	// execguard.HelperPath.
	Helper string
	// Instructions is the program's length.
	Instructions int
	// ByRunc says why runc loads the filter ("" when palisade-init does).
	ByRunc string
}

// Note describes the choice for logs.
func (s *Seccomp) Note() string {
	switch {
	case s == nil:
		return "no seccomp filter"
	case s.Program != "":
		return fmt.Sprintf("seccomp filter precompiled (%d instructions), loaded by palisade-init", s.Instructions)
	}
	return "seccomp filter loaded by runc: " + s.ByRunc
}

// deniedCaps are the capabilities under which the helper's moment without
// a filter could be reached from the container.
var deniedCaps = []string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH"}

// capProblem names a capability of p that rules out palisade-init loading
// its filter, "" if none.
func capProblem(p *specs.Process) string {
	if p.Capabilities == nil {
		// runc then leaves the process the capabilities it has itself
		return "the process's capabilities are not set"
	}
	c := p.Capabilities
	for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, name := range deniedCaps {
			if slices.Contains(set, name) {
				return "the process may hold " + name
			}
		}
	}
	return ""
}

// processProblem is what rules out palisade-init loading the filter for a
// process (the container's or an exec's), "" if nothing.
func processProblem(p *specs.Process) string {
	switch {
	case p == nil || len(p.Args) == 0:
		return "no process"
	case !p.NoNewPrivileges:
		return "no_new_privs is not set"
	case p.SelinuxLabel != "" || p.ApparmorProfile != "":
		return "the process has an SELinux label or AppArmor profile"
	}
	return capProblem(p)
}

// nsCall is a system call with its arguments.
type nsCall struct {
	name string
	args []uint64
}

// nsCalls are the calls that create or join namespaces, with the
// arguments that would: the filter must deny each. A rule may compare an
// argument for equality, so the flags are tried alone and together (as
// `unshare -Urm` and a fork with SIGCHLD pass them), and setns with each
// type.
var nsCalls = func() []nsCall {
	userMnt := uint64(unix.CLONE_NEWUSER | unix.CLONE_NEWNS)
	all := userMnt | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP
	out := []nsCall{{"clone3", nil}}
	for _, f := range []uint64{unix.CLONE_NEWNS, unix.CLONE_NEWUSER, userMnt, all} {
		out = append(out, nsCall{"unshare", []uint64{f}}, nsCall{"clone", []uint64{f}}, nsCall{"clone", []uint64{f | uint64(unix.SIGCHLD)}})
	}
	for _, t := range []uint64{0, unix.CLONE_NEWNS, unix.CLONE_NEWUSER, unix.CLONE_NEWPID} {
		out = append(out, nsCall{"setns", []uint64{0, t}})
	}
	return out
}()

// nsFlags are the clone flags that matter here: a new user namespace gives
// the process every capability over a new mount namespace of its own.
const nsFlags = uint64(unix.CLONE_NEWUSER | unix.CLONE_NEWNS)

// passes tells whether an action lets a call run (a tracer may too).
func passes(a specs.LinuxSeccompAction) bool {
	switch a {
	case specs.ActAllow, specs.ActLog, specs.ActTrace, specs.ActNotify:
		return true
	}
	return false
}

// nsRuleProblem reads the filter's rules, where nsCalls only tries
// examples: the default action must deny; no rule that lets a call run may
// name unshare, setns or clone3 (whatever its conditions); and one that
// names clone must let it run only when the flags hold neither
// CLONE_NEWUSER nor CLONE_NEWNS — a SCMP_CMP_MASKED_EQ on argument 0 whose
// mask covers both and whose value has neither (Docker's and palisade's
// form). runc adds a rule with two conditions on one argument as one rule
// per condition, so then every condition must be such a comparison.
func nsRuleProblem(sc *specs.LinuxSeccomp) string {
	if passes(sc.DefaultAction) {
		return "the filter's default action lets calls run"
	}
	safe := func(a specs.LinuxSeccompArg) bool {
		return a.Index == 0 && a.Op == specs.OpMaskedEqual && a.Value&nsFlags == nsFlags && a.ValueTwo&nsFlags == 0
	}
	for _, r := range sc.Syscalls {
		if !passes(r.Action) {
			continue
		}
		for _, n := range r.Names {
			switch n {
			case "unshare", "setns", "clone3":
				return fmt.Sprintf("the filter lets %s run (%s), which could create or join a namespace", n, r.Action)
			case "clone":
				seen, repeats := map[uint]bool{}, false
				for _, a := range r.Args {
					repeats = repeats || seen[a.Index]
					seen[a.Index] = true
				}
				ok := slices.ContainsFunc(r.Args, safe)
				if repeats {
					ok = !slices.ContainsFunc(r.Args, func(a specs.LinuxSeccompArg) bool { return !safe(a) })
				}
				if !ok {
					return "the filter lets clone run with CLONE_NEWUSER or CLONE_NEWNS"
				}
			}
		}
	}
	return ""
}

// specProblem is what rules out palisade-init loading s's filter, "" if
// nothing.
func specProblem(s *specs.Spec) string {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return "no filter"
	}
	sc := s.Linux.Seccomp
	if sc.ListenerPath != "" || sc.ListenerMetadata != "" || len(sc.Flags) > 0 || sc.DefaultAction == specs.ActNotify ||
		slices.ContainsFunc(sc.Syscalls, func(r specs.LinuxSyscall) bool { return r.Action == specs.ActNotify }) {
		return "the filter has a listener, flags or notify rules (alert mode)"
	}
	if why := nsRuleProblem(sc); why != "" {
		return why
	}
	own := map[specs.LinuxNamespaceType]bool{}
	for _, n := range s.Linux.Namespaces {
		own[n.Type] = n.Path == ""
		if n.Type == specs.UserNamespace {
			return "the container has a user namespace"
		}
	}
	if !own[specs.PIDNamespace] || !own[specs.MountNamespace] {
		return "the container shares a PID or mount namespace"
	}
	// The helper's mount point is a file in /dev: in the container's own
	// tmpfs, nobody outside the container can unlink it (which would
	// detach the helper's mount) and put another program there. A later
	// mount at /dev (a volume another container shares) would hold it.
	if dev := lastMountAt(s.Mounts, "/dev"); dev == nil || dev.Type != "tmpfs" {
		return "no tmpfs at /dev, or a later mount over it"
	}
	if strings.Contains(s.Linux.RootfsPropagation, "shared") {
		// the /dev tmpfs would show on the host (checkHelperMount refuses)
		return "the rootfs's mount propagation is shared"
	}
	if s.Process == nil {
		return "no process"
	}
	return processProblem(s.Process)
}

// lastMountAt is the last of mounts at dest, nil if none.
func lastMountAt(mounts []specs.Mount, dest string) *specs.Mount {
	for i := len(mounts) - 1; i >= 0; i-- {
		if filepath.Clean(mounts[i].Destination) == dest {
			return &mounts[i]
		}
	}
	return nil
}

// compile returns the program of a native-only filter — kept in
// ProgramDir, or compiled by palisade-init (helper, the copy to mount; the
// shim is built without libseccomp) and kept there — after checking that
// it denies what the moment before it holds requires. The key covers the
// filter's JSON, the architecture and the helper's version, so a program
// kept on the node is one compiled by this helper and checked here before.
func compile(ctx context.Context, sc *specs.LinuxSeccomp, helper string, run func(*exec.Cmd) ([]byte, error)) (seccomp.Program, string, error) {
	native := seccomp.Arches[runtime.GOARCH].Arch
	for _, a := range sc.Architectures {
		if a != native {
			return nil, "the filter admits a compat ABI (seccomp.compat_abi)", nil
		}
	}
	key, err := seccomp.ProgramKey(sc, runtime.GOARCH, filepath.Base(helper))
	if err != nil {
		return nil, "", err
	}
	if prog, err := seccomp.ReadProgram(ProgramDir, key); err == nil {
		return prog, "", nil
	}
	data := seccomp.Encoded(sc)
	if data == nil {
		if data, err = json.Marshal(sc); err != nil {
			return nil, "", err
		}
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, helper, "compile")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(data), &out, &stderr
	if _, err := run(cmd); err != nil {
		return nil, "", fmt.Errorf("palisade-init compile: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	prog := seccomp.Program(out.Bytes())
	f, err := prog.Filter(runtime.GOARCH)
	if err != nil {
		return nil, "", err
	}
	for _, c := range nsCalls {
		v, err := f.Check(c.name, c.args...)
		if err != nil {
			return nil, "", err
		}
		if !v.Absent && (v.Action == "allow" || v.Action == "log") {
			return nil, fmt.Sprintf("the filter allows %s%v, which could create or join a namespace", c.name, c.args), nil
		}
	}
	// kept only once checked, and used unchecked: a change to the checks
	// above changes seccomp's programFormat
	// a failure to keep it costs the next start a compile, nothing else
	_ = seccomp.WriteProgram(ProgramDir, key, prog)
	return prog, "", nil
}

// deliver returns the spec runc is to read for s, and how its filter is
// loaded. When palisade-init loads it, the returned spec is a copy of s
// without the filter, its process wrapped and the helper copy mounted
// last; s itself is never modified. run runs palisade-init on the host.
func deliver(ctx context.Context, s *specs.Spec, helper string, run func(*exec.Cmd) ([]byte, error)) (*specs.Spec, *Seccomp, error) {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return s, nil, nil
	}
	if why := specProblem(s); why != "" {
		return s, &Seccomp{ByRunc: why}, nil
	}
	copyPath, err := unreadableCopy(helper)
	if err != nil {
		return s, &Seccomp{ByRunc: "cannot prepare palisade-init: " + err.Error()}, nil //nolint:nilerr // runc loads the filter
	}
	prog, why, err := compile(ctx, s.Linux.Seccomp, copyPath, run)
	if err != nil {
		return s, &Seccomp{ByRunc: "cannot compile it here: " + err.Error()}, nil //nolint:nilerr // runc compiles it and reports what is wrong
	}
	if why != "" {
		return s, &Seccomp{ByRunc: why}, nil
	}
	d := &Seccomp{Program: hex.EncodeToString(prog), Helper: copyPath, Instructions: len(prog) / 8}
	out := *s
	linux := *s.Linux
	linux.Seccomp = nil
	out.Linux = &linux
	p := *s.Process
	p.Args = wrapArgs(d.Program, s.Process.Args)
	out.Process = &p
	mount := specs.Mount{Destination: execguard.HelperPath, Type: "bind", Source: copyPath, Options: []string{"bind", "ro", "nosuid", "nodev"}}
	out.Mounts = append(slices.DeleteFunc(slices.Clone(s.Mounts), func(m specs.Mount) bool {
		return filepath.Clean(m.Destination) == execguard.HelperPath // the exec allow-list's: the same program
	}), mount)
	if why := verifyDelivered(s, &out, d); why != "" {
		return nil, nil, fmt.Errorf("palisade: seccomp delivery: %s", why)
	}
	return &out, d, nil
}

// wrapArgs makes args start through palisade-init's seccomp command, in
// front of an exec allow-list's `exec` when there is one.
func wrapArgs(program string, args []string) []string {
	out := []string{execguard.HelperPath, "seccomp", program}
	if len(args) >= 2 && args[0] == execguard.HelperPath && args[1] == "exec" {
		return append(out, args[1:]...)
	}
	return append(append(out, "--"), args...)
}

// verifyDelivered re-reads the spec deliver wrote against the one the
// pipeline verified: only the filter, the process's arguments and the
// helper's mount differ, and they differ as they must.
func verifyDelivered(in, out *specs.Spec, d *Seccomp) string {
	p := out.Process
	if out.Linux.Seccomp != nil || d.Program == "" {
		return "the filter is both in the spec and in the program"
	}
	if len(p.Args) < 4 || p.Args[0] != execguard.HelperPath || p.Args[1] != "seccomp" || p.Args[2] != d.Program {
		return "the process does not start through palisade-init's seccomp command"
	}
	want := append([]string{"--"}, in.Process.Args...)
	if a := in.Process.Args; len(a) >= 2 && a[0] == execguard.HelperPath && a[1] == "exec" {
		want = a[1:] // behind the exec allow-list's own command
	}
	if !slices.Equal(p.Args[3:], want) {
		return "the process's command changed"
	}
	if why := specProblem(&specs.Spec{Linux: in.Linux, Mounts: out.Mounts, Process: p}); why != "" {
		return why
	}
	last := out.Mounts[len(out.Mounts)-1]
	if last.Destination != execguard.HelperPath || last.Source != d.Helper || !slices.Contains(last.Options, "ro") {
		return "palisade-init's copy is not the last, read-only mount at " + execguard.HelperPath
	}
	return ""
}

// WrapExec makes an exec process of a container whose filter palisade-init
// loads start through it too: runc has no filter of the container's to
// give it. It fails for a process the filter cannot be loaded for that way.
func WrapExec(d *Seccomp, p *specs.Process) error {
	if d == nil || d.Program == "" {
		return nil
	}
	if why := processProblem(p); why != "" {
		return fmt.Errorf("the container's seccomp filter is loaded by palisade-init, which cannot load it for this process: %s", why)
	}
	p.Args = wrapArgs(d.Program, p.Args)
	return nil
}

// unreadableCopy returns a copy of palisade-init that nobody may read (mode
// 0111) in HelperDir, made once per version of the installed file.
func unreadableCopy(helper string) (string, error) {
	src, err := os.Open(helper)
	if err != nil {
		return "", err
	}
	defer func() { _ = src.Close() }()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", fmt.Errorf("%s is not a regular file", helper)
	}
	name := fmt.Sprintf("palisade-init-%x-%x-%x-%x.%x", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	dst := filepath.Join(HelperDir, name)
	var have unix.Stat_t
	if err := unix.Lstat(dst, &have); err == nil && have.Mode == unix.S_IFREG|0o111 && have.Uid == 0 && have.Size == st.Size {
		return dst, nil
	}
	if err := os.MkdirAll(HelperDir, 0o711); err != nil {
		return "", err
	}
	if err := checkDir(HelperDir); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(HelperDir, ".tmp-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, err = io.Copy(tmp, src)
	if err == nil {
		err = tmp.Chmod(0o111)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", err
	}
	return dst, nil
}

// checkDir refuses a HelperDir that is not a root-owned directory only root
// may write to.
func checkDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != 0 || st.Mode&0o022 != 0 {
		return fmt.Errorf("%s must be a directory owned by root that only root may write to (mode %s, owner %s)", dir,
			strconv.FormatUint(uint64(st.Mode&0o7777), 8), strconv.FormatUint(uint64(st.Uid), 10))
	}
	return nil
}
