package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

// DirsEnv names the shim's environment variable listing extra directories
// (colon-separated) that admin configs may be read from, besides
// DefaultDir. The shim's environment is the node administrator's: it comes
// from containerd's own environment or its shim `env` setting, never from a
// client.
const DirsEnv = "PALISADE_CONFIG_DIRS"

// DefaultDir is where admin configs live.
const DefaultDir = "/etc/palisade"

// FromRuntimeOptions resolves the admin config from the options containerd
// sends with a task. For a runtime type other than io.containerd.runc.v2,
// containerd (CRI, and ctr with --runtime-config-path) sends
// runtimeoptions.v1.Options; no options at all means "use the default".
//
// The options come from whoever created the container, so they may only
// choose among the admin's configs: ConfigPath must be a file under
// DefaultDir or a directory in $PALISADE_CONFIG_DIRS, and ConfigBody (a
// whole config from the client) is refused. runc's own options are refused
// too: they would let a client choose the runtime binary or its state.
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
			return nil, fmt.Errorf("runtime options with a config body are not accepted: the admin config is a file the node administrator "+
				"installs under %s; send its path as ConfigPath: %w", DefaultDir, errdefs.ErrPermissionDenied)
		}
		if o.ConfigPath != "" {
			if err := Trusted(o.ConfigPath); err != nil {
				return nil, err
			}
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

// Trusted checks that an admin config path named by a client is one of the
// administrator's: a file under DefaultDir or a directory in
// $PALISADE_CONFIG_DIRS, after symlinks are resolved.
func Trusted(path string) error {
	dirs := []string{DefaultDir}
	for _, d := range filepath.SplitList(os.Getenv(DirsEnv)) {
		if filepath.IsAbs(d) {
			dirs = append(dirs, filepath.Clean(d))
		}
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		real = filepath.Clean(path)
	}
	for _, d := range dirs {
		if rd, err := filepath.EvalSymlinks(d); err == nil {
			d = rd
		}
		if strings.HasPrefix(real, d+"/") {
			return nil
		}
	}
	return fmt.Errorf("admin config %s is not in a directory the node administrator trusts (%s; more with %s in the shim's environment): %w",
		path, strings.Join(dirs, ", "), DirsEnv, errdefs.ErrPermissionDenied)
}
