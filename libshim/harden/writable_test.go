package harden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/policy"
)

// A writable path is judged where it leads in the image: a link to /etc is
// refused, a link that stays inside the allowed directories is fine; a path
// inside a volume is refused.
func TestWritablePathsFollowTheImage(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc", "var/cache/log"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc", filepath.Join(root, "var/lib")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("cache/log", filepath.Join(root, "var/log")); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/var/lib":        "writable path /var/lib leads to /etc in the image",
		"/var/lib/app":    "writable path /var/lib/app leads to /etc/app in the image",
		"/var/log":        "",
		"/var/cache/fine": "",
	} {
		req := request(t, "", map[string]string{policy.AnnotationWritable: path})
		req.Rootfs = func(f func(string) error) error { return f(root) }
		err := harden(t, req, ctrSpec())
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
	req := request(t, "", map[string]string{policy.AnnotationWritable: "/var/cache/app"})
	req.Rootfs = func(f func(string) error) error { return f(root) }
	s := ctrSpec()
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/var/cache", Type: "bind", Source: t.TempDir(), Options: []string{"rbind"}})
	if err := harden(t, req, s); err == nil || !strings.Contains(err.Error(), "lies inside the volume mounted at /var/cache") {
		t.Errorf("a writable path inside a volume: %v", err)
	}
}
