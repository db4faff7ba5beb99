package policy

import (
	"strings"
	"testing"
)

// palisade.dev/writable-paths adds noexec tmpfs within the profile's
// allow-list only, bounded in number, without touching the shared profile.
func TestWritablePaths(t *testing.T) {
	pol, err := Resolve("ns/c", cfg(t, ""), map[string]string{AnnotationWritable: "/var/cache/nginx,/var/log, /var/cache/nginx"})
	if err != nil {
		t.Fatal(err)
	}
	var added []string
	for _, m := range pol.Profile.Filesystem.Tmpfs {
		if strings.HasPrefix(m.Path, "/var/") && m.Path != "/var/run" {
			added = append(added, m.Path+" "+m.Size)
			if m.Exec {
				t.Errorf("%s is executable", m.Path)
			}
		}
	}
	if strings.Join(added, ";") != "/var/cache/nginx 32m;/var/log 32m" {
		t.Errorf("added tmpfs %v", added)
	}
	if again, _ := Resolve("ns/c", cfg(t, ""), nil); len(again.Profile.Filesystem.Tmpfs) != 3 {
		t.Errorf("the annotation leaked into the profile: %+v", again.Profile.Filesystem.Tmpfs)
	}
	for v, want := range map[string]string{
		"/etc":               "is not at or below a directory profile \"restricted\" lets workloads make writable",
		"/var/cachex":        "is not at or below",
		"var/log":            "is not a clean absolute directory",
		"/var/log/../../etc": "is not a clean absolute directory",
		"/var/lib/a,/var/lib/b,/var/lib/c,/var/lib/d,/var/lib/e,/var/lib/f,/var/lib/g,/var/lib/h,/var/lib/i": "more than 8",
	} {
		if _, err := Resolve("ns/c", cfg(t, ""), map[string]string{AnnotationWritable: v}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", v, err, want)
		}
	}
}
