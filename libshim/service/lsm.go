package service

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/containerd/api/types"
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
func releaseLSM(ctx context.Context, req *harden.Request, dec *harden.Decisions) {
	if err := harden.ReleaseLSM(req, dec); err != nil {
		log.G(ctx).WithError(err).WithField("container", req.Container()).Error("palisade: cannot release the container's SELinux MCS pair")
	}
}

// contextOptions are the mount options that set SELinux labels.
var contextOptions = []string{"context=", "fscontext=", "defcontext=", "rootcontext="}

// labelRootfs gives the container's root filesystem mounts the container's
// SELinux mount label (context=), as containerd's client does for the label
// a client chose: palisade chooses the label in the shim, after the client
// built the request. Label options a client put there are dropped.
func labelRootfs(mounts []*types.Mount, l *lsm.Labels) {
	if l == nil || l.SELinuxMount == "" {
		return
	}
	for _, m := range mounts {
		m.Options = slices.DeleteFunc(m.Options, func(o string) bool {
			return slices.ContainsFunc(contextOptions, func(p string) bool { return strings.HasPrefix(o, p) })
		})
		m.Options = append(m.Options, fmt.Sprintf("context=%q", l.SELinuxMount))
	}
}
