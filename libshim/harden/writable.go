package harden

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// writablePaths checks the tmpfs at or below a directory the profile lets
// workloads make writable (filesystem.writable_allowed, asked for with
// palisade.dev/writable-paths) before they are mounted. runc mounts a tmpfs
// where its path leads inside the container: a path that is a symbolic
// link in the image (/var/lib -> /etc), or that lies inside a volume
// (where another container of the pod can plant such a link), would make a
// directory writable that the profile does not allow.
func writablePaths(r *run, s *specs.Spec) error {
	allowed := r.req.Policy.Profile.Filesystem.WritableAllowed
	var paths []string
	for _, t := range r.req.Policy.Profile.Filesystem.Tmpfs {
		if atOrBelowAny(t.Path, allowed) {
			paths = append(paths, t.Path)
		}
	}
	if len(paths) == 0 {
		return nil
	}
	for _, p := range paths {
		for _, m := range s.Mounts {
			if d := filepath.Clean(m.Destination); isBind(m) && d != "/" && strings.HasPrefix(p, d+"/") {
				return r.refuse(fmt.Sprintf("writable path %s lies inside the volume mounted at %s", p, d),
					"drop it from palisade.dev/writable-paths: the volume is the container's storage already")
			}
		}
	}
	if r.req.Rootfs == nil {
		r.note("writable paths not checked against the image: no root filesystem to look in")
		return nil
	}
	var why string
	err := r.req.Rootfs(func(root string) error {
		for _, p := range paths {
			resolved, err := securejoin.SecureJoin(root, p)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, resolved)
			if err != nil {
				return err
			}
			if to := "/" + rel; to != p && !atOrBelowAny(to, allowed) {
				why = fmt.Sprintf("writable path %s leads to %s in the image (a symbolic link), outside the directories profile %q lets workloads make writable (%s)",
					p, to, r.profile(), strings.Join(allowed, ", "))
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return r.refuse(fmt.Sprintf("cannot look up the writable paths in the image: %v", err), "")
	}
	if why != "" {
		return r.refuse(why, "ask for the directory the link leads to if the profile allows it, or use an emptyDir volume")
	}
	return nil
}

func atOrBelowAny(p string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool { return p == d || strings.HasPrefix(p, d+"/") })
}
