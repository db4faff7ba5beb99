package policy

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/libshim/docgen"
	"palisade.dev/palisade/libshim/execguard"
)

var update = flag.Bool("update", false, "rewrite generated doc sections")

// The docs' annotation table is the code's.
func TestAnnotationsDocumented(t *testing.T) {
	var b strings.Builder
	b.WriteString("| annotation | value | effect |\n|---|---|---|\n")
	for _, d := range AnnotationDocs() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", d.Key, d.Value, d.Effect)
	}
	diff, err := docgen.Check("../../docs/profiles.md", "annotations", b.String(), *update)
	if err != nil {
		t.Fatal(err)
	}
	if diff != "" {
		t.Fatal(diff)
	}
}

// FuzzAnnotations resolves arbitrary annotation maps (workload input): it
// never panics, and whatever it accepts stays within the admin's bounds: a
// selectable profile, capabilities the profile allows, a PID limit no higher
// than the profile's, an exec list within the profile's.
func FuzzAnnotations(f *testing.F) {
	f.Add("palisade.dev/cap-add", "NET_BIND_SERVICE", "palisade.dev/pids-limit", "12", "baseline")
	f.Add("palisade.dev/exec-allow", "/bin/", "palisade.dev/secrets", "db=/etc/db", "restricted")
	f.Add("palisade.dev/seccomp-profile", "unconfined", "palisade.dev/secret-env", "A,B", "locked")
	f.Add("palisade.dev/profile", "baseline", "palisade.dev/cap-ad", "x", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, profile string) {
		cfg := config.Default()
		cfg.ProfilesDir = ""
		cfg.SelectableProfiles = []string{"baseline", "locked"}
		cfg.Secrets.Store = "/nonexistent-store"
		ann := map[string]string{k1: v1, k2: v2}
		if profile != "" {
			ann[AnnotationProfile] = profile
		}
		pol, err := Resolve("ns/c", cfg, ann)
		if err != nil {
			return
		}
		selectable := append([]string{cfg.DefaultProfile}, cfg.SelectableProfiles...)
		if !slices.Contains(selectable, pol.Profile.Name) {
			t.Fatalf("profile %q is not selectable", pol.Profile.Name)
		}
		for _, c := range pol.CapAdd {
			if !slices.Contains(pol.Profile.Capabilities.Allowed, c) {
				t.Fatalf("cap-add %s beyond the profile", c)
			}
		}
		if pol.PidsLimit <= 0 || pol.PidsLimit > pol.Profile.Pids.Limit {
			t.Fatalf("PID limit %d, profile's %d", pol.PidsLimit, pol.Profile.Pids.Limit)
		}
		if pol.Exec != nil && len(pol.Profile.Exec.Allow) > 0 {
			if err := execguard.Narrows(pol.Exec.Allow, pol.Profile.Exec.Allow); err != nil {
				t.Fatalf("exec list %v wider than the profile's: %v", pol.Exec.Allow, err)
			}
		}
		if pol.Seccomp == nil && !cfg.Overrides[pol.Profile.Name].SeccompUnconfined {
			t.Fatal("unconfined seccomp without the admin's override")
		}
	})
}
