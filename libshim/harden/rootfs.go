package harden

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// RootfsMount is one mount of a task's root filesystem as the client sent
// it in Create (containerd's snapshot mounts, or anything a client of
// containerd's API chose).
type RootfsMount struct {
	Type    string
	Source  string
	Target  string
	Options []string
}

func (m RootfsMount) String() string {
	return fmt.Sprintf("%s %s (%s)", m.Type, m.Source, strings.Join(m.Options, ","))
}

// rootfsPathOptions are the overlay options that name host directories.
var rootfsPathOptions = []string{"lowerdir", "lowerdir+", "datadir+", "upperdir", "workdir"}

// rootfsMountProblem says why a task rootfs mount is not one a snapshotter
// produces, or "": only overlay, bind and erofs mounts whose every host path
// lies below one of containerd's snapshotter directories are. A bind of "/"
// or of any other host directory as the container's root is refused.
func rootfsMountProblem(m RootfsMount, roots []string) string {
	if m.Target != "" {
		return "it targets " + m.Target + " inside the root; snapshotters mount the whole root"
	}
	var paths []string
	switch m.Type {
	case "overlay":
		for _, o := range m.Options {
			k, v, ok := strings.Cut(o, "=")
			switch {
			case ok && slices.Contains(rootfsPathOptions, k):
				paths = append(paths, splitLowerdirs(v)...)
			case ok && strings.Contains(v, "/"):
				return "option " + k + " names a path palisade has no rule for"
			}
		}
		if len(paths) == 0 {
			return "an overlay without layers"
		}
	case "bind", "rbind", "erofs":
		paths = []string{m.Source}
	default:
		return "snapshotters palisade knows produce overlay, bind or erofs mounts, not " + fmt.Sprintf("%q", m.Type)
	}
	if len(roots) == 0 {
		return "palisade could not learn containerd's snapshotter directories, so it cannot tell a snapshot from a host directory"
	}
	for _, p := range paths {
		if !below(p, roots) {
			return p + " is not below a containerd snapshotter directory (" + strings.Join(roots, ", ") + ")"
		}
	}
	return ""
}

// splitLowerdirs splits an overlay layer list at unescaped colons.
func splitLowerdirs(v string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v):
			cur.WriteByte(v[i+1])
			i++
		case v[i] == ':':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(v[i])
		}
	}
	return append(out, cur.String())
}

// below reports whether path, with symlinks resolved as the mount will
// resolve them, lies strictly below one of roots.
func below(path string, roots []string) bool {
	if !filepath.IsAbs(path) {
		return false
	}
	p := filepath.Clean(path)
	if resolved, err := filepath.EvalSymlinks(p); err == nil {
		p = resolved
	}
	return slices.ContainsFunc(roots, func(r string) bool { return strings.HasPrefix(p, filepath.Clean(r)+"/") })
}

// rootfsMounts refuses a task whose root filesystem mounts are not a
// snapshotter's.
func rootfsMounts(r *run, _ *specs.Spec) error {
	for _, m := range r.req.RootfsMounts {
		if why := rootfsMountProblem(m, r.req.SnapshotterRoots); why != "" {
			return r.refuse("the task's root filesystem mount "+m.String()+" is not allowed: "+why,
				"create the task from a snapshot (containerd's snapshotters), or run from a rootfs directory of your own (ctr run --rootfs)")
		}
	}
	return nil
}

func verifyRootfsMounts(req *Request, _ *Decisions, _ *specs.Spec) string {
	for _, m := range req.RootfsMounts {
		if why := rootfsMountProblem(m, req.SnapshotterRoots); why != "" {
			return "rootfs mount " + m.String() + ": " + why
		}
	}
	return ""
}
