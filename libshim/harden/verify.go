package harden

import (
	"errors"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// check is one invariant of a finished spec, in runc's configs/validate
// style. Checks re-read the spec; they never share code with the transforms
// that produced it, so a transform bug is caught here rather than trusted.
type check struct {
	name string
	ok   func(*specs.Spec) bool
	msg  string
}

var checks = []check{
	{
		name: "verify-process",
		ok:   func(s *specs.Spec) bool { return s.Process != nil },
		msg:  "the hardened spec has no process",
	},
	{
		name: "verify-no-new-privileges",
		ok:   func(s *specs.Spec) bool { return s.Process != nil && s.Process.NoNewPrivileges },
		msg:  "the hardened spec does not set noNewPrivileges",
	},
}

// Verify checks every invariant over a finished spec and refuses with all
// failures. A failure here means a transform is wrong: fail closed.
func Verify(req *Request, s *specs.Spec) error {
	var errs []error
	for _, c := range checks {
		if !c.ok(s) {
			errs = append(errs, &Refusal{
				Container: req.Container(), Rule: c.name, Reason: c.msg,
				Fix:  "this is a palisade bug; report it with the audit record",
				Kind: errdefs.ErrInternal,
			})
		}
	}
	return errors.Join(errs...)
}

func verifyProcess(req *Request, p *specs.Process) error {
	return Verify(req, &specs.Spec{Process: p})
}
