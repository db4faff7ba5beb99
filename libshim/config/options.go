package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/anypb"

	"palisade.dev/palisade/libshim/safeopen"
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
		if o.ConfigPath == "" {
			return Resolve("")
		}
		return LoadTrusted(o.ConfigPath)
	case *runcoptions.Options:
		return fromRuncOptions(o)
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
		IoUid:         c.io.uid,
		IoGid:         c.io.gid,
	}
}

// RuncOptionsAny is RuncOptions packed for a task request.
func (c *Config) RuncOptionsAny() (*anypb.Any, error) {
	return typeurl.MarshalAnyToProto(c.RuncOptions())
}

// LoadTrusted loads an admin config a client named, only if it is one of
// the administrator's: a file directly inside DefaultDir or a directory in
// $PALISADE_CONFIG_DIRS, reached without following any symlink or magic
// link (openat2), owned by root and writable by no one else. The file that
// was checked is the file that is parsed: one descriptor for both.
func LoadTrusted(path string) (*Config, error) {
	refuse := func(why string) error {
		note := ""
		if _, err := readDirsFile(); err != nil {
			note = "; " + err.Error()
		}
		return fmt.Errorf("admin config %s is not one the node administrator trusts (%s; trusted: files directly in %s, more listed in %s or with %s in the shim's environment%s): %w",
			path, why, strings.Join(trustedDirs(), ", "), dirsFile, DirsEnv, note, errdefs.ErrPermissionDenied)
	}
	clean := filepath.Clean(path)
	dir, name := filepath.Dir(clean), filepath.Base(clean)
	if !filepath.IsAbs(clean) || !slices.Contains(trustedDirs(), dir) {
		return nil, refuse("not directly in a trusted directory")
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, Invalid(path, "", "cannot open: the trusted directory "+dir+" does not exist (create it, root-owned, and put the config there)")
	}
	if err != nil {
		return nil, refuse("cannot open the directory " + dir + ": " + err.Error())
	}
	defer func() { _ = unix.Close(dfd) }()
	f, st, err := safeopen.Regular(dfd, name, safeopen.Beneath)
	if err != nil {
		var nr *safeopen.NotRegularError
		switch {
		case errors.As(err, &nr):
			return nil, refuse("a " + nr.Type + ", not a regular file")
		case errors.Is(err, unix.ENOENT):
			return nil, Invalid(path, "", "cannot open: no such file")
		}
		return nil, refuse("opened without following links: " + err.Error())
	}
	defer func() { _ = f.Close() }()
	if st.Uid != 0 || st.Mode&0o022 != 0 {
		return nil, refuse("not a regular file owned by root and writable only by it")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, Invalid(path, "", fmt.Sprintf("cannot read: %v", err))
	}
	return Parse(path, data)
}

// trustedDirs are DefaultDir, the directories DirsFile lists and the
// absolute directories in DirsEnv. A DirsFile that cannot be trusted adds
// nothing (see trustedDirsNote).
func trustedDirs() []string {
	dirs := []string{DefaultDir}
	listed, _ := readDirsFile()
	dirs = append(dirs, listed...)
	for _, d := range filepath.SplitList(os.Getenv(DirsEnv)) {
		if filepath.IsAbs(d) {
			dirs = append(dirs, filepath.Clean(d))
		}
	}
	out := dirs[:0] // each directory once, in order
	for _, d := range dirs {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}
