package harden

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/lsm"
	"palisade.dev/palisade/libshim/policy"
	"palisade.dev/palisade/profiles"
)

// The LSM steps: lsm-labels (early: refuses labels that leave confinement
// and gives the container its SELinux labels) and apparmor (late: the
// generated profile follows the final capabilities, mounts and exec
// allow-list). Which LSM applies is the admin's per-LSM mode and the host's
// support (see libshim/lsm and docs/lsm.md).

// previewLevel stands for the MCS level in dry runs, which reserve nothing.
const previewLevel = "s0:c0,c1"

func (r *run) lsmEnv() *lsm.Env {
	if r.lsm == nil {
		r.lsm = r.req.LSM
		if r.lsm == nil {
			r.lsm = &lsm.Env{Host: lsm.Detect()}
		}
	}
	return r.lsm
}

// lsmRefuse refuses for an LSM the host cannot provide as configured.
func (r *run) lsmRefuse(reason, fix string) error {
	return policy.Failed(r.req.Container(), r.rule, r.profile(), reason, fix)
}

// absent handles an LSM the host does not enforce: refuse under require, a
// client's request for it under if-available, and otherwise record that the
// container runs without it.
func (r *run) absent(name, field, mode, requested string) error {
	cfg := r.req.Config.Source
	if mode == lsm.Require {
		return r.lsmRefuse(fmt.Sprintf("%s is required (%s = %q) but this host does not enforce it", name, field, mode),
			fmt.Sprintf("run the container on a node with %s enabled, or set %s = %q in %s to run without it", name, field, lsm.IfAvailable, cfg))
	}
	if requested != "" {
		return r.lsmRefuse(fmt.Sprintf("the spec asks for %s %s, but this host does not enforce %s", name, requested, name),
			"remove the "+name+" setting from the container's spec (Kubernetes: securityContext)")
	}
	r.note(fmt.Sprintf("%s is not enabled on this host: the container runs without it (%s = %q)", name, field, mode))
	return nil
}

// lsmLabelsSpec refuses labels that would leave confinement and gives the
// container its SELinux process and mount labels at a reserved MCS level.
func lsmLabelsSpec(r *run, s *specs.Spec) error {
	if err := lsmLabels(r, s.Process); err != nil {
		return err
	}
	env, cfg := r.lsmEnv(), r.req.Config.SELinux
	r.dec.Labels = &lsm.Labels{}
	switch {
	case cfg.Mode == lsm.Off:
		return nil
	case !env.Host.SELinux:
		requested := s.Process.SelinuxLabel
		if requested == "" {
			requested = s.Linux.MountLabel
		}
		return r.absent("SELinux", "selinux.mode", cfg.Mode, requested)
	}
	level := previewLevel
	if env.Reserve {
		var err error
		level, err = r.req.mcs().Reserve(lsm.Holder{Namespace: r.req.Namespace, ID: r.req.ID, Group: lsm.PodGroup(r.req.ID, s.Annotations), Bundle: r.req.Bundle})
		if err != nil {
			return r.lsmRefuse("cannot reserve an SELinux MCS category pair: "+err.Error(), "check selinux.state_dir and selinux.categories in "+r.req.Config.Source)
		}
	} else {
		r.note("preview: the shim reserves a unique MCS category pair at create; " + previewLevel + " stands for it")
	}
	proc, mount, err := lsm.SELinuxLabels(env.Host, cfg.Type, cfg.MountType, level)
	if err != nil {
		return r.lsmRefuse(err.Error(), "check the host's SELinux container contexts and selinux.type")
	}
	if want := s.Process.SelinuxLabel; want != "" && want != proc {
		if err := lsm.CheckClientLabel(want, cfg.Type, cfg.AllowedTypes, level); err != nil {
			return r.refuse(fmt.Sprintf("SELinux label %s is not allowed: %v", want, err),
				"leave the SELinux label to palisade (containerd CRI: enable_selinux = false), or ask the node administrator to add its type to selinux.allowed_types")
		}
		proc = want // an allowed type at palisade's level
	}
	if want := s.Linux.MountLabel; want != "" && want != mount {
		return r.refuse(fmt.Sprintf("SELinux mount label %s is not palisade's (%s)", want, mount), "leave the mount label to palisade")
	}
	if s.Process.SelinuxLabel != proc {
		r.record(s.Process.SelinuxLabel, proc)
		s.Process.SelinuxLabel = proc
	}
	if s.Linux.MountLabel != mount {
		r.record(s.Linux.MountLabel, "mount label "+mount)
		s.Linux.MountLabel = mount
	}
	r.dec.Labels.SELinuxProcess, r.dec.Labels.SELinuxMount = proc, mount
	return nil
}

