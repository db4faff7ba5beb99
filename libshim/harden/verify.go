package harden

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/policy"
)

// The verification pass, in runc's configs/validate style: every pipeline
// step carries a named check of its own invariant (declared beside its
// transform, sharing its data), and Verify runs them all over the finished
// spec. A failure here means a transform is wrong: fail closed.

// Verify checks every step's invariant over a finished spec and refuses
// with all failures.
func Verify(req *Request, dec *Decisions, s *specs.Spec) error {
	if s.Process == nil || s.Linux == nil {
		return verifyFailure(req, "verify-structure", "the spec has no process or no linux section")
	}
	var errs []error
	if err := VerifyProcess(req, dec, s.Process); err != nil {
		errs = append(errs, err)
	}
	for _, st := range pipeline {
		if st.verify == nil {
			continue
		}
		if msg := st.verify(req, dec, s); msg != "" {
			errs = append(errs, verifyFailure(req, "verify-"+st.name, msg))
		}
	}
	return errors.Join(errs...)
}

// VerifyProcess checks the process-level invariants.
func VerifyProcess(req *Request, dec *Decisions, p *specs.Process) error {
	var errs []error
	for _, st := range pipeline {
		if st.verifyProcess == nil {
			continue
		}
		if msg := st.verifyProcess(req, dec, p); msg != "" {
			errs = append(errs, verifyFailure(req, "verify-"+st.name, msg))
		}
	}
	return errors.Join(errs...)
}

func verifyFailure(req *Request, rule, msg string) error {
	return policy.Internal(req.Container(), rule, req.Policy.Profile.Name, "the hardened spec fails verification: "+msg)
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
