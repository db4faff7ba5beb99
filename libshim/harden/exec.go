package harden

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/caps"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/policy"
	"palisade.dev/palisade/profiles"
)

// execAllowlistSpec applies the exec allow-list to the container's init
// process and mounts the helper that enforces it.
func execAllowlistSpec(r *run, s *specs.Spec) error {
	if ex := r.req.Policy.Exec; ex != nil && ex.Mode != profiles.ExecAudit &&
		!slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.PIDNamespace && n.Path == "" }) {
		// vm.memfd_noexec is set per PID namespace: in a shared one it
		// would change the host's (or another pod's) setting.
		return r.refuse("an enforced exec allow-list needs the container's own PID namespace", "do not share the host's or a pod's PID namespace with this container")
	}
	wrapped, err := execAllowlist(r, s.Process, true)
	if err != nil || !wrapped {
		return err
	}
	// Only palisade's helper may sit at its path: any mount a client put
	// there (or below it) goes, and the helper is mounted last.
	helper := specs.Mount{Destination: execguard.HelperPath, Type: "bind", Source: r.req.Helper, Options: []string{"bind", "ro", "nosuid", "nodev"}}
	kept := slices.DeleteFunc(slices.Clone(s.Mounts), func(m specs.Mount) bool {
		d := filepath.Clean(m.Destination)
		return d == execguard.HelperPath || strings.HasPrefix(d, execguard.HelperPath+"/")
	})
	kept = append(kept, helper) // last: it wins over any alias of its path
	if !slices.EqualFunc(s.Mounts, kept, sameMount) {
		r.record(nil, mountString(helper))
		s.Mounts = kept
	}
	return nil
}

// execAllowlist checks the process's command against the allow-list and,
// when the list is enforced, makes the process start through palisade-init,
// which confines it with Landlock before executing the command. It reports
// whether the process is wrapped.
func execAllowlist(r *run, p *specs.Process, init bool) (bool, error) {
	ex := r.req.Policy.Exec
	if ex == nil {
		return false, nil
	}
	args := unwrap(p.Args)
	if len(args) == 0 {
		return false, r.refuse("the process has no command", "give the container a command")
	}
	if r.req.Rootfs == nil {
		return false, r.refuse("cannot resolve the command for the exec allow-list: no root filesystem to look in", "")
	}
	var res *execguard.Resolution
	err := r.req.Rootfs(func(root string) error {
		var err error
		res, err = execguard.Resolve(root, args[0], p.Env, p.Cwd)
		return err
	})
	if err != nil {
		return false, r.refuse(fmt.Sprintf("the command cannot be found in the image to check it against the exec allow-list: %v", err), "give the command as an absolute path that exists in the image")
	}
	allow := ex.Allow
	if len(r.dec.ExecAllow) > 0 {
		allow = r.dec.ExecAllow // fixed at create
	}
	if ex.Mode == profiles.ExecEntrypointOnly && len(allow) == 0 {
		if !init {
			return false, r.refuse("the container's entrypoint was not recorded at create", "")
		}
		allow = []string{res.Path} // the container's own entrypoint, fixed at create
	}
	if init {
		r.dec.ExecAllow = allow
	}
	if !execguard.Allowed(res.Path, allow) {
		why := fmt.Sprintf("%q resolves to %s, which is not on the exec allow-list (%s; from %s)", res.Command, res.Path, strings.Join(allow, ", "), ex.Source)
		if ex.Mode == profiles.ExecAudit {
			r.note("audit mode, would refuse: " + why)
			return false, nil
		}
		if r.req.Policy.Alert {
			// alert mode: recorded, and the process runs unconfined by the list
			return false, r.wouldRefuse("permission denied: "+why, "run an allowed program, or change the allow-list", audit.SubjectExecutable, res.Path)
		}
		return false, r.denied(why, "run an allowed program, or change the allow-list")
	}
	if ex.Mode == profiles.ExecAudit {
		return false, nil
	}
	if r.req.Policy.Alert {
		if init {
			r.note("alert mode: the exec allow-list is checked at create and exec, not enforced by the kernel")
		}
		return false, nil
	}
	if r.req.LandlockABI == nil {
		return false, r.refuse("cannot tell whether the kernel supports Landlock", "")
	}
	if !init && !r.dec.ExecEnforced {
		return false, nil // the container itself was not confined (Landlock unavailable, accepted by the admin)
	}
	if abi, err := r.req.LandlockABI(); err != nil || abi < 1 {
		if r.req.Config.Landlock == config.LandlockIfAvailable {
			r.record(nil, fmt.Sprintf("Landlock unavailable (%v): the exec allow-list is checked at create and exec only, not enforced by the kernel (landlock = %q)", err, config.LandlockIfAvailable))
			return false, nil
		}
		return false, r.refuse(fmt.Sprintf("the exec allow-list needs Landlock, which this kernel does not provide (%v)", err),
			fmt.Sprintf("run on a kernel with Landlock enabled, or set landlock = %q in %s to accept checks at the API only", config.LandlockIfAvailable, r.req.Config.Source))
	}
	if st, err := os.Stat(r.req.Helper); err != nil || !st.Mode().IsRegular() {
		return false, r.refuse(fmt.Sprintf("the exec helper %s is missing (%v)", r.req.Helper, err), "install palisade-init next to the shim, or set exec_helper in "+r.req.Config.Source)
	}
	if holdsSysAdmin(p.Capabilities) {
		// CAP_SYS_ADMIN over the container's PID namespace can set
		// vm.memfd_noexec back to 0 there (the kernel keeps a namespace
		// only from going below its parent's), and a memfd runs again.
		return false, r.refuse("an enforced exec allow-list cannot hold with CAP_SYS_ADMIN: the process could lower vm.memfd_noexec and run a program from a memfd",
			"drop CAP_SYS_ADMIN from the container, or use a profile without an enforced exec allow-list")
	}
	if init {
		r.dec.ExecEnforced = true // decided at create only; exec requests just read it
	}
	want := wrap(allow, args)
	if !slices.Equal(p.Args, want) {
		r.record(p.Args, want)
		p.Args = want
	}
	return true, nil
}