// lsmLabels is the process part, for the init process and exec processes:
// no label that leaves confinement, and an exec process runs under the
// container's own labels.
func lsmLabels(r *run, p *specs.Process) error {
	if why := lsm.ConfinementProblem(p.ApparmorProfile, p.SelinuxLabel); why != "" {
		return r.refuse(why, "leave the SELinux label and AppArmor profile to palisade")
	}
	l := r.dec.Labels
	if l == nil {
		return nil // the container itself is being hardened: lsmLabelsSpec decides
	}
	if l.SELinuxProcess != "" && p.SelinuxLabel != l.SELinuxProcess {
		if p.SelinuxLabel != "" {
			cfg := r.req.Config.SELinux
			if err := lsm.CheckClientLabel(p.SelinuxLabel, cfg.Type, cfg.AllowedTypes, lsm.SELinuxLevel(l.SELinuxProcess)); err != nil {
				return r.refuse(fmt.Sprintf("SELinux label %s is not allowed: %v", p.SelinuxLabel, err), "leave the exec process's SELinux label to palisade")
			}
		} else {
			r.record(nil, l.SELinuxProcess)
			p.SelinuxLabel = l.SELinuxProcess
		}
	}
	if l.AppArmorProfile != "" && p.ApparmorProfile != l.AppArmorProfile {
		r.record(p.ApparmorProfile, l.AppArmorProfile)
		p.ApparmorProfile = l.AppArmorProfile
	}
	return nil
}

// apparmorSpec generates the container's AppArmor profile from its palisade
// profile and finished spec, and makes the container run under it.
func apparmorSpec(r *run, s *specs.Spec) error {
	env, mode := r.lsmEnv(), r.req.Config.AppArmor.Mode
	if mode == lsm.Off {
		return nil
	}
	if r.dec.Labels == nil {
		r.dec.Labels = &lsm.Labels{}
	}
	var name, text string
	var err error
	if env.Host.AppArmor || env.Preview {
		name, text, err = lsm.RenderAppArmor(appArmorInput(r.req, s))
		if err == nil {
			r.dec.Labels.AppArmorName, r.dec.Labels.AppArmorText = name, text
		}
	}
	if !env.Host.AppArmor {
		// Without AppArmor a profile that cannot be generated matters only
		// to a preview: the container is not refused for it.
		return r.absent("AppArmor", "apparmor.mode", mode, s.Process.ApparmorProfile)
	}
	if err != nil {
		return r.refuse("cannot generate the AppArmor profile: "+err.Error(), "mount volumes and list exec paths at paths without AppArmor's special characters (*?[]{}^\"\\@)")
	}
	if env.Load && !lsm.AppArmorLoaded(name) {
		if err := env.LoadAppArmor(text); err != nil {
			return r.lsmRefuse("cannot load the generated AppArmor profile "+name+": "+err.Error(), "check that apparmor_parser works on this host (palisade apparmor show "+r.profile()+" | apparmor_parser -Q)")
		}
	}
	if s.Process.ApparmorProfile != name {
		r.record(s.Process.ApparmorProfile, name)
		s.Process.ApparmorProfile = name
	}
	r.dec.Labels.AppArmorProfile = name
	return nil
}

