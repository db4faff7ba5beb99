package harden

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TmpfsPlaces is what the tmpfs step decided about where the container's
// tmpfs may land. runc mounts a tmpfs where its path leads inside the
// container: a path that is a symbolic link in the image (/tmp -> /etc, or
// /var/lib -> /etc with palisade.dev/writable-paths) would make a directory
// writable that the profile keeps read-only. The launcher checks, once runc
// has mounted everything and before the container starts, that each path
// leads to itself, to another of the profile's tmpfs paths (/var/run ->
// /run), or — for the directories workloads may ask for — into
// filesystem.writable_allowed.
type TmpfsPlaces struct {
	Paths           []string // the tmpfs destinations, the profile's and the workload's
	WritableAllowed []string
	Profile         string
}

// Problem says where a tmpfs path leads that it may not, looking at the
// container's root (/proc/PID/root of its init, after runc's mounts), or "".
func (tp *TmpfsPlaces) Problem(root string) (string, error) {
	if tp == nil {
		return "", nil
	}
	for _, p := range tp.Paths {
		resolved, err := securejoin.SecureJoin(root, p)
		if err != nil {
			return "", fmt.Errorf("resolve %s in the container: %w", p, err)
		}
		rel, err := filepath.Rel(root, resolved)
		if err != nil {
			return "", err
		}
		to := "/" + filepath.ToSlash(rel)
		if to == p || slices.Contains(tp.Paths, to) || atOrBelowAny(p, tp.WritableAllowed) && atOrBelowAny(to, tp.WritableAllowed) {
			continue
		}
		return fmt.Sprintf("tmpfs %s leads to %s in the container (a symbolic link in the image), which profile %q keeps read-only", p, to, tp.Profile), nil
	}
	return "", nil
}

// TmpfsFix is what to do about a tmpfs that leads elsewhere.
const TmpfsFix = "use an image without the link, or mount a volume (emptyDir) at the directory the program writes"

// writablePaths refuses a tmpfs at or below a directory the profile lets
// workloads make writable (palisade.dev/writable-paths) that lies inside a
// volume: another container of the pod can plant a link there at any time.
// Where each tmpfs leads is checked after runc's mounts (TmpfsPlaces).
func writablePaths(r *run, s *specs.Spec) error {
	fs := r.req.Policy.Profile.Filesystem
	places := &TmpfsPlaces{WritableAllowed: fs.WritableAllowed, Profile: r.profile()}
	for _, t := range fs.Tmpfs {
		places.Paths = append(places.Paths, t.Path)
		if !atOrBelowAny(t.Path, fs.WritableAllowed) {
			continue
		}
		for _, m := range s.Mounts {
			if d := filepath.Clean(m.Destination); isBind(m) && d != "/" && strings.HasPrefix(t.Path, d+"/") {
				return r.refuse(fmt.Sprintf("writable path %s lies inside the volume mounted at %s", t.Path, d),
					"drop it from palisade.dev/writable-paths: the volume is the container's storage already")
			}
		}
	}
	if len(places.Paths) > 0 {
		r.dec.Tmpfs = places
	}
	return nil
}

func atOrBelowAny(p string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool { return p == d || strings.HasPrefix(p, d+"/") })
}
