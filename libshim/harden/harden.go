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
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"

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
	// HostPaths are the host paths a bind mount (or the root) must never
	// expose, nor any parent of them: the built-in list and what was derived
	// from this node (see ProtectedPaths).
	HostPaths []ProtectedPath
	// CarveOuts are directories below protected paths that this container
	// may bind-mount from: its own pod's kubelet and CRI sandbox directories.
	CarveOuts []string
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
	// Image looks up the container's image reference (nil: none).
	Image    func() string
	imageRef *string // what Image returned, once asked
	// Joinable, RootfsMounts and SnapshotterRoots are the Node's.
	Joinable         func(typ specs.LinuxNamespaceType) []string
	RootfsMounts     []RootfsMount
	SnapshotterRoots []string
	// SecretsDir is the host mount point of the container's secrets tmpfs,
	// SecretScope the store scope its secrets come from.
	SecretsDir, SecretScope string

	// Created is what the pipeline decided when the container was created
	// (its Plan's Decisions), for its exec processes and updates; nil at
	// create.
	Created *Decisions

	// LSM is the node's LSM support (nil: detect, reserve and load
	// nothing).
	LSM *lsm.Env
	// SeccompAgent is the Node's.
	SeccompAgent string
}

// Node is what the pipeline needs to know about where a container runs.
type Node struct {
	Bundle    string   // the bundle directory
	Addresses []string // containerd's sockets, never to be bind-mounted
	// ContainerdRoot is containerd's root directory as containerd reported
	// it, "" where there is no containerd (palisade run).
	ContainerdRoot string
	// SnapshotterRoots are the snapshotters' directories (below the root,
	// unless configured elsewhere): a task's rootfs mounts must come from
	// there.
	SnapshotterRoots []string
	// ContainerdDirs are the directories containerd's plugins reported as
	// theirs (content store, snapshotters, CRI, ...).
	ContainerdDirs []string
	// SocketDir is the directory of the shim sockets, "" where unknown.
	SocketDir string
	// RootfsMounts are the task's rootfs mounts (Create's Rootfs).
	RootfsMounts []RootfsMount
	// Image looks up the container's image reference ("" when there is
	// none, a rootfs directory); asked only when an image rule applies.
	Image func() string
	// Joinable tells which existing namespaces the container may join:
	// those of its own pod's sandbox (nil: none).
	Joinable    func(typ specs.LinuxNamespaceType) []string
	Rootfs      func(func(root string) error) error
	LandlockABI func() (int, error)
	LSM         *lsm.Env
	// SeccompAgent is the socket of the seccomp agent the shim runs for
	// this container in alert mode (libshim/seccompagent): an alert-mode
	// filter hands the calls its profile would deny there. "" where no
	// agent runs (palisade run): the filter then enforces in alert mode too.
	SeccompAgent string
}