// appArmorInput is what the container's AppArmor profile is made from: the
// profile's capabilities, whether the root is writable, the writable mounts
// and the exec allow-list.
func appArmorInput(req *Request, s *specs.Spec) lsm.AppArmorInput {
	prof := req.Policy.Profile
	in := lsm.AppArmorInput{Profile: prof.Name, Capabilities: prof.Capabilities.Allowed, WritableRootfs: s.Root == nil || !s.Root.Readonly}
	for _, m := range s.Mounts {
		d := filepath.Clean(m.Destination)
		if slices.Contains(m.Options, "ro") || d == "/" || underAny(d, "/proc", "/sys", "/dev") {
			continue
		}
		in.Writable = append(in.Writable, d)
	}
	if ex := req.Policy.Exec; ex != nil && ex.Mode != profiles.ExecAudit && len(ex.Allow) > 0 {
		in.Exec, in.Helper = slices.Clone(ex.Allow), execguard.HelperPath
	}
	return in
}

func underAny(p string, dirs ...string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// mcs is the node's MCS store as the admin config places it.
func (req *Request) mcs() *lsm.MCS {
	cfg := req.Config
	roots := []string{"/run/containerd/runc"}
	if cfg.Runc.Root != "" {
		roots = []string{cfg.Runc.Root}
	}
	return &lsm.MCS{Dir: cfg.SELinux.StateDir, Categories: cfg.SELinux.Categories, RuncRoots: roots}
}

// ReleaseLSM releases what the pipeline reserved for a container (its MCS
// pair, unless its pod still holds it). The shim calls it when the
// container is deleted or its creation fails; it is safe to call twice.
func ReleaseLSM(req *Request, dec *Decisions) error {
	if req.LSM == nil || !req.LSM.Reserve || dec == nil || dec.Labels == nil || dec.Labels.SELinuxProcess == "" {
		return nil
	}
	level, err := req.mcs().Release(req.Namespace, req.ID)
	lsm.ReleaseSELinux(level)
	return err
}

// verifyLSMLabels is the verification pass's check of the process labels,
// on the same list of unconfined types as the step.
func verifyLSMLabels(_ *Request, dec *Decisions, p *specs.Process) string {
	if why := lsm.ConfinementProblem(p.ApparmorProfile, p.SelinuxLabel); why != "" {
		return "the process asks to run outside the host's mandatory access control: " + why
	}
	if dec == nil {
		return ""
	}
	if l := dec.Labels; l != nil {
		if l.SELinuxProcess != "" && lsm.SELinuxLevel(p.SelinuxLabel) != lsm.SELinuxLevel(l.SELinuxProcess) {
			return "the SELinux label " + p.SelinuxLabel + " is not at the container's reserved level"
		}
		if l.AppArmorProfile != "" && p.ApparmorProfile != l.AppArmorProfile {
			return "the process does not run under the container's AppArmor profile " + l.AppArmorProfile
		}
	}
	return ""
}

// AppArmorForProfile is the AppArmor input of a container of profile p
// that has no mounts besides the profile's tmpfs: what `palisade apparmor
// show` and `profile lint` render. A profile that allows only the
// entrypoint needs it to be named.
func AppArmorForProfile(p *profiles.Profile, entrypoint string) (lsm.AppArmorInput, error) {
	in := lsm.AppArmorInput{Profile: p.Name, Capabilities: p.Capabilities.Allowed, WritableRootfs: p.Filesystem.WritableRootfs}
	for _, t := range p.Filesystem.Tmpfs {
		in.Writable = append(in.Writable, t.Path)
	}
	switch p.Exec.Mode {
	case profiles.ExecEnforce:
		in.Exec = slices.Clone(p.Exec.Allow)
	case profiles.ExecEntrypointOnly:
		if entrypoint == "" {
			return in, fmt.Errorf("profile %q allows only the container's entrypoint, fixed at create: name it (--entrypoint PATH): %w", p.Name, errdefs.ErrInvalidArgument)
		}
		in.Exec = []string{entrypoint}
	}
	if len(in.Exec) > 0 {
		in.Helper = execguard.HelperPath
	}
	return in, nil
}
