package config

import (
	"fmt"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

// FromRuntimeOptions resolves the admin config from the options containerd
// sends with a task. For a runtime type other than io.containerd.runc.v2,
// containerd (CRI, and ctr with --runtime-config-path) sends
// runtimeoptions.v1.Options; no options at all means "use the default".
//
// runc's own options are refused: they would let a client choose the runtime
// binary or its state directory, which belongs to the administrator.
func FromRuntimeOptions(opts typeurl.Any) (*Config, error) {
	if opts == nil || len(opts.GetValue()) == 0 && opts.GetTypeUrl() == "" {
		return Resolve("")
	}
	v, err := typeurl.UnmarshalAny(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot decode runtime options of type %q: %w: %w", opts.GetTypeUrl(), err, errdefs.ErrInvalidArgument)
	}
	switch o := v.(type) {
	case *runtimeoptions.Options:
		if len(o.ConfigBody) > 0 {
			return Parse(SourceBody, o.ConfigBody)
		}
		return Resolve(o.ConfigPath)
	case *runcoptions.Options:
		return nil, fmt.Errorf("runc runtime options are not accepted by io.containerd.palisade.v2 "+
			"(the runc binary and state root are set by the node administrator in the [runc] section of %s): %w",
			DefaultPath, errdefs.ErrInvalidArgument)
	default:
		return nil, fmt.Errorf("runtime options of type %T are not understood; "+
			"send runtimeoptions.v1.Options with ConfigPath or nothing: %w", v, errdefs.ErrInvalidArgument)
	}
}

// RuncOptions translates the admin config into the options containerd's runc
// shim expects, so that the wrapped shim never sees a type it would panic on.
func (c *Config) RuncOptions() *runcoptions.Options {
	return &runcoptions.Options{
		BinaryName:    c.Runc.BinaryName,
		Root:          c.Runc.Root,
		SystemdCgroup: c.Runc.SystemdCgroup,
	}
}

// RuncOptionsAny is RuncOptions packed for a task request.
func (c *Config) RuncOptionsAny() (*anypb.Any, error) {
	return typeurl.MarshalAnyToProto(c.RuncOptions())
}