// Prepare resolves a container's policy from the admin config and the
// spec's annotations and builds its Request. The shim and the CLI both
// start here, so they can never disagree.
func Prepare(ns, id string, cfg *config.Config, spec *specs.Spec, node Node) (*Request, error) {
	req := &Request{
		Namespace: ns, ID: id, Config: cfg, Bundle: node.Bundle,
		HostPaths:    ProtectedPaths(cfg, node),
		CarveOuts:    carveOuts(ns, cfg, node, spec.Annotations),
		Joinable:     node.Joinable,
		RootfsMounts: node.RootfsMounts, SnapshotterRoots: node.SnapshotterRoots, Image: node.Image,
		Helper:       cfg.HelperPath(),
		Rootfs:       node.Rootfs,
		LandlockABI:  node.LandlockABI,
		LSM:          node.LSM,
		SeccompAgent: node.SeccompAgent,
		SecretsDir:   filepath.Join(cfg.Secrets.MountRoot, ns, id),
		SecretScope:  secrets.Scope(ns, spec.Annotations),
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

// step is one rule of the pipeline: its transform and, beside it, the check
// of its invariant that the verification pass runs on the finished spec.
// spec rewrites a container spec; process, when set, is the part that
// applies to any process, so that exec processes get the same treatment as
// the container's init. verify and verifyProcess re-read the result and
// return "" when the invariant holds; they never call the transforms, so a
// transform bug is caught instead of trusted. Each check is reported as
// "verify-" + the step's name.
type step struct {
	name          string
	spec          func(*run, *specs.Spec) error
	process       func(*run, *specs.Process) error
	verify        func(*Request, *Decisions, *specs.Spec) string
	verifyProcess func(*Request, *Decisions, *specs.Process) string
}

// pipeline is the one ordered list of transforms. The order is written here
// and nowhere else:
//   - fields runs first: a spec field palisade has no rule for refuses the
//     container before any other step reads the spec;
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
	{name: "fields", spec: fields, process: processFields},
	{name: "process-required", spec: requireProcess, verify: verifyRoot},
	{name: "rootfs-mounts", spec: rootfsMounts, verify: verifyRootfsMounts},
	{name: "images", spec: images, verify: verifyImages},
	{name: "privileged", spec: refusePrivileged},
	{name: "hooks", spec: hooks, verify: verifyHooks},
	{name: "namespaces", spec: namespaces, verify: verifyNamespaces},
	{name: "lsm-labels", spec: lsmLabelsSpec, process: lsmLabels, verifyProcess: verifyLSMLabels},
	{name: "user", spec: onProcess(user), process: user, verifyProcess: verifyUser},
	{name: "capabilities", spec: onProcess(capabilities), process: capabilities, verifyProcess: verifyCapabilities},
	{name: "no-new-privileges", spec: onProcess(noNewPrivileges), process: noNewPrivileges, verifyProcess: verifyNoNewPrivileges},
	{name: "seccomp", spec: seccompFilter, verify: verifySeccomp},
	{name: "secrets", spec: secretsStep, process: secretsProcess, verify: verifySecretsMount, verifyProcess: verifySecretsEnv},
	{name: "readonly-rootfs", spec: readonlyRootfs, verify: verifyReadonlyRootfs},
	{name: "tmpfs", spec: tmpfs},
	{
		name: "exec-allowlist", spec: execAllowlistSpec,
		process: func(r *run, p *specs.Process) error { _, err := execAllowlist(r, p, false); return err },
		verify:  verifyExecHelper, verifyProcess: verifyExecAllowlist,
	},
	{name: "mounts", spec: mounts, verify: verifyMounts},
	{name: "apparmor", spec: apparmorSpec},
	{name: "masked-paths", spec: maskedPaths, verify: verifyMaskedPaths},
	{name: "readonly-paths", spec: readonlyPaths, verify: verifyReadonlyPaths},
	{name: "devices", spec: devices, verify: verifyDevices},
	{name: "sysctls", spec: sysctls, verify: verifySysctls},
	{name: "pids-limit", spec: pidsLimit, verify: verifyPidsLimit},
}

// Decisions are what the pipeline decided beyond the spec itself: what
// must happen around runc for the hardening to hold, and what the
// container's exec processes inherit.
type Decisions struct {
	// Tmpfs says where the container's tmpfs may land; the launcher checks
	// it after runc's mounts, before the container starts.
	Tmpfs *TmpfsPlaces
	// Secrets is the container's secrets tmpfs, to be mounted before runc
	// runs; nil without secrets. It may hold values moved out of the
	// environment: never log it.
	Secrets *secrets.Plan
	// SecretNames are the secrets delivered at create (for exec processes).
	SecretNames []string
	// ExecAllow is the exec allow-list in force: the policy's, or for
	// entrypoint-only the entrypoint resolved at create.
	ExecAllow []string
	// Labels are the container's SELinux labels and AppArmor profile; its
	// exec processes get the same.
	Labels *lsm.Labels
	// ExecEnforced is set when the kernel enforces the exec allow-list
	// (Landlock through palisade-init): the container's PID namespace must
	// then get vm.memfd_noexec after create, before start.
	ExecEnforced bool
	// SeccompAgent is set when the filter hands calls to the container's
	// seccomp agent (alert mode): its socket, and the calls it hands over
	// only to record the program they run (execve, execveat).
	SeccompAgent     string
	SeccompExecCalls []string
}

// Plan is the pipeline's answer for one container: the hardened spec, the
// changes made (for the audit record), and its decisions. Executing it is
// the launcher's work (libshim/launch).
type Plan struct {
	Spec    *specs.Spec
	Changes []audit.Change
	Decisions
}

// ForExec is what the container's later requests need of its plan: the
// decisions, without secret values.
func (p *Plan) ForExec() *Decisions {
	d := p.Decisions
	d.Secrets = nil
	if p.Secrets != nil {
		d.SecretNames = p.Secrets.Names()
	}
	return &d
}

// run carries one pipeline execution's request, collects its changes and
// holds its decisions.
type run struct {
	req     *Request
	rule    string
	changes []audit.Change
	dec     *Decisions
	lsm     *lsm.Env // the request's, or detected once for this run
	update  bool     // judging an update of a running container's resources
}

func (r *run) record(before, after any) {
	r.changes = append(r.changes, audit.Change{Rule: r.rule, Before: before, After: after})
}

// note records an observation that changes nothing.
func (r *run) note(msg string) {
	r.changes = append(r.changes, audit.Change{Rule: r.rule, After: msg, Note: true})
}

func (r *run) profile() string { return r.req.Policy.Profile.Name }

// wouldRefuse handles a refusal that alert mode may turn into a record: in
// enforce mode it is a refusal; in alert mode the would-be refusal is
// recorded (rule, reason, fix, what was asked for) and nil returned, and the
// step goes on with the safe fallback (drop what was asked for, or leave it
// unenforced). Only the rules listed in docs/rollout.md call it; every other
// rule refuses in alert mode too.
func (r *run) wouldRefuse(reason, fix, subject, value string) error {
	if !r.req.Policy.Alert {
		return r.refuse(reason, fix)
	}
	r.changes = append(r.changes, audit.Change{Rule: r.rule, After: "alert mode, would refuse: " + reason, Note: true,
		WouldRefuse: &audit.WouldRefuse{Reason: reason, Fix: fix, Subject: subject, Value: value}})
	return nil
}

// refuse returns a refusal of the current rule for an invalid request.
func (r *run) refuse(reason, fix string) error {
	return policy.Invalid(r.req.Container(), r.rule, r.profile(), reason, fix)
}

// Harden runs the pipeline over a copy of the client's spec and verifies
// the result. It changes nothing it was given; on error there is no plan.
// The changes made so far are returned in both cases, for the audit record.
func Harden(req *Request, in *specs.Spec) (*Plan, []audit.Change, error) {
	s, err := cloneSpec(in)
	if err != nil {
		return nil, nil, policy.Invalid(req.Container(), "process-required", "", "the spec cannot be copied: "+err.Error(), "send a valid OCI spec")
	}
	r := &run{req: req, dec: &Decisions{}, changes: slices.Clone(req.Policy.WouldRefuse)}
	fail := func(err error) (*Plan, []audit.Change, error) {
		// nothing reserved for a refused container stays reserved
		return nil, r.changes, errors.Join(err, ReleaseLSM(req, r.dec))
	}
	for _, st := range pipeline {
		r.rule = st.name
		if err := st.spec(r, s); err != nil {
			return fail(err)
		}
	}
	if err := Verify(req, r.dec, s); err != nil {
		return fail(err)
	}
	return &Plan{Spec: s, Changes: r.changes, Decisions: *r.dec}, r.changes, nil
}

// Process hardens an exec request's process with the process-level steps
// of the pipeline, under the decisions made when the container was created
// (req.Created), then verifies it. It returns a hardened copy.
func Process(req *Request, in *specs.Process) (*specs.Process, []audit.Change, error) {
	r := &run{req: req, rule: "process-required", dec: &Decisions{}}
	if req.Created != nil {
		*r.dec = *req.Created
	}
	if in == nil {
		return nil, nil, r.refuse("the exec request carries no process", "send a process spec")
	}
	p, err := clone(in)
	if err != nil {
		return nil, nil, r.refuse("the exec process cannot be copied: "+err.Error(), "send a valid process spec")
	}
	for _, st := range pipeline {
		if st.process == nil {
			continue
		}
		r.rule = st.name
		if err := st.process(r, p); err != nil {
			return nil, r.changes, err
		}
	}
	if err := VerifyProcess(req, r.dec, p); err != nil {
		return nil, r.changes, err
	}
	return p, r.changes, nil
}

// cloneSpec deep-copies a spec, except its seccomp filter, which is
// shared: no step modifies a filter, the seccomp step only replaces it, and
// copying the client's (often Docker's ~400 names) was most of the copy.
func cloneSpec(s *specs.Spec) (*specs.Spec, error) {
	if s == nil {
		return &specs.Spec{}, nil
	}
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return clone(s)
	}
	shallow, linux := *s, *s.Linux
	linux.Seccomp = nil
	shallow.Linux = &linux
	out, err := clone(&shallow)
	if err != nil {
		return nil, err
	}
	out.Linux.Seccomp = s.Linux.Seccomp
	return out, nil
}

