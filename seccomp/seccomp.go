// Package seccomp holds palisade's seccomp profiles: the Docker/Kubernetes
// JSON format (moby/profiles' types, reused as they are), palisade's built-in
// default profile (stricter than Docker's, see default.go), strict loading
// and validation of every syscall name for both amd64 and arm64 with
// libseccomp, resolution of a profile for an architecture and a capability
// set, and a way to know what a profile does without a kernel: compile it
// with libseccomp and run the BPF program in an interpreter (bpf.go).
package seccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/arch"
	"palisade.dev/palisade/libshim/caps"
)

// Profile is a seccomp profile in the Docker/Kubernetes JSON format.
type Profile = mobyseccomp.Seccomp

// Unconfined names "no seccomp filter", which only an admin may allow.
const Unconfined = "unconfined"

// maxFileSize bounds a profile file.
const maxFileSize = 1 << 20

// Loaded is a validated profile.
type Loaded struct {
	Name    string
	Source  string
	Profile *Profile
	// Notes are what a linter should tell the author: rules that are no-ops
	// on an architecture, names this libseccomp does not know and were
	// dropped from allow rules (so they stay denied).
	Notes []string

	cache *resolveCache // ResolveCached's filters
}

// Arches are the architectures every profile must cover, each with the
// compat ABIs its kernel also accepts system calls through.
var Arches = map[string]Target{
	// The OCI names come from libshim/arch's table (TestArchesFollowArchTable).
	"amd64": {GoArch: "amd64", Native: "amd64", Arch: arch.AMD64.OCI, Scmp: ArchAMD64, Compat: []CompatABI{
		{Name: "x86", Arch: arch.AMD64.Compat[0], Scmp: ArchX86, Audit: unix.AUDIT_ARCH_I386},
		{Name: "x32", Arch: arch.AMD64.Compat[1], Scmp: ArchX32, Audit: unix.AUDIT_ARCH_X86_64},
	}},
	"arm64": {GoArch: "arm64", Native: "arm64", Arch: arch.ARM64.OCI, Scmp: ArchARM64, Compat: []CompatABI{
		{Name: "arm", Arch: arch.ARM64.Compat[0], Scmp: ArchARM, Audit: unix.AUDIT_ARCH_ARM},
	}},
}

// Target is one architecture palisade supports.
type Target struct {
	GoArch string
	Native string // libseccomp's name, used by includes/excludes arches
	Arch   specs.Arch
	Scmp   ScmpArch
	// Compat are the other ABIs the kernel of this architecture accepts
	// system calls through: 32-bit x86 (int 0x80) and x32 on amd64, AArch32
	// on arm64.
	Compat []CompatABI
}

// CompatABI is a compat system call ABI of an architecture. A filter that
// does not list it kills every system call made through it (libseccomp's
// bad-architecture action), which is what palisade does unless a profile
// sets seccomp.compat_abi = true.
type CompatABI struct {
	Name  string // libseccomp's name: x86, x32, arm
	Arch  specs.Arch
	Scmp  ScmpArch
	Audit uint32 // seccomp_data.arch of a call through this ABI (x32 shares x86_64's and sets bit 30 of nr)
}

// ABIs chooses the system call ABIs a resolved filter admits.
type ABIs int

const (
	// NativeOnly admits the architecture's own ABI only: a system call made
	// through a compat ABI kills the calling thread (SIGSYS). The default.
	NativeOnly ABIs = iota
	// WithCompat also admits the compat ABIs the profile lists for the
	// architecture (seccomp.compat_abi = true in a palisade profile).
	WithCompat
)

// String names the choice for records and messages.
func (a ABIs) String() string {
	if a == WithCompat {
		return "native and compat ABIs"
	}
	return "native ABI only"
}

// newerThanLibseccomp are syscalls that Linux has but the libseccomp on
// some supported hosts does not know yet. In an allow rule such a name is
// dropped when this libseccomp lacks it (the syscall stays denied: the safe
// direction) and noted; anywhere else an unknown name refuses the profile.
var newerThanLibseccomp = []string{
	"cachestat", "fchmodat2", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake", "getxattrat", "listmount",
	"listxattrat", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "map_shadow_stack", "mseal",
	"removexattrat", "riscv_hwprobe", "setxattrat", "statmount", "uretprobe",
}

