package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/config"
)

func cfg(t *testing.T, body string) *config.Config {
	t.Helper()
	c, err := config.Parse("admin.toml", []byte("profiles_dir = \"\"\n"+body))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolve(t *testing.T) {
	cases := []struct {
		name, config string
		ann          map[string]string
		profile      string
		capAdd       []string
		pids         int64
		refuse       string // substring of the refusal
		rule         string
	}{
		{name: "default", profile: "restricted", pids: 256},
		{name: "cap-add", ann: map[string]string{AnnotationCapAdd: "net_bind_service,CAP_NET_BIND_SERVICE"}, profile: "restricted", capAdd: []string{"CAP_NET_BIND_SERVICE"}, pids: 256},
		{name: "cap-add unknown", ann: map[string]string{AnnotationCapAdd: "NET_BIND"}, refuse: `palisade.dev/cap-add: unknown capability "NET_BIND"`, rule: "capabilities"},
		{name: "cap-add not allowed", ann: map[string]string{AnnotationCapAdd: "IPC_LOCK"}, refuse: `capability CAP_IPC_LOCK is not allowed by profile "restricted" (allowed: NET_BIND_SERVICE)`, rule: "capabilities"},
		{name: "pids lower", ann: map[string]string{AnnotationPidsLimit: "32"}, profile: "restricted", pids: 32},
		{name: "pids higher", ann: map[string]string{AnnotationPidsLimit: "1000"}, refuse: "palisade.dev/pids-limit=1000 is above the profile's limit of 256", rule: "pids-limit"},
		{name: "pids garbage", ann: map[string]string{AnnotationPidsLimit: "1e3"}, refuse: `palisade.dev/pids-limit="1e3" is not a positive number`, rule: "pids-limit"},
		{name: "pids zero", ann: map[string]string{AnnotationPidsLimit: "0"}, refuse: "is not a positive number", rule: "pids-limit"},
		{name: "unknown annotation", ann: map[string]string{"palisade.dev/privileged": "true"}, refuse: `unknown annotation "palisade.dev/privileged"`, rule: "annotations"},
		{name: "oversized annotation", ann: map[string]string{AnnotationCapAdd: strings.Repeat("A", 5000)}, refuse: "longer than 4096 bytes", rule: "annotations"},
		{name: "other prefixes ignored", ann: map[string]string{"io.kubernetes.cri.container-name": "x"}, profile: "restricted", pids: 256},
		{name: "unknown profile", ann: map[string]string{AnnotationProfile: "nope"}, refuse: `unknown profile "nope"`, rule: "profile-selection"},
		{name: "baseline not selectable", ann: map[string]string{AnnotationProfile: "baseline"}, refuse: `profile "baseline" is not selectable on this node`, rule: "profile-selection"},
		{name: "baseline selectable", config: "selectable_profiles = [\"baseline\"]\n", ann: map[string]string{AnnotationProfile: "baseline", AnnotationCapAdd: "IPC_LOCK"}, profile: "baseline", capAdd: []string{"CAP_IPC_LOCK"}, pids: 1024},
		{name: "default always selectable", ann: map[string]string{AnnotationProfile: "restricted"}, profile: "restricted", pids: 256},
		{name: "override allow-list and pids", config: "[overrides.restricted]\ncapabilities_allowed = [\"NET_BIND_SERVICE\", \"ipc_lock\"]\npids_limit = 100\n",
			ann: map[string]string{AnnotationCapAdd: "IPC_LOCK"}, profile: "restricted", capAdd: []string{"CAP_IPC_LOCK"}, pids: 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pol, err := Resolve("ns/c", cfg(t, c.config), c.ann)
			if c.refuse != "" {
				var r *Refusal
				if !errors.As(err, &r) || r.Rule != c.rule || !strings.Contains(err.Error(), c.refuse) || !strings.Contains(err.Error(), "container ns/c") {
					t.Fatalf("got %v, want refusal by %s containing %q", err, c.rule, c.refuse)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pol.Profile.Name != c.profile || pol.PidsLimit != c.pids || strings.Join(pol.CapAdd, ",") != strings.Join(c.capAdd, ",") {
				t.Errorf("policy: profile %s pids %d capAdd %v", pol.Profile.Name, pol.PidsLimit, pol.CapAdd)
			}
		})
	}
}

func TestOverrideErrorsNameTheConfig(t *testing.T) {
	_, err := Resolve("ns/c", cfg(t, "[overrides.restricted]\ncapabilities_allowed = [\"BOGUS\"]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `admin.toml: field "overrides.restricted"`) || !strings.Contains(err.Error(), `unknown capability "BOGUS"`) {
		t.Errorf("bad override: %v", err)
	}
	_, err = Resolve("ns/c", cfg(t, "[overrides.nosuch]\npids_limit = 5\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `field "overrides.nosuch": profile "nosuch" does not exist`) {
		t.Errorf("override of an unknown profile: %v", err)
	}
	_, err = Resolve("ns/c", cfg(t, "default_profile = \"gone\"\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `field "default_profile": profile "gone" does not exist`) {
		t.Errorf("unknown default profile: %v", err)
	}
}

// An override is the node's copy: it never changes the shared built-in.
func TestOverrideDoesNotLeak(t *testing.T) {
	c := cfg(t, "[overrides.restricted]\npids_limit = 7\n")
	if pol, err := Resolve("ns/c", c, nil); err != nil || pol.PidsLimit != 7 {
		t.Fatalf("%v %v", pol, err)
	}
	if pol, err := Resolve("ns/c", cfg(t, ""), nil); err != nil || pol.PidsLimit != 256 {
		t.Fatalf("override leaked: %v %v", pol.PidsLimit, err)
	}
}

func TestAdminProfilesDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web.toml"), []byte("name = \"web\"\n[pids]\nlimit = 50\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("admin.toml", []byte("profiles_dir = \""+dir+"\"\ndefault_profile = \"web\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := Resolve("ns/c", c, nil)
	if err != nil || pol.Profile.Name != "web" || pol.PidsLimit != 50 || len(pol.Profile.Capabilities.Allowed) != 0 {
		t.Fatalf("admin profile: %+v %v", pol, err)
	}
}

func TestResolveSeccomp(t *testing.T) {
	pol, err := Resolve("ns/c", cfg(t, ""), nil)
	if err != nil || pol.Seccomp == nil || pol.SeccompName != "palisade-default" {
		t.Fatalf("default seccomp: %+v %v", pol, err)
	}
	_, err = Resolve("ns/c", cfg(t, ""), map[string]string{AnnotationSeccomp: "unconfined"})
	if err == nil || !strings.Contains(err.Error(), `running without seccomp is not allowed for profile "restricted"`) {
		t.Errorf("unconfined without consent: %v", err)
	}
	_, err = Resolve("ns/c", cfg(t, ""), map[string]string{AnnotationSeccomp: "other"})
	if err == nil || !strings.Contains(err.Error(), `seccomp profile "other" is not selectable under profile "restricted" [rule seccomp`) {
		t.Errorf("unlisted seccomp profile: %v", err)
	}
	pol, err = Resolve("ns/c", cfg(t, "[overrides.restricted]\nseccomp_unconfined = true\n"), map[string]string{AnnotationSeccomp: "unconfined"})
	if err != nil || pol.Seccomp != nil || pol.SeccompName != "unconfined" {
		t.Errorf("unconfined with consent: %+v %v", pol, err)
	}
}

func TestResolveExec(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bb.toml"), []byte("name = \"bb\"\n[pids]\nlimit = 9\n[exec]\nmode = \"enforce\"\nallow = [\"/bin/busybox\", \"/opt/app/\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("admin.toml", []byte("profiles_dir = \""+dir+"\"\nselectable_profiles = [\"bb\", \"locked\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		ann    map[string]string
		mode   string
		allow  string
		refuse string
	}{
		{"profile list", map[string]string{AnnotationProfile: "bb"}, "enforce", "/bin/busybox,/opt/app/", ""},
		{"narrowed", map[string]string{AnnotationProfile: "bb", AnnotationExecAllow: "/opt/app/bin/server"}, "enforce", "/opt/app/bin/server", ""},
		{"widened", map[string]string{AnnotationProfile: "bb", AnnotationExecAllow: "/usr/bin/python3"}, "", "", "does not narrow the profile's list: /usr/bin/python3 is not within"},
		{"no profile list: annotation enforces", map[string]string{AnnotationExecAllow: "/usr/bin/probe"}, "enforce", "/usr/bin/probe", ""},
		{"relative", map[string]string{AnnotationExecAllow: "bin/sh"}, "", "", `entry "bin/sh" is not a clean absolute path`},
		{"entrypoint-only cannot narrow", map[string]string{AnnotationProfile: "locked", AnnotationExecAllow: "/bin/sh"}, "", "", "already allows only the entrypoint"},
		{"entrypoint-only", map[string]string{AnnotationProfile: "locked"}, "entrypoint-only", "", ""},
		{"none", nil, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := Resolve("ns/c", c, tc.ann)
			if tc.refuse != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("got %v, want %q", err, tc.refuse)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.mode == "" {
				if pol.Exec != nil {
					t.Errorf("unexpected exec policy %+v", pol.Exec)
				}
				return
			}
			if pol.Exec == nil || pol.Exec.Mode != tc.mode || strings.Join(pol.Exec.Allow, ",") != tc.allow {
				t.Errorf("exec policy %+v, want %s %s", pol.Exec, tc.mode, tc.allow)
			}
		})
	}
}

func TestResolveSecrets(t *testing.T) {
	withStore := cfg(t, "secrets.store = \"/etc/palisade/secrets\"\n")
	pol, err := Resolve("ns/c", withStore, map[string]string{AnnotationSecrets: "db, tls.key=/etc/app/tls.key", AnnotationSecretEnv: "API_TOKEN"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.Secrets) != 2 || pol.Secrets[1] != (SecretRequest{Name: "tls.key", Target: "/etc/app/tls.key"}) || pol.SecretEnv[0] != "API_TOKEN" {
		t.Errorf("secrets %+v env %v", pol.Secrets, pol.SecretEnv)
	}
	for ann, want := range map[string]string{
		"../x":         "is not allowed",
		"a=/proc/self": "is under /proc",
		"a=rel/path":   "not a clean absolute path",
		"a,a":          "names secret \"a\" twice",
	} {
		if _, err := Resolve("ns/c", withStore, map[string]string{AnnotationSecrets: ann}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", ann, err, want)
		}
	}
	if _, err := Resolve("ns/c", cfg(t, ""), map[string]string{AnnotationSecrets: "db"}); err == nil || !strings.Contains(err.Error(), "no secret store") {
		t.Errorf("no store: %v", err)
	}
	if _, err := Resolve("ns/c", withStore, map[string]string{AnnotationSecretEnv: "1BAD"}); err == nil {
		t.Error("bad variable name accepted")
	}
}

// Compat ABIs are off for every built-in profile; an admin turns them on (or
// back off) per profile with overrides.NAME.seccomp_compat_abi, and an
// admin profile with seccomp.compat_abi = true has them.
func TestSeccompCompatABI(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "legacy.toml"), []byte("name = \"legacy\"\n[pids]\nlimit = 64\n[seccomp]\ncompat_abi = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		config, profile string
		want            bool
	}{
		{"", "restricted", false},
		{"", "baseline", false},
		{"", "locked", false},
		{"[overrides.baseline]\nseccomp_compat_abi = true\n", "baseline", true},
		{"[overrides.baseline]\nseccomp_compat_abi = true\n", "restricted", false},
		{"", "legacy", true},
		{"[overrides.legacy]\nseccomp_compat_abi = false\n", "legacy", false},
	} {
		body := "profiles_dir = \"" + dir + "\"\nselectable_profiles = [\"baseline\", \"locked\", \"legacy\"]\n" + c.config
		conf, err := config.Parse("admin.toml", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		pol, err := Resolve("ns/c", conf, map[string]string{AnnotationProfile: c.profile})
		if err != nil {
			t.Fatal(err)
		}
		if pol.Profile.Seccomp.CompatABI != c.want {
			t.Errorf("%s with %q: compat_abi = %v, want %v", c.profile, c.config, pol.Profile.Seccomp.CompatABI, c.want)
		}
	}
}
