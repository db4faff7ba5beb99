// Command containerd-shim-palisade-v2 is the palisade containerd shim
// (runtime type io.containerd.palisade.v2): containerd's runc shim with
// palisade's mandatory hardening in front of it.
package main

import (
	"context"

	"github.com/containerd/containerd/v2/pkg/shim"
	containerdversion "github.com/containerd/containerd/v2/version"

	"palisade.dev/palisade"
	"palisade.dev/palisade/libshim/service"
)

func main() {
	containerdversion.Version = palisade.Version // reported by -v and in runtime Info
	containerdversion.Revision = palisade.Commit
	service.Register()
	shim.RunShim(context.Background(), service.NewManager())
}
