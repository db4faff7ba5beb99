// Package launch executes a hardening plan against an OCI runtime: it is the
// one launch sequence the shim's Create and `palisade run` share. In order:
// mount the container's secrets, write the hardened spec into the bundle
// (with its seccomp filter precompiled for palisade-init to load where that
// is safe, seccomp.go), create the container through the runtime, make memfds non-executable in
// its PID namespace when its exec allow-list is enforced — and, if any step
// fails, release everything the earlier steps made, in reverse.
package launch

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"palisade.dev/palisade/libshim/bundle"
	"palisade.dev/palisade/libshim/harden"
	"palisade.dev/palisade/libshim/policy"
	"palisade.dev/palisade/libshim/secrets"
)

// Runtime creates and deletes the container described by the bundle's spec:
// containerd's runc task service in the shim, runc itself in `palisade run`.
type Runtime interface {
	// Create creates the container (not started) and returns its init's
	// host PID.
	Create(ctx context.Context) (uint32, error)
	// Delete removes a created container.
	Delete(ctx context.Context) error
}

// Target is where and how a plan is launched.
type Target struct {
	// Container names it in refusals: namespace/id.
	Container string
	// Profile is the profile that decided.
	Profile string
	// Bundle is the bundle directory the spec is written to.
	Bundle string
	// Secrets is where secret values come from.
	Secrets secrets.Source
	// Helper is palisade-init's host path.
	Helper string
	// RunHelper runs a helper command to completion and returns its output;
	// the shim runs it through its reaper.
	RunHelper func(*exec.Cmd) ([]byte, error)
}

// Launched is a created container and what must be released with it.
type Launched struct {
	Pid uint32
	// SecretsDir is the host mount of its secrets, "" without.
	SecretsDir string
	// Seccomp is how its seccomp filter is loaded (nil: it has none); its
	// exec processes must go through WrapExec.
	Seccomp *Seccomp
}

// Release removes what the launch made on the host besides the container
// itself (which its runtime deletes): the secrets tmpfs.
func (l *Launched) Release() error {
	if l == nil || l.SecretsDir == "" {
		return nil
	}
	return secrets.Release(l.SecretsDir)
}

// Launch executes plan. On error nothing of it is left: no secrets mount, no
// created container.
func Launch(ctx context.Context, plan *harden.Plan, t Target, rt Runtime) (_ *Launched, retErr error) {
	var undo []func() error
	defer func() {
		if retErr == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			retErr = errors.Join(retErr, undo[i]())
		}
	}()
	l := &Launched{}
	if sp := plan.Secrets; sp != nil {
		if err := secrets.Mount(sp, t.Secrets); err != nil {
			return nil, policy.Failed(t.Container, "secrets", t.Profile,
				"cannot deliver the container's secrets: "+err.Error(),
				"check that each secret exists in the store under scope "+strconv.Quote(sp.Scope)+" as a plain file within the size limits")
		}
		l.SecretsDir = sp.Dir
		undo = append(undo, l.Release)
	}
	spec, sc, err := deliver(ctx, plan.Spec, t.Helper, t.RunHelper)
	if err != nil {
		return nil, policy.Failed(t.Container, "seccomp", t.Profile, err.Error(), "report this: the spec palisade-init would run is not the one the pipeline verified")
	}
	l.Seccomp = sc
	if err := bundle.WriteSpec(t.Bundle, spec); err != nil {
		return nil, err
	}
	pid, err := rt.Create(ctx)
	if err != nil {
		return nil, err
	}
	l.Pid = pid
	undo = append(undo, func() error { return rt.Delete(context.WithoutCancel(ctx)) })
	// runc mounted each tmpfs where its path leads: a link in the image
	// must not have put one over a directory the profile keeps read-only
	why, err := plan.Tmpfs.Problem(fmt.Sprintf("/proc/%d/root", pid))
	if err != nil || why != "" {
		if err != nil {
			why = "cannot check where the tmpfs were mounted: " + err.Error()
		}
		return nil, policy.Failed(t.Container, "tmpfs", t.Profile, why, harden.TmpfsFix)
	}
	if plan.ExecEnforced {
		// Landlock does not mediate memfds: make them non-executable in the
		// container's PID namespace before its process starts.
		out, err := t.RunHelper(exec.CommandContext(ctx, t.Helper, "memfd-noexec", strconv.FormatUint(uint64(pid), 10)))
		if err != nil {
			fix := "check that palisade-init at " + t.Helper + " is palisade's and runs on this host"
			switch o := string(out); {
			case strings.Contains(o, "memfd_noexec: no such file"):
				fix = "run on a kernel with vm.memfd_noexec (Linux 6.3 or later)"
			case strings.Contains(o, "pid namespace"):
				// palisade-init found no container init at the PID:
				// it exited before its start (and the PID may be reused)
				fix = "the container's init exited before it started: create the container again, and if this repeats look for what kills its process (OOM, a kill of the task) in the node's logs"
			}
			return nil, policy.Failed(t.Container, "exec-allowlist", t.Profile,
				fmt.Sprintf("cannot make memfds non-executable (vm.memfd_noexec): %v: %s", err, strings.TrimSpace(string(out))), fix)
		}
	}
	// palisade-init's copy (the filter's) or the installed helper (the
	// exec allow-list's) must sit on the container's own /dev (helpermount.go)
	helper, rule := "", ""
	switch {
	case sc != nil && sc.Program != "":
		helper, rule = sc.Helper, "seccomp"
	case plan.ExecEnforced:
		helper, rule = t.Helper, "exec-allowlist"
	}
	if helper != "" {
		why, err := checkHelperMount(pid, helper)
		if err != nil || why != "" {
			if err != nil {
				why = "cannot check where palisade-init was mounted: " + err.Error()
			}
			return nil, policy.Failed(t.Container, rule, t.Profile, why,
				"do not mount a volume over /dev, directly or through a symlink: palisade-init, which loads the container's seccomp filter or enforces its exec allow-list, must sit on the container's own /dev")
		}
	}
	return l, nil
}
