// Package harden is palisade's hardening pipeline: an ordered list of small
// transforms over an OCI runtime spec, declared in one place (pipeline
// below), followed by an independent verification pass over the finished
// spec (verify.go).
//
// The incoming spec is a request, not a command: a transform clamps what it
// may clamp (the runtime's default capabilities, a missing read-only flag)
// and refuses with a *policy.Refusal what cannot be honoured safely
// (privileged, host namespaces, sensitive host mounts, hooks). Every change is
// recorded for the audit record. Hardening a hardened spec changes nothing.
package harden

import (
	"fmt"
	"path/filepath"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/lsm"
	"palisade.dev/palisade/libshim/policy"
	"palisade.dev/palisade/libshim/secrets"
)

// Request identifies the container being hardened and the policy that
// bounds it.
type Request struct {
	Namespace string
	ID        string
	Config    *config.Config
	Policy    *policy.Policy
	// HostPaths are host paths a bind mount must never expose, besides the
	// built-in list: containerd's sockets and state on this node.
	HostPaths []string
	// Rootfs gives access to the container's root filesystem, for resolving
	// commands against an exec allow-list (a temporary read-only mount at
	// create, /proc/PID/root at exec). Nil when there is none to look in.
	Rootfs func(func(root string) error) error
	// Helper is the host path of palisade-init.
	Helper string
	// LandlockABI reports the kernel's Landlock ABI (an injected detector, so
	// tests can simulate a kernel without it; nothing in a spec reaches it).
	LandlockABI func() (int, error)
	// Bundle is the container's bundle directory.
	Bundle string
	// SecretsDir is the host mount point of the container's secrets tmpfs,
	// SecretScope the store scope its secrets come from.
	SecretsDir, SecretScope string

	// SecretNames are the secrets delivered at create (for exec processes).
	SecretNames []string

	// LSM is the node's LSM support (nil: detect, reserve and load
	// nothing); Labels are set by the pipeline, and exec processes get the
	// same (lsm.go).
	LSM    *lsm.Env
	Labels *lsm.Labels

	// SecretPlan is set by the pipeline when the container gets secrets:
	// the shim mounts it before runc runs. It may hold values moved out of
	// the environment and must never be logged.
	SecretPlan *secrets.Plan
}

// Node is what the pipeline needs to know about where a container runs.
type Node struct {
	Bundle      string   // the bundle directory
	Addresses   []string // containerd's sockets, never to be bind-mounted
	Rootfs      func(func(root string) error) error
	LandlockABI func() (int, error)
	LSM         *lsm.Env
}

// Prepare resolves a container's policy from the admin config and the
// spec's annotations and builds its Request. The shim and the CLI both
// start here, so they can never disagree.
func Prepare(ns, id string, cfg *config.Config, spec *specs.Spec, node Node) (*Request, error) {
	req := &Request{
		Namespace: ns, ID: id, Config: cfg, Bundle: node.Bundle,
		HostPaths:   HostPaths(node.Bundle, node.Addresses...),
		Helper:      cfg.HelperPath(),
		Rootfs:      node.Rootfs,
		LandlockABI: node.LandlockABI,
		LSM:         node.LSM,
		SecretsDir:  filepath.Join(cfg.Secrets.MountRoot, ns, id),
		SecretScope: secrets.Scope(ns, spec.Annotations),
	}
	pol, err := policy.Resolve(req.Container(), cfg, spec.Annotations)
	if err != nil {
		return nil, err
	}
	req.Policy = pol
	return req, nil
}

// Container is the name used in messages: namespace/id.
func (r *Request) Container() string { return r.Namespace + "/" + r.ID }

// step is one transform of the pipeline. spec rewrites a container spec;
// process, when set, is the part that applies to any process, so that exec
// processes get the same treatment as the container's init.
type step struct {
	name    string
	spec    func(*run, *specs.Spec) error
	process func(*run, *specs.Process) error
}

