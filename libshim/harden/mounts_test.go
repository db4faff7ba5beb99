package harden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A bind source is resolved once in the mounts step and judged as
// resolved: a symlink into a protected directory (or to one of its
// parents) is refused, one to an ordinary directory is bound to its target,
// and a source that does not resolve is judged by its path.
func TestBindSourceJudgedAsResolved(t *testing.T) {
	dir := t.TempDir()
	protected := filepath.Join(dir, "state")
	volume := filepath.Join(dir, "volume")
	for _, d := range []string{filepath.Join(protected, "sub"), volume} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{"to-state": protected, "to-sub": filepath.Join(protected, "sub"), "to-parent": dir, "to-volume": volume}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	bind := func(src string) *specs.Spec {
		s := ctrSpec()
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "rw"}})
		return s
	}
	for _, c := range []struct{ src, refusal, source string }{
		{src: filepath.Join(dir, "to-state"), refusal: protected + " is test state"},
		{src: filepath.Join(dir, "to-sub"), refusal: protected + " is test state"},
		{src: filepath.Join(dir, "to-parent"), refusal: "it contains " + protected},
		{src: filepath.Join(dir, "to-volume"), source: volume},
		{src: filepath.Join(protected, "missing"), refusal: protected + " is test state"},
		{src: filepath.Join(dir, "missing", "..", "state"), refusal: protected + " is test state"},
	} {
		req := request(t, "", nil)
		req.HostPaths = append(req.HostPaths, ProtectedPath{Path: protected, Why: "test state"})
		s := bind(c.src)
		_, err := hardenInPlace(req, s)
		if c.refusal != "" {
			if err == nil || !strings.Contains(err.Error(), c.refusal) || !strings.Contains(err.Error(), "rule mounts") {
				t.Errorf("%s: %v, want a refusal naming %q", c.src, err, c.refusal)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		for _, m := range s.Mounts {
			if m.Destination == "/data" && m.Source != c.source {
				t.Errorf("%s: bound from %s, want %s", c.src, m.Source, c.source)
			}
		}
	}
}
