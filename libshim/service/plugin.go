package service

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/log"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"palisade.dev/palisade/libshim/secrets"
)

// RuntimeName is palisade's containerd runtime type. containerd maps it to
// the binary containerd-shim-palisade-v2.
const RuntimeName = "io.containerd.palisade.v2"

// pluginID is palisade's TTRPC plugin. It must differ from the stock runc
// plugin's "task": registering that ID twice panics, so the stock plugin
// package is not imported at all.
const pluginID = "palisade-task"

// Register adds palisade's task service to the shim's plugin registry.
// Call it once, from main, before shim.RunShim.
func Register() {
	registry.Register(&plugin.Registration{
		Type:     plugins.TTRPCPlugin,
		ID:       pluginID,
		Requires: []plugin.Type{plugins.EventPlugin, plugins.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			pp, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			// Secrets tmpfs left by shims that were killed: their bundles are
			// gone. In the background, off the shim's start-up path: it reads
			// the host's whole mount table, which grows with every container
			// on the node, and it never races a Create (a mount's owner is
			// recorded before the mount exists, see secrets.Mount).
			go sweepSecrets(ic.Context)
			inner, err := task.NewTaskService(ic.Context, pp.(shim.Publisher), ss.(shutdown.Service))
			if err != nil {
				return nil, err
			}
			return &served{New(inner, ic.Properties[plugins.PropertyGRPCAddress], ic.Properties[plugins.PropertyTTRPCAddress])}, nil
		},
	})
}

// served is what the plugin hands to the shim runtime: the task service plus
// the panic-recovery interceptor the runtime installs on its ttrpc server.
type served struct{ *Service }

var _ shim.TTRPCServerUnaryOptioner = (*served)(nil)

// UnaryServerInterceptor recovers panics in every ttrpc handler: a panic
// becomes an Internal error for that one request, and the shim goes on
// serving its other containers.
func (*served) UnaryServerInterceptor() ttrpc.UnaryServerInterceptor {
	return RecoverInterceptor
}

// RecoverInterceptor turns a panic in a ttrpc handler into an error.
func RecoverInterceptor(ctx context.Context, unmarshal ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, method ttrpc.Method) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			log.G(ctx).WithField("method", info.FullMethod).WithField("stack", string(debug.Stack())).
				Errorf("palisade: recovered from a panic: %v", p)
			resp = nil
			err = status.Error(codes.Internal, fmt.Sprintf(
				"palisade: internal error in %s (recovered; the shim keeps serving its other containers): %v", info.FullMethod, p))
		}
	}()
	return method(ctx, unmarshal)
}

// sweepSecrets removes leftover secrets mounts; a panic in it is logged,
// never the shim's end.
func sweepSecrets(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			log.G(ctx).WithField("panic", r).Error("palisade: sweeping leftover secrets failed")
		}
	}()
	for _, err := range secrets.Sweep() {
		log.G(ctx).WithError(err).Error("palisade: cannot remove leftover secrets")
	}
}