// pipeline is the one ordered list of transforms. The order is written here
// and nowhere else:
//   - privileged is judged on the spec as the client sent it, before any
//     other step clamps the capabilities or devices it would look at;
//   - user runs before capabilities, which grant ambient capabilities to a
//     process only once it is known not to run as root;
//   - seccomp runs after capabilities: its capability-conditional rules
//     follow the final capability set;
//   - secrets runs after user (files belong to the final user) and, like
//     exec-allowlist, before mounts, so their bind mounts get the same
//     treatment as every other;
//   - exec-allowlist runs after tmpfs, so the helper's mount is the last one
//     and nothing a client or a profile adds can shadow it;
//   - apparmor runs after capabilities, exec-allowlist and mounts: the
//     generated profile follows the final capabilities, writable mounts and
//     exec allow-list.
var pipeline = []step{
	{name: "process-required", spec: requireProcess},
	{name: "privileged", spec: refusePrivileged},
	{name: "hooks", spec: hooks},
	{name: "namespaces", spec: namespaces},
	{name: "lsm-labels", spec: lsmLabelsSpec, process: lsmLabels},
	{name: "user", spec: onProcess(user), process: user},
	{name: "capabilities", spec: onProcess(capabilities), process: capabilities},
	{name: "no-new-privileges", spec: onProcess(noNewPrivileges), process: noNewPrivileges},
	{name: "seccomp", spec: seccompFilter},
	{name: "secrets", spec: secretsStep, process: secretsProcess},
	{name: "readonly-rootfs", spec: readonlyRootfs},
	{name: "tmpfs", spec: tmpfs},
	{name: "exec-allowlist", spec: execAllowlistSpec, process: func(r *run, p *specs.Process) error { _, err := execAllowlist(r, p, false); return err }},
	{name: "mounts", spec: mounts},
	{name: "apparmor", spec: apparmorSpec},
	{name: "masked-paths", spec: maskedPaths},
	{name: "readonly-paths", spec: readonlyPaths},
	{name: "devices", spec: devices},
	{name: "sysctls", spec: sysctls},
	{name: "pids-limit", spec: pidsLimit},
}

// run carries one pipeline execution's request and collects its changes.
type run struct {
	req     *Request
	rule    string
	changes []audit.Change
}

func (r *run) record(before, after any) {
	r.changes = append(r.changes, audit.Change{Rule: r.rule, Before: before, After: after})
}

// note records an observation that changes nothing.
func (r *run) note(msg string) {
	r.changes = append(r.changes, audit.Change{Rule: r.rule, After: msg, Note: true})
}

func (r *run) profile() string { return r.req.Policy.Profile.Name }

// refuse returns a refusal of the current rule for an invalid request.
func (r *run) refuse(reason, fix string) error {
	return &policy.Refusal{Container: r.req.Container(), Rule: r.rule, Profile: r.profile(), Reason: reason, Fix: fix, Kind: errdefs.ErrInvalidArgument}
}

// Spec hardens a container spec in place, then verifies the result. It
// returns the changes made; on error the spec must not be used.
func Spec(req *Request, s *specs.Spec) ([]audit.Change, error) {
	r := &run{req: req}
	for _, st := range pipeline {
		r.rule = st.name
		if err := st.spec(r, s); err != nil {
			return r.changes, err
		}
	}
	if err := Verify(req, s); err != nil {
		return r.changes, err
	}
	return r.changes, nil
}

// Process hardens the process of an exec request with the process-level
// steps of the pipeline, then verifies it.
func Process(req *Request, p *specs.Process) ([]audit.Change, error) {
	r := &run{req: req, rule: "process-required"}
	if p == nil {
		return nil, r.refuse("the exec request carries no process", "send a process spec")
	}
	for _, st := range pipeline {
		if st.process == nil {
			continue
		}
		r.rule = st.name
		if err := st.process(r, p); err != nil {
			return r.changes, err
		}
	}
	if err := VerifyProcess(req, p); err != nil {
		return r.changes, err
	}
	return r.changes, nil
}

// onProcess lifts a process transform to a spec transform.
func onProcess(f func(*run, *specs.Process) error) func(*run, *specs.Spec) error {
	return func(r *run, s *specs.Spec) error { return f(r, s.Process) }
}

// Resources checks an update of a running container's resources against its
// policy. Only the PID limit is fixed by palisade: it may be lowered, never
// raised above the container's limit or lifted.
func Resources(req *Request, res *specs.LinuxResources) ([]audit.Change, error) {
	r := &run{req: req, rule: "pids-limit"}
	limit := req.Policy.PidsLimit
	if k := pidsUnifiedKey(res.Unified); k != "" {
		return nil, &policy.Refusal{Container: req.Container(), Rule: r.rule, Profile: r.profile(), Kind: errdefs.ErrFailedPrecondition,
			Reason: fmt.Sprintf("update of cgroup v2 setting %s refused: it would override the PID limit", k), Fix: "change the PID limit through pids.limit, downwards"}
	}
	if res.Pids == nil || res.Pids.Limit == nil {
		return nil, nil
	}
	if n := *res.Pids.Limit; n <= 0 || n > limit {
		return nil, &policy.Refusal{
			Container: req.Container(), Rule: r.rule, Profile: r.profile(), Kind: errdefs.ErrFailedPrecondition,
			Reason: fmt.Sprintf("update of the PID limit to %d refused: the container's limit is %d", n, limit),
			Fix:    "an update may only lower the PID limit",
		}
	}
	r.record(nil, *res.Pids.Limit)
	return r.changes, nil
}