// denied is a refusal for a command that may not run.
func (r *run) denied(reason, fix string) error {
	return policy.Denied(r.req.Container(), r.rule, r.profile(), "permission denied: "+reason, fix)
}

// wrap makes args start through palisade-init with the allow-list.
func wrap(allow, args []string) []string {
	out := []string{execguard.HelperPath, "exec"}
	for _, a := range allow {
		out = append(out, "--allow", a)
	}
	out = append(out, "--")
	return append(out, args...)
}

// unwrap returns the workload's own command of a possibly wrapped process.
func unwrap(args []string) []string {
	if len(args) < 2 || args[0] != execguard.HelperPath || args[1] != "exec" {
		return args
	}
	if i := slices.Index(args, "--"); i >= 0 {
		return args[i+1:]
	}
	return nil
}

func verifyExecAllowlist(_ *Request, dec *Decisions, p *specs.Process) string {
	if dec == nil || !dec.ExecEnforced {
		return ""
	}
	if len(p.Args) < 3 || p.Args[0] != execguard.HelperPath || p.Args[1] != "exec" {
		return "the exec allow-list is to be enforced but the process does not start through " + execguard.HelperPath
	}
	if holdsSysAdmin(p.Capabilities) {
		return "the exec allow-list is to be enforced but the process holds CAP_SYS_ADMIN"
	}
	return ""
}

func verifyExecHelper(req *Request, dec *Decisions, s *specs.Spec) string {
	if dec == nil || !dec.ExecEnforced {
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
	if last.Destination != execguard.HelperPath || last.Source != req.Helper || len(lacking(last.Options, attrRO)) > 0 {
		return "the exec helper is not the last, read-only mount, at " + execguard.HelperPath
	}
	return ""
}

// holdsSysAdmin reports whether any of the process's capability sets holds
// CAP_SYS_ADMIN, however it is spelled.
func holdsSysAdmin(c *specs.LinuxCapabilities) bool {
	if c == nil {
		return false
	}
	for _, name := range slices.Concat(c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient) {
		if canon, err := caps.Canonical(name); err == nil && canon == "CAP_SYS_ADMIN" {
			return true
		}
	}
	return false
}
