package harden

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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

// rootfsOverlayOptions are the overlay options a snapshotter produces;
// the value of each path option is checked below. Anything else (a data
// option the kernel would read, another filesystem's device=) is refused.
var rootfsOverlayOptions = []string{"lowerdir", "upperdir", "workdir", "index", "userxattr", "volatile", "redirect_dir", "metacopy", "ro", "rw", "context", "uidmap", "gidmap"}

// idmapRe is the form of the snapshotters' uidmap=/gidmap= values:
// CONTAINER:HOST:SIZE triples.
var idmapRe = regexp.MustCompile(`^[0-9]+:[0-9]+:[0-9]+(,[0-9]+:[0-9]+:[0-9]+)*$`)

// quotedRe is a value in double quotes with none inside.
var quotedRe = regexp.MustCompile(`^"[^"]*"$`)

// rootfsMountProblem says why a task rootfs mount is not one a snapshotter
// produces, or "": an overlay whose layers are snapshot directories
// (ROOT/snapshots/ID/fs, its work directory ROOT/snapshots/ID/work) or a
// bind of one snapshot directory, ROOT being one of containerd's
// snapshotter directories. Option values are checked as the kernel will
// read them: containerd joins options with commas, so a comma inside a
// value would smuggle in another option.
func rootfsMountProblem(m RootfsMount, roots []string) string {
	if m.Target != "" {
		return "it targets " + m.Target + " inside the root; snapshotters mount the whole root"
	}
	if len(roots) == 0 {
		return "palisade could not learn containerd's snapshotter directories, so it cannot tell a snapshot from a host directory"
	}
	for _, o := range m.Options {
		k, v, _ := strings.Cut(o, "=")
		if (k == "uidmap" || k == "gidmap") && idmapRe.MatchString(v) {
			continue // user-namespace pods: containerd applies these itself
		}
		if strings.HasSuffix(k, "context") && quotedRe.MatchString(v) {
			continue // an SELinux context: the kernel reads a quoted value whole (its MCS level has commas)
		}
		if strings.Contains(o, ",") {
			return fmt.Sprintf("option %q holds a comma, which the kernel would read as another option", o)
		}
	}
	switch m.Type {
	case "overlay":
		layers := 0
		for _, o := range m.Options {
			k, v, _ := strings.Cut(o, "=")
			if !slices.Contains(rootfsOverlayOptions, k) {
				return "overlay option " + strconv.Quote(o) + " is not one a snapshotter produces"
			}
			switch k {
			case "lowerdir":
				for _, p := range splitLowerdirs(v) {
					if why := snapshotDir(p, "fs", roots); why != "" {
						return why
					}
					layers++
				}
			case "upperdir":
				if why := snapshotDir(v, "fs", roots); why != "" {
					return why
				}
			case "workdir":
				if why := snapshotDir(v, "work", roots); why != "" {
					return why
				}
			}
		}
		if layers == 0 {
			return "an overlay without layers"
		}
	case "bind", "rbind":
		for _, o := range m.Options {
			if k, _, _ := strings.Cut(o, "="); !slices.Contains([]string{"bind", "rbind", "ro", "rw", "uidmap", "gidmap", "context"}, k) {
				return "bind option " + strconv.Quote(o) + " is not one a snapshotter produces"
			}
		}
		return snapshotDir(m.Source, "fs", roots)
	default:
		return "snapshotters palisade knows produce overlay or bind mounts, not " + strconv.Quote(m.Type)
	}
	return ""
}

// snapshotDir says why p is not ROOT/snapshots/ID/leaf for one of roots
// (resolved as the mount will resolve it), or "".
func snapshotDir(p, leaf string, roots []string) string {
	if !filepath.IsAbs(p) {
		return p + " is not an absolute path"
	}
	resolved, err := filepath.EvalSymlinks(filepath.Clean(p))
	if err != nil {
		return p + " does not exist: " + err.Error()
	}
	id := filepath.Base(filepath.Dir(resolved))
	snaps := filepath.Dir(filepath.Dir(resolved))
	_, numErr := strconv.ParseUint(id, 10, 64)
	ok := filepath.Base(resolved) == leaf && numErr == nil && filepath.Base(snaps) == "snapshots" &&
		slices.ContainsFunc(roots, func(r string) bool {
			rr, err := filepath.EvalSymlinks(r)
			return err == nil && rr == filepath.Dir(snaps)
		})
	if !ok {
		return fmt.Sprintf("%s is not a snapshot's %s directory (SNAPSHOTTER/snapshots/ID/%s) below a containerd snapshotter directory (%s)", p, leaf, leaf, strings.Join(roots, ", "))
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
