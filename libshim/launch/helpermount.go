package launch

import (
	"bytes"
	"fmt"
	"os"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/execguard"
)

// The spec puts palisade-init (the filter's unreadable copy, or the exec
// allow-list's helper) on a file of the container's /dev tmpfs
// (specProblem), but runc mounts each destination where its path
// leads inside the rootfs: a volume mounted at a path that a symlink in the
// image (or in an earlier volume) points at /dev lands over that tmpfs, and
// the helper's mount point is then a file of the volume. Another container
// sharing the volume could unlink it from its own mount namespace — which
// detaches the helper's mount in this one — and put its own program there,
// which every later exec process of this container would run without the
// filter or the allow-list. So, once runc has created the container, the mounts it really
// made are checked from the host.

// helperMountProblem says why the helper's mount in the created container
// whose mount table is mounts is not safe, "" if it is: the last mount at
// execguard.HelperPath must be the helper (its file on device helperDev), on a
// tmpfs mounted at /dev that the host's mount table (host) does not hold,
// so that only the container's own mount namespace reaches it.
func helperMountProblem(mounts, host []*mountinfo.Info, helperDev uint64) string {
	var helper, parent *mountinfo.Info
	for _, m := range mounts {
		if m.Mountpoint == execguard.HelperPath {
			helper = m
		}
	}
	if helper == nil {
		return "palisade-init is not mounted at " + execguard.HelperPath
	}
	if unix.Mkdev(uint32(helper.Major), uint32(helper.Minor)) != helperDev {
		return fmt.Sprintf("the last mount at %s is not palisade-init's (device %d:%d)", execguard.HelperPath, helper.Major, helper.Minor)
	}
	for _, m := range mounts {
		if m.ID == helper.Parent {
			parent = m
		}
	}
	if parent == nil || parent.Mountpoint != "/dev" || parent.FSType != "tmpfs" {
		what := "no mount"
		if parent != nil {
			what = fmt.Sprintf("a %s mount at %s", parent.FSType, parent.Mountpoint)
		}
		return fmt.Sprintf("%s is on %s, not on the container's own /dev tmpfs (a volume mounted over /dev through a symlink?)", execguard.HelperPath, what)
	}
	for _, m := range host {
		if m.Major == parent.Major && m.Minor == parent.Minor {
			return fmt.Sprintf("the tmpfs at /dev that holds %s is also mounted on the host, at %s: it is a shared volume, not the container's own /dev",
				execguard.HelperPath, m.Mountpoint)
		}
	}
	return ""
}

// checkHelperMount checks the helper's mount of the created container
// whose init is pid (see helperMountProblem).
func checkHelperMount(pid uint32, helper string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(helper, &st); err != nil {
		return "", err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return "", err
	}
	mounts, err := mountinfo.GetMountsFromReader(bytes.NewReader(data), nil)
	if err != nil {
		return "", err
	}
	host, err := mountinfo.GetMounts(nil)
	if err != nil {
		return "", err
	}
	return helperMountProblem(mounts, host, st.Dev), nil
}
