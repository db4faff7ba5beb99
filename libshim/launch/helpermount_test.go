package launch

import (
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func parseMountinfo(t *testing.T, text string) []*mountinfo.Info {
	t.Helper()
	m, err := mountinfo.GetMountsFromReader(strings.NewReader(strings.TrimSpace(text)+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The helper's copy must sit on the container's own /dev tmpfs, which the
// host does not hold; a volume over /dev (here through a symlink, as runc
// follows one in the image) fails, as does anything else at the path.
func TestHelperMountProblem(t *testing.T) {
	host := parseMountinfo(t, `
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:23 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw
26 22 0:40 / /srv/shared rw shared:9 - tmpfs tmpfs rw`)
	helperDev := unix.Mkdev(0, 23)
	own := `
300 290 0:50 / / ro,relatime - overlay overlay rw
301 300 0:51 / /proc rw - proc proc rw
302 300 0:52 / /dev rw,nosuid - tmpfs tmpfs rw,mode=755
303 302 0:53 / /dev/pts rw - devpts devpts rw
320 302 0:23 /palisade-init/palisade-init-1 /dev/.palisade-init ro,nosuid,nodev - tmpfs tmpfs rw`
	if why := helperMountProblem(parseMountinfo(t, own), host, helperDev); why != "" {
		t.Errorf("the container's own /dev: %s", why)
	}
	for name, c := range map[string]struct{ mounts, want string }{
		"volume-over-dev": {`
300 290 0:50 / / ro,relatime - overlay overlay rw
302 300 0:52 / /dev rw,nosuid - tmpfs tmpfs rw,mode=755
310 302 0:40 / /dev rw,nosuid,nodev - tmpfs tmpfs rw
320 310 0:23 /palisade-init/palisade-init-1 /dev/.palisade-init ro,nosuid,nodev - tmpfs tmpfs rw`, "also mounted on the host, at /srv/shared"},
		"disk-volume-over-dev": {`
302 300 0:52 / /dev rw,nosuid - tmpfs tmpfs rw,mode=755
310 302 8:1 /srv/x /dev rw,nosuid,nodev - ext4 /dev/sda1 rw
320 310 0:23 /palisade-init/palisade-init-1 /dev/.palisade-init ro,nosuid,nodev - tmpfs tmpfs rw`, "a ext4 mount at /dev"},
		"not-the-copy": {`
302 300 0:52 / /dev rw,nosuid - tmpfs tmpfs rw,mode=755
320 302 0:23 /palisade-init/palisade-init-1 /dev/.palisade-init ro,nosuid,nodev - tmpfs tmpfs rw
321 320 8:1 /srv/fake /dev/.palisade-init ro - ext4 /dev/sda1 rw`, "not palisade-init's"},
		"missing": {`
302 300 0:52 / /dev rw,nosuid - tmpfs tmpfs rw,mode=755`, "not mounted"},
	} {
		if why := helperMountProblem(parseMountinfo(t, c.mounts), host, helperDev); !strings.Contains(why, c.want) {
			t.Errorf("%s: %q, want %q", name, why, c.want)
		}
	}
}
