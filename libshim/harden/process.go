package harden

import (
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// requireProcess refuses a spec without a process: there is nothing to run
// and nothing the other steps could harden.
func requireProcess(r *run, s *specs.Spec) error {
	if s.Process == nil {
		return r.refuse(errdefs.ErrInvalidArgument, "the spec has no process", "the OCI spec must contain a process to run")
	}
	return nil
}

// noNewPrivileges sets no_new_privs: no setuid binary, file capability or
// LSM transition can give the process more than it started with.
func noNewPrivileges(r *run, p *specs.Process) error {
	if !p.NoNewPrivileges {
		r.record(false, true)
		p.NoNewPrivileges = true
	}
	return nil
}
