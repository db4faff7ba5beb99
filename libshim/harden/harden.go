// Package harden is palisade's hardening pipeline: an ordered list of small,
// pure transforms over an OCI runtime spec, declared in one place (pipeline
// below), followed by an independent verification pass over the finished spec.
//
// The incoming spec is a request, not a command: every transform may clamp
// what it finds, and refuses with a *Refusal when it cannot honour the policy
// safely. Every change is recorded for the audit record.
package harden

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/config"
)

// Request identifies the container being hardened and the admin policy that
// bounds it.
type Request struct {
	Namespace string
	ID        string
	Config    *config.Config
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

// pipeline is the one ordered list of transforms. Order matters only where a
// later step reads what an earlier one decided; it is written down here and
// nowhere else.
var pipeline = []step{
	{name: "process-required", spec: requireProcess},
	{name: "no-new-privileges", spec: onProcess(noNewPrivileges), process: noNewPrivileges},
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

func (r *run) refuse(kind error, reason, fix string) error {
	return &Refusal{Container: r.req.Container(), Rule: r.rule, Reason: reason, Fix: fix, Kind: kind}
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
	r := &run{req: req}
	if p == nil {
		r.rule = "process-required"
		return nil, r.refuse(errdefs.ErrInvalidArgument, "the exec request carries no process", "send a process spec")
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
	if err := verifyProcess(req, p); err != nil {
		return r.changes, err
	}
	return r.changes, nil
}

// onProcess lifts a process transform to a spec transform.
func onProcess(f func(*run, *specs.Process) error) func(*run, *specs.Spec) error {
	return func(r *run, s *specs.Spec) error { return f(r, s.Process) }
}

// Refusal is the error for a container (or exec) palisade will not run. Its
// message names the container, the rule, what is wrong and what to do.
type Refusal struct {
	Container string
	Rule      string
	Profile   string
	Reason    string
	Fix       string
	Kind      error // an errdefs category
}

func (e *Refusal) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "palisade: container %s: %s", e.Container, e.Reason)
	if e.Profile != "" {
		fmt.Fprintf(&b, " (profile %q)", e.Profile)
	}
	fmt.Fprintf(&b, " [rule %s]", e.Rule)
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Unwrap returns the errdefs category.
func (e *Refusal) Unwrap() error { return e.Kind }
