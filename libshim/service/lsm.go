package service

import (
	"context"

	"github.com/containerd/log"

	"palisade.dev/palisade/libshim/harden"
	"palisade.dev/palisade/libshim/lsm"
)

// lsmEnv is the shim's view of the host's LSMs: detected once, MCS pairs
// reserved in the node's store, AppArmor profiles loaded through the
// reaper (the shim is a subreaper: exec.Cmd's own Wait would race it).
func lsmEnv() *lsm.Env {
	return &lsm.Env{Host: lsm.Detect(), Reserve: true, Load: true, Runner: runReaped}
}

// releaseLSM releases what the pipeline reserved for a container (its MCS
// pair); a failure is logged: the store drops the pair anyway once the
// container's bundle is gone.
func releaseLSM(ctx context.Context, req *harden.Request) {
	if err := harden.ReleaseLSM(req); err != nil {
		log.G(ctx).WithError(err).WithField("container", req.Container()).Error("palisade: cannot release the container's SELinux MCS pair")
	}
}
