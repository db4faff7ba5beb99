package harden

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/arch"
	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/policy"
	"palisade.dev/palisade/libshim/secrets"
)

// The verification pass, in runc's configs/validate style: one named check
// per invariant, each re-reading the finished spec. The checks never call the
// transforms, so a transform bug is caught here instead of trusted.

type specCheck struct {
	name  string
	check func(*Request, *specs.Spec) string // "" when the invariant holds
}

type processCheck struct {
	name  string
	check func(*Request, *specs.Process) string
}

var processChecks = []processCheck{
	{"verify-no-new-privileges", func(_ *Request, p *specs.Process) string {
		if !p.NoNewPrivileges {
			return "noNewPrivileges is not set"
		}
		return ""
	}},
	{"verify-capabilities", func(req *Request, p *specs.Process) string {
		c := p.Capabilities
		if c == nil {
			return ""
		}
		allowed := req.Policy.Profile.Capabilities.Allowed
		for set, l := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted, "inheritable": c.Inheritable, "ambient": c.Ambient} {
			for _, name := range l {
				if !slices.Contains(allowed, name) {
					return fmt.Sprintf("%s set holds %s, which the profile does not allow", set, name)
				}
			}
		}
		for _, a := range c.Ambient {
			if !slices.Contains(c.Permitted, a) || !slices.Contains(c.Inheritable, a) {
				return fmt.Sprintf("ambient %s is not also permitted and inheritable", a)
			}
			if !slices.Contains(req.Policy.CapAdd, a) {
				return fmt.Sprintf("ambient %s was not asked for with cap-add", a)
			}
		}
		return ""
	}},
	{"verify-exec-allowlist", func(req *Request, p *specs.Process) string {
		ex := req.Policy.Exec
		if ex == nil || !ex.Enforced {
			return ""
		}
		if len(p.Args) < 3 || p.Args[0] != execguard.HelperPath || p.Args[1] != "exec" {
			return "the exec allow-list is to be enforced but the process does not start through " + execguard.HelperPath
		}
		return ""
	}},
	{"verify-secrets-env", func(req *Request, p *specs.Process) string {
		for _, kv := range p.Env {
			k, v, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(v, secrets.EnvReference) {
				return "environment variable " + k + " still holds a secret reference"
			}
			if slices.Contains(req.Policy.SecretEnv, k) {
				return "environment variable " + k + " was to be moved into a secret file"
			}
		}
		return ""
	}},
	{"verify-lsm-labels", func(_ *Request, p *specs.Process) string {
		if p.ApparmorProfile == "unconfined" || strings.Contains(p.SelinuxLabel, "spc_t") || strings.Contains(p.SelinuxLabel, "unconfined") {
			return "the process asks to run outside the host's mandatory access control"
		}
		return ""
	}},
	{"verify-user", func(req *Request, p *specs.Process) string {
		if req.Policy.Profile.User.AllowRoot {
			return ""
		}
		if p.User.UID == 0 || p.User.GID == 0 || slices.Contains(p.User.AdditionalGids, 0) {
			return fmt.Sprintf("the process runs as uid %d gid %d groups %v, but the profile does not allow root", p.User.UID, p.User.GID, p.User.AdditionalGids)
		}
		return ""
	}},
}

