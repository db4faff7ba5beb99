package service

import (
	"context"

	"github.com/containerd/log"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/harden"
	"palisade.dev/palisade/libshim/seccompagent"
)

// startAgent starts the seccomp agent of a container in alert mode whose
// filter hands calls to it (plan.SeccompAgent), before runc connects to
// it. What it counts becomes seccomp-would-deny and exec-would-refuse
// records in the container's audit sinks. nil when the plan needs none.
func (s *Service) startAgent(ctx context.Context, cfg *config.Config, plan *harden.Plan, base audit.Record) (*seccompagent.Agent, error) {
	if plan.SeccompAgent == "" {
		return nil, nil
	}
	ctx = context.WithoutCancel(ctx)
	return seccompagent.Start(seccompagent.Config{
		Container: base.Namespace + "/" + base.Container,
		Socket:    plan.SeccompAgent,
		ExecCalls: plan.SeccompExecCalls,
		ExecAllow: plan.ExecAllow,
		Interval:  seccompagent.DefaultInterval,
		Report: func(r seccompagent.Report) {
			write := func(ev audit.Event, fill func(*audit.Record)) {
				rec := base
				rec.Event, rec.Changes, rec.Result = ev, nil, audit.ResultAllowed
				fill(&rec)
				if err := s.audit(ctx, cfg, &rec); err != nil {
					log.G(ctx).WithError(err).WithField("container", rec.Namespace+"/"+rec.Container).Error("palisade: cannot write alert mode's record of what ran")
				}
			}
			if len(r.Syscalls) > 0 || (r.Dropped > 0 && len(r.Executables) == 0) {
				write(audit.EventSeccompWouldDeny, func(rec *audit.Record) { rec.Syscalls, rec.Dropped = r.Syscalls, r.Dropped })
			}
			if len(r.Executables) > 0 {
				write(audit.EventExecWouldRefuse, func(rec *audit.Record) {
					rec.Executables = r.Executables
					if len(r.Syscalls) == 0 {
						rec.Dropped = r.Dropped
					}
				})
			}
		},
	})
}
