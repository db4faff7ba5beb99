package config

import (
	"fmt"
	"strings"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/errdefs"
)

// fromRuncOptions accepts the runc options containerd's client builds for a
// pod with its own user namespace (Kubernetes hostUsers: false): it sets
// IoUid/IoGid (the owner of the container's I/O pipes, the mapped root) on
// runc's options type, which it creates itself when the handler sends none
// — so such a handler has no ConfigPath, and the admin config is the
// default one (DefaultPath). The runtime binary, its state root and the
// cgroup driver stay the admin's: those fields may only repeat the admin
// config's values; any other runc option is refused, named in the message.
func fromRuncOptions(o *runcoptions.Options) (*Config, error) {
	cfg, err := Resolve("")
	if err != nil {
		return nil, err
	}
	var refused []string
	check := func(name string, set, ok bool) {
		if set && !ok {
			refused = append(refused, name)
		}
	}
	check("BinaryName", o.BinaryName != "", o.BinaryName == cfg.Runc.BinaryName)
	check("Root", o.Root != "", o.Root == cfg.Runc.Root)
	check("SystemdCgroup", o.SystemdCgroup, o.SystemdCgroup == cfg.Runc.SystemdCgroup)
	check("NoPivotRoot", o.NoPivotRoot, false)
	check("NoNewKeyring", o.NoNewKeyring, false)
	check("ShimCgroup", o.ShimCgroup != "", false)
	check("CriuImagePath", o.CriuImagePath != "", false)
	check("CriuWorkPath", o.CriuWorkPath != "", false)
	check("TaskApiAddress", o.TaskApiAddress != "", false) //nolint:staticcheck // deprecated, yet a client can still send it: refused
	check("TaskApiVersion", o.TaskApiVersion != 0, false)  //nolint:staticcheck // deprecated, yet a client can still send it: refused
	if len(refused) > 0 {
		return nil, fmt.Errorf("runc runtime options %s are not accepted by io.containerd.palisade.v2: the runc binary, its state root "+
			"and cgroup driver are the node administrator's ([runc] section of %s), and only IoUid/IoGid (set by containerd for "+
			"user-namespace pods) may come with a task: %w", strings.Join(refused, ", "), cfg.Source, errdefs.ErrInvalidArgument)
	}
	c := *cfg
	c.io.uid, c.io.gid = o.IoUid, o.IoGid
	return &c, nil
}