// clone deep-copies a spec value through its JSON form, the form runc reads.
func clone[T any](v *T) (*T, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out T
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// onProcess lifts a process transform to a spec transform.
func onProcess(f func(*run, *specs.Process) error) func(*run, *specs.Spec) error {
	return func(r *run, s *specs.Spec) error { return f(r, s.Process) }
}

// Resources checks an update of a running container's resources against its
// policy. Only the PID limit is fixed by palisade: it may be lowered, never
// raised above the container's limit or lifted.
func Resources(req *Request, res *specs.LinuxResources) ([]audit.Change, error) {
	fr := &run{req: req, rule: "fields", update: true}
	if err := walkFields(fr, reflect.ValueOf(res).Elem(), "linux.resources"); err != nil {
		return nil, err
	}
	r := &run{req: req, rule: "pids-limit"}
	limit := req.Policy.PidsLimit
	if k := pidsUnifiedKey(res.Unified); k != "" {
		return nil, policy.Failed(req.Container(), r.rule, r.profile(),
			fmt.Sprintf("update of cgroup v2 setting %s refused: it would override the PID limit", k), "change the PID limit through pids.limit, downwards")
	}
	if res.Pids == nil || res.Pids.Limit == nil {
		return nil, nil
	}
	if n := *res.Pids.Limit; n <= 0 || n > limit {
		return nil, policy.Failed(req.Container(), r.rule, r.profile(),
			fmt.Sprintf("update of the PID limit to %d refused: the container's limit is %d", n, limit), "an update may only lower the PID limit")
	}
	r.record(nil, *res.Pids.Limit)
	return r.changes, nil
}