var validActions = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActErrno,
	specs.ActTrace, specs.ActAllow, specs.ActLog,
}

var validOps = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

// Error is a problem in a seccomp profile.
type Error struct {
	Source string
	Rule   int // index in syscalls, -1 for the profile as a whole
	Msg    string
}

func (e *Error) Error() string {
	if e.Rule < 0 {
		return fmt.Sprintf("invalid seccomp profile %s: %s", e.Source, e.Msg)
	}
	return fmt.Sprintf("invalid seccomp profile %s: syscalls[%d]: %s", e.Source, e.Rule, e.Msg)
}

// Unwrap gives the errdefs category.
func (e *Error) Unwrap() error { return errdefs.ErrInvalidArgument }

// Parse decodes a profile strictly (unknown fields are errors) and validates it.
func Parse(name, source string, data []byte) (*Loaded, error) {
	if len(data) > maxFileSize {
		return nil, &Error{Source: source, Rule: -1, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize)}
	}
	var p Profile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, &Error{Source: source, Rule: -1, Msg: "not a Docker/Kubernetes seccomp profile: " + err.Error()}
	}
	return Validate(name, source, &p)
}

// Validate checks a profile and returns a validated copy: actions,
// operators, coverage of the amd64 and arm64 native architectures (compat
// sub-architectures are optional: palisade leaves them out of filters
// unless a palisade profile asks for them), capability and
// architecture names in conditions, and every syscall name, on both
// architectures, with libseccomp. The input is not modified.
func Validate(name, source string, in *Profile) (*Loaded, error) {
	fail := func(rule int, format string, args ...any) error {
		return &Error{Source: source, Rule: rule, Msg: fmt.Sprintf(format, args...)}
	}
	p := clone(in)
	l := &Loaded{Name: name, Source: source, Profile: p, cache: &resolveCache{m: map[cacheKey]*specs.LinuxSeccomp{}}}
	if !slices.Contains(validActions, p.DefaultAction) {
		return nil, fail(-1, "defaultAction %q is not a seccomp action palisade supports (%s)", p.DefaultAction, actionList())
	}
	if p.ListenerPath != "" {
		return nil, fail(-1, "listenerPath is not supported: palisade runs no seccomp agent")
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, fail(-1, "both architectures and archMap are set; use one")
	}
	for _, goarch := range []string{"amd64", "arm64"} {
		t := Arches[goarch]
		if missing := t.missingFrom(p); len(missing) > 0 {
			return nil, fail(-1, "does not cover %s: missing %s", goarch, strings.Join(missing, ", "))
		}
	}
	for i, r := range p.Syscalls {
		if r.Name != "" { //nolint:staticcheck // the deprecated single name is still valid in old profiles: accept it
			if len(r.Names) > 0 {
				return nil, fail(i, "both name and names are set; use names")
			}
			r.Names, r.Name = []string{r.Name}, "" //nolint:staticcheck // see above
		}
		if len(r.Names) == 0 {
			return nil, fail(i, "no syscall names")
		}
		if !slices.Contains(validActions, r.Action) {
			return nil, fail(i, "action %q is not a seccomp action palisade supports (%s)", r.Action, actionList())
		}
		if r.ErrnoRet != nil && r.Action != specs.ActErrno && r.Action != specs.ActTrace {
			return nil, fail(i, "errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE")
		}
		for _, a := range r.Args {
			if a.Index > 5 {
				return nil, fail(i, "argument index %d is above 5", a.Index)
			}
			if !slices.Contains(validOps, a.Op) {
				return nil, fail(i, "operator %q is not a seccomp comparison", a.Op)
			}
		}
		for _, f := range []*mobyseccomp.Filter{r.Includes, r.Excludes} {
			if f == nil {
				continue
			}
			for _, c := range f.Caps {
				if canon, err := caps.Canonical(c); err != nil || canon != c {
					return nil, fail(i, "condition capability %q is not a capability name such as CAP_SYS_ADMIN", c)
				}
			}
			for _, a := range f.Arches {
				if _, err := archFromString(a); err != nil {
					return nil, fail(i, "condition architecture %q is unknown", a)
				}
			}
		}
		kept := r.Names[:0:0]
		for _, n := range r.Names {
			keep, note, err := checkName(n, r.Action)
			if err != nil {
				return nil, fail(i, "%v", err)
			}
			if note != "" {
				l.Notes = append(l.Notes, fmt.Sprintf("syscalls[%d]: %s", i, note))
			}
			if keep {
				kept = append(kept, n)
			}
		}
		r.Names = kept
	}
	p.Syscalls = slices.DeleteFunc(p.Syscalls, func(r *mobyseccomp.Syscall) bool { return len(r.Names) == 0 })
	return l, nil
}

