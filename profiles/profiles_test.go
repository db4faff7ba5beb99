package profiles

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestBuiltins(t *testing.T) {
	set, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(set.Names(), []string{"baseline", "locked", "restricted"}) {
		t.Fatalf("built-ins %v", set.Names())
	}
	r := set["restricted"]
	if !slices.Equal(r.Capabilities.Allowed, []string{"CAP_NET_BIND_SERVICE"}) || r.Pids.Limit != 256 || r.User.AllowRoot ||
		r.User.UID != 65534 || r.Filesystem.WritableRootfs || len(r.Filesystem.Tmpfs) != 3 || r.Filesystem.Tmpfs[0].Path != "/tmp" || r.Filesystem.Tmpfs[0].Exec {
		t.Errorf("restricted is not what the docs say: %+v", r)
	}
	// every built-in gives stock images their run-time directories, noexec
	for _, name := range set.Names() {
		for _, dir := range []string{"/tmp", "/run", "/var/run"} {
			i := slices.IndexFunc(set[name].Filesystem.Tmpfs, func(m Tmpfs) bool { return m.Path == dir })
			if i < 0 || set[name].Filesystem.Tmpfs[i].Exec || set[name].Filesystem.Tmpfs[i].Size == "" {
				t.Errorf("%s: no noexec, size-limited tmpfs at %s", name, dir)
			}
		}
	}
	b := set["baseline"]
	for _, bad := range []string{"CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_NET_ADMIN", "CAP_SYS_CHROOT", "CAP_SYS_ADMIN"} {
		if slices.Contains(b.Capabilities.Allowed, bad) {
			t.Errorf("baseline allows %s", bad)
		}
	}
	if !slices.Contains(b.Capabilities.Allowed, "CAP_IPC_LOCK") || !b.User.AllowRoot || b.Pids.Limit != 1024 {
		t.Errorf("baseline: %+v", b)
	}
}

func TestParseErrors(t *testing.T) {
	ok := "name = \"p\"\n[pids]\nlimit = 10\n"
	cases := []struct{ name, body, want string }{
		{"typo", "name = \"p\"\n[pids]\nlimt = 10\n", `p.toml:3: field "pids.limt": unknown field`},
		{"unknown capability", ok + "[capabilities]\nallowed = [\"NET_BIND\"]\n", `field "capabilities.allowed[0]": unknown capability "NET_BIND"`},
		{"tmpfs path", ok + "[[filesystem.tmpfs]]\npath = \"tmp\"\nsize = \"1m\"\n", `field "filesystem.tmpfs[0].path": "tmp" is not a clean absolute path`},
		{"tmpfs size", ok + "[[filesystem.tmpfs]]\npath = \"/tmp\"\nsize = \"lots\"\n", `field "filesystem.tmpfs[0].size"`},
		{"tmpfs mode", ok + "[[filesystem.tmpfs]]\npath = \"/tmp\"\nsize = \"1m\"\nmode = \"999\"\n", `field "filesystem.tmpfs[0].mode"`},
		{"pids zero", "name = \"p\"\n", `field "pids.limit": must be a positive number of processes, not 0`},
		{"pids negative", "name = \"p\"\n[pids]\nlimit = -1\n", `field "pids.limit"`},
		{"name", "name = \"Bad Name\"\n[pids]\nlimit = 1\n", `field "name"`},
		{"namespace", ok + "[namespaces]\nhost_allowed = [\"mount\"]\n", `field "namespaces.host_allowed[0]": "mount" is not one of pid, network, ipc, uts`},
		{"device", ok + "[devices]\nallowed = [\"/etc/x\"]\n", `field "devices.allowed[0]"`},
		{"wrong type", "name = \"p\"\n[pids]\nlimit = \"ten\"\n", `p.toml:3`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("p.toml", []byte(c.body))
			if err == nil || !strings.Contains(err.Error(), c.want) || !errdefs.IsInvalidArgument(err) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
	if _, err := Parse("p.toml", []byte(ok)); err != nil {
		t.Errorf("minimal profile: %v", err)
	}
}

func TestLoadAdminDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web.toml"), []byte("name = \"web\"\n[pids]\nlimit = 50\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := Load(dir)
	if err != nil || set["web"] == nil || set["web"].Source != filepath.Join(dir, "web.toml") {
		t.Fatalf("load: %v %v", set.Names(), err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing profiles dir is not an error: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dup.toml"), []byte("name = \"restricted\"\n[pids]\nlimit = 5000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), `profile "restricted" is already defined by builtin:restricted.toml`) {
		t.Errorf("redefining a built-in: %v", err)
	}
}

func TestCloneIsDeep(t *testing.T) {
	set, _ := Builtin()
	c := set["restricted"].Clone()
	c.Capabilities.Allowed[0] = "CAP_SYS_ADMIN"
	c.Filesystem.Tmpfs[0].Path = "/x"
	if set["restricted"].Capabilities.Allowed[0] != "CAP_NET_BIND_SERVICE" || set["restricted"].Filesystem.Tmpfs[0].Path != "/tmp" {
		t.Fatal("changing a clone changed the built-in")
	}
}
