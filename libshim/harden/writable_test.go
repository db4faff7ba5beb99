package harden

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/policy"
)

// A tmpfs is judged where it leads in the container: a link to /etc is a
// problem, for the profile's /tmp as for a writable path; /var/run leading
// to the profile's /run is fine, and so is a writable path whose link stays
// inside the allowed directories. A writable path inside a volume is
// refused before runc runs.
func TestTmpfsPlaces(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc", "run", "var/cache/log"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"var/lib": "/etc", "var/log": "cache/log", "var/run": "../run", "tmp": "/etc"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		paths []string
		want  string
	}{
		{[]string{"/run", "/var/run"}, ""},
		{[]string{"/var/log", "/var/cache/fine"}, ""},
		{[]string{"/run", "/tmp"}, "tmpfs /tmp leads to /etc in the container"},
		{[]string{"/var/lib"}, "tmpfs /var/lib leads to /etc in the container"},
		{[]string{"/var/lib/app"}, "tmpfs /var/lib/app leads to /etc/app in the container"},
	} {
		tp := &TmpfsPlaces{Paths: c.paths, WritableAllowed: []string{"/var/cache", "/var/lib", "/var/log"}, Profile: "restricted"}
		why, err := tp.Problem(root)
		if err != nil || c.want == "" && why != "" || !strings.Contains(why, c.want) {
			t.Errorf("%v: %q %v, want %q", c.paths, why, err, c.want)
		}
	}

	req := request(t, "", map[string]string{policy.AnnotationWritable: "/var/cache/app"})
	s := ctrSpec()
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/var/cache", Type: "bind", Source: t.TempDir(), Options: []string{"rbind"}})
	if err := harden(t, req, s); err == nil || !strings.Contains(err.Error(), "lies inside the volume mounted at /var/cache") {
		t.Errorf("a writable path inside a volume: %v", err)
	}
	plan, _, err := Harden(request(t, "", map[string]string{policy.AnnotationWritable: "/var/cache/app"}), ctrSpec())
	if err != nil || plan.Tmpfs == nil || !slices.Contains(plan.Tmpfs.Paths, "/tmp") || !slices.Contains(plan.Tmpfs.Paths, "/var/cache/app") {
		t.Errorf("the plan's tmpfs places: %+v %v", plan, err)
	}
}
