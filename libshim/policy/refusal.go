package policy

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
)

// Refusal is the error for a container (or exec, or update) palisade will
// not allow. Its message names the container, what is wrong, the rule and
// profile that decided, and what to do about it.
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
	fmt.Fprintf(&b, "palisade: container %s: %s [rule %s", e.Container, e.Reason, e.Rule)
	if e.Profile != "" {
		fmt.Fprintf(&b, ", profile %s", e.Profile)
	}
	b.WriteString("]")
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Unwrap returns the errdefs category.
func (e *Refusal) Unwrap() error { return e.Kind }

// The constructors below are the only way refusals are made, one per kind,
// so that every message has the same shape and the same errdefs category for
// the same kind of reason.

// Invalid refuses a request that is malformed or asks for what palisade has
// no safe meaning for (a field, a mount, a capability the profile lacks).
func Invalid(container, rule, profile, reason, fix string) *Refusal {
	return &Refusal{Container: container, Rule: rule, Profile: profile, Reason: reason, Fix: fix, Kind: errdefs.ErrInvalidArgument}
}

// Denied refuses what the node's policy does not permit a well-formed
// request to do (a host file as stdout, a checkpoint, a forbidden program).
func Denied(container, rule, profile, reason, fix string) *Refusal {
	return &Refusal{Container: container, Rule: rule, Profile: profile, Reason: reason, Fix: fix, Kind: errdefs.ErrPermissionDenied}
}

// Failed refuses what the host or node cannot do as the policy demands (a
// missing kernel feature, an unreadable secret, an unreachable containerd).
func Failed(container, rule, profile, reason, fix string) *Refusal {
	return &Refusal{Container: container, Rule: rule, Profile: profile, Reason: reason, Fix: fix, Kind: errdefs.ErrFailedPrecondition}
}

// Internal refuses a container whose hardened spec fails palisade's own
// verification: a palisade bug, failing closed.
func Internal(container, rule, profile, reason string) *Refusal {
	return &Refusal{Container: container, Rule: rule, Profile: profile, Reason: reason,
		Fix: "this is a palisade bug; report it with the audit record", Kind: errdefs.ErrInternal}
}