// checkName validates one syscall name for amd64 and arm64.
func checkName(name string, action specs.LinuxSeccompAction) (keep bool, note string, err error) {
	var absent []string
	for _, goarch := range []string{"amd64", "arm64"} {
		nr, err := syscallNumber(name, Arches[goarch].Scmp)
		if err != nil {
			maj, min, mic := libraryVersion()
			if action == specs.ActAllow && slices.Contains(newerThanLibseccomp, name) {
				return false, fmt.Sprintf("%s is unknown to libseccomp %d.%d.%d and stays denied on this host", name, maj, min, mic), nil
			}
			return false, "", fmt.Errorf("unknown syscall %q on %s (libseccomp %d.%d.%d); check the spelling", name, goarch, maj, min, mic)
		}
		if nr < 0 {
			absent = append(absent, goarch)
		}
	}
	if len(absent) == 2 {
		return true, "", nil // a pseudo syscall of another architecture family (e.g. s390 or ppc only)
	}
	if len(absent) == 1 {
		return true, fmt.Sprintf("%s does not exist on %s: the rule is a no-op there", name, absent[0]), nil
	}
	return true, "", nil
}

func actionList() string {
	out := make([]string, len(validActions))
	for i, a := range validActions {
		out[i] = string(a)
	}
	return strings.Join(out, ", ")
}

// missingFrom lists what a profile lacks to cover t: its native
// architecture.
func (t Target) missingFrom(p *Profile) []string {
	if slices.Contains(t.listed(p), t.Arch) {
		return nil
	}
	return []string{string(t.Arch)}
}

// listed is what a profile lists for t: with an archMap, t's entry and its
// sub-architectures; with a flat list, those of t's architectures it names.
func (t Target) listed(p *Profile) []specs.Arch {
	if len(p.ArchMap) > 0 {
		for _, a := range p.ArchMap {
			if a.Arch == t.Arch {
				return append([]specs.Arch{a.Arch}, a.SubArches...)
			}
		}
		return nil
	}
	return slices.DeleteFunc(slices.Clone(p.Architectures), func(a specs.Arch) bool {
		return a != t.Arch && !slices.ContainsFunc(t.Compat, func(c CompatABI) bool { return c.Arch == a })
	})
}

// CompatListed names the compat ABIs of t that a profile lists: what
// WithCompat admits.
func (t Target) CompatListed(l *Loaded) []CompatABI {
	have := t.listed(l.Profile)
	var out []CompatABI
	for _, c := range t.Compat {
		if slices.Contains(have, c.Arch) {
			out = append(out, c)
		}
	}
	return out
}

// clone deep-copies a profile's rule list so validation never edits input.
func clone(p *Profile) *Profile {
	c := *p
	c.Syscalls = make([]*mobyseccomp.Syscall, len(p.Syscalls))
	for i, r := range p.Syscalls {
		rc := *r
		rc.Names = slices.Clone(r.Names)
		rc.Args = slices.Clone(r.Args)
		c.Syscalls[i] = &rc
	}
	return &c
}