var specChecks = []specCheck{
	{"verify-readonly-rootfs", func(req *Request, s *specs.Spec) string {
		if !req.Policy.Profile.Filesystem.WritableRootfs && (s.Root == nil || !s.Root.Readonly) {
			return "the root filesystem is writable"
		}
		return ""
	}},
	{"verify-pids-limit", func(req *Request, s *specs.Spec) string {
		l := s.Linux.Resources
		if l == nil || l.Pids == nil || l.Pids.Limit == nil || *l.Pids.Limit <= 0 || *l.Pids.Limit > req.Policy.Profile.Pids.Limit {
			return fmt.Sprintf("the PID limit is missing or above the profile's %d", req.Policy.Profile.Pids.Limit)
		}
		return ""
	}},
	{"verify-namespaces", func(req *Request, s *specs.Spec) string {
		for _, typ := range requiredNamespaces {
			if slices.Contains(req.Policy.Profile.Namespaces.HostAllowed, typ) {
				continue
			}
			if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return string(n.Type) == typ }) {
				return "no private " + typ + " namespace"
			}
		}
		return ""
	}},
	{"verify-masked-paths", func(_ *Request, s *specs.Spec) string {
		return missing("masked", s.Linux.MaskedPaths, minimumMaskedPaths)
	}},
	{"verify-readonly-paths", func(_ *Request, s *specs.Spec) string {
		return missing("read-only", s.Linux.ReadonlyPaths, minimumReadonlyPaths)
	}},
	{"verify-mounts", func(req *Request, s *specs.Spec) string {
		for _, m := range s.Mounts {
			bind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
			switch {
			case bind && (!slices.Contains(m.Options, "nosuid") || !slices.Contains(m.Options, "nodev")):
				return "bind mount at " + m.Destination + " lacks nosuid,nodev"
			case bind && req.sensitiveSource(m.Source) != "":
				return "bind mount of sensitive host path " + m.Source
			case !bind && !slices.Contains(kernelMountTypes, m.Type):
				return "mount of type " + m.Type + " at " + m.Destination
			case !bind && kernelMountPlace[m.Type] != "" && filepath.Clean(m.Destination) != kernelMountPlace[m.Type]:
				return m.Type + " mounted at " + m.Destination
			case (m.Type == "sysfs" || m.Type == "cgroup" || m.Type == "cgroup2") && (!slices.Contains(m.Options, "ro") || slices.Contains(m.Options, "rw")):
				return m.Type + " at " + m.Destination + " is writable"
			}
		}
		return ""
	}},
	{"verify-hooks", func(req *Request, s *specs.Spec) string {
		if s.Hooks == nil {
			return ""
		}
		h := s.Hooks
		for _, l := range [][]specs.Hook{h.Prestart, h.CreateRuntime, h.CreateContainer, h.StartContainer, h.Poststart, h.Poststop} { //nolint:staticcheck // Prestart is deprecated but still run by runc
			for _, hook := range l {
				if !slices.Contains(req.Policy.AllowedHooks, hook.Path) {
					return "hook " + hook.Path + " is not allowed"
				}
			}
		}
		return ""
	}},
	{"verify-devices", func(_ *Request, s *specs.Spec) string {
		l := s.Linux.Resources
		if l == nil || len(l.Devices) == 0 || l.Devices[0].Allow || (l.Devices[0].Type != "" && l.Devices[0].Type != "a") || l.Devices[0].Major != nil {
			return "the device cgroup does not start by denying every device"
		}
		for _, d := range l.Devices[1:] {
			if d.Allow && (d.Major == nil || d.Type == "" || d.Type == "a") {
				return "the device cgroup allows a whole class of devices"
			}
		}
		return ""
	}},
	{"verify-seccomp", func(req *Request, s *specs.Spec) string {
		if req.Policy.Seccomp == nil {
			return ""
		}
		sc := s.Linux.Seccomp
		if sc == nil || sc.DefaultAction == specs.ActAllow || sc.DefaultAction == specs.ActLog {
			return "no seccomp filter that denies by default"
		}
		if !slices.Contains(sc.Architectures, arch.Native().OCI) {
			return "the seccomp filter does not cover this architecture"
		}
		return ""
	}},
	{"verify-exec-helper", func(req *Request, s *specs.Spec) string {
		if ex := req.Policy.Exec; ex == nil || !ex.Enforced {
			return ""
		}
		if len(s.Mounts) == 0 {
			return "no mounts, so no exec helper"
		}
		if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.PIDNamespace && n.Path == "" }) {
			return "an enforced exec allow-list without a private PID namespace"
		}
		// The helper must be the very last mount (so no alias of its path
		// mounted later can shadow it), read-only, and from palisade.
		last := s.Mounts[len(s.Mounts)-1]
		if last.Destination != execguard.HelperPath || last.Source != req.Helper || !slices.Contains(last.Options, "ro") {
			return "the exec helper is not the last, read-only mount, at " + execguard.HelperPath
		}
		return ""
	}},
	{"verify-root", func(req *Request, s *specs.Spec) string {
		if s.Root == nil {
			return "no root filesystem"
		}
		if why := req.rootfsProblem(s.Root.Path); why != "" {
			return "root " + s.Root.Path + ": " + why
		}
		for _, m := range append(append([]specs.LinuxIDMapping{}, s.Linux.UIDMappings...), s.Linux.GIDMappings...) {
			if m.HostID == 0 {
				return "a user namespace mapping onto host root"
			}
		}
		if s.Linux.Resources != nil && pidsUnifiedKey(s.Linux.Resources.Unified) != "" {
			return "a cgroup v2 pids setting beside the PID limit"
		}
		return ""
	}},
	{"verify-secrets-mount", func(req *Request, s *specs.Spec) string {
		if req.SecretPlan == nil {
			return ""
		}
		for _, m := range s.Mounts {
			if m.Source == req.SecretPlan.Dir {
				for _, o := range []string{"ro", "nosuid", "nodev", "noexec"} {
					if !slices.Contains(m.Options, o) {
						return "the secrets mount lacks " + o
					}
				}
				return ""
			}
		}
		return "the secrets are planned but not mounted"
	}},
	{"verify-sysctls", func(req *Request, s *specs.Spec) string {
		for k := range s.Linux.Sysctl {
			if !slices.Contains(safeSysctls, k) && !slices.Contains(req.Policy.Profile.Sysctls.Allowed, k) {
				return "sysctl " + k + " is not allowed"
			}
		}
		return ""
	}},
}

func missing(what string, have, want []string) string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	if len(out) > 0 {
		return fmt.Sprintf("%s paths lack %s", what, strings.Join(out, ", "))
	}
	return ""
}

// Verify checks every invariant over a finished spec and refuses with all
// failures. A failure here means a transform is wrong: fail closed.
func Verify(req *Request, s *specs.Spec) error {
	if s.Process == nil || s.Linux == nil {
		return verifyFailure(req, "verify-structure", "the spec has no process or no linux section")
	}
	var errs []error
	if err := VerifyProcess(req, s.Process); err != nil {
		errs = append(errs, err)
	}
	for _, c := range specChecks {
		if msg := c.check(req, s); msg != "" {
			errs = append(errs, verifyFailure(req, c.name, msg))
		}
	}
	return errors.Join(errs...)
}

// VerifyProcess checks the process-level invariants.
func VerifyProcess(req *Request, p *specs.Process) error {
	var errs []error
	for _, c := range processChecks {
		if msg := c.check(req, p); msg != "" {
			errs = append(errs, verifyFailure(req, c.name, msg))
		}
	}
	return errors.Join(errs...)
}

func verifyFailure(req *Request, rule, msg string) error {
	return &policy.Refusal{
		Container: req.Container(), Rule: rule, Profile: req.Policy.Profile.Name,
		Reason: "the hardened spec fails verification: " + msg,
		Fix:    "this is a palisade bug; report it with the audit record",
		Kind:   errdefs.ErrInternal,
	}
}
