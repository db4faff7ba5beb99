package cli

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./libshim/cli -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from %s (run go test ./libshim/cli -update and review the diff):\n%s", name, path, got)
	}
}

// noAdmin is an admin config that ignores this host's /etc/palisade.
func noAdmin(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte("profiles_dir = \"\"\nselectable_profiles = [\"baseline\", \"locked\"]\nsecrets.store = \"/etc/palisade/secrets\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRenderDiffGolden(t *testing.T) {
	cfg := noAdmin(t)
	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"render-diff-restricted", []string{"--profile", "restricted"}, ExitOK},
		{"render-diff-baseline-ipc-lock", []string{"--profile", "baseline", "--annotation", "palisade.dev/cap-add=IPC_LOCK"}, ExitOK},
		{"render-diff-restricted-sys-admin", []string{"--profile", "restricted", "--annotation", "palisade.dev/cap-add=SYS_ADMIN"}, ExitRefused},
		{"render-diff-locked-without-rootfs", []string{"--profile", "locked"}, ExitRefused},
		{"render-diff-restricted-lsm-node", []string{"--profile", "restricted", "--lsm-host", "selinux,apparmor"}, ExitOK},
		{"render-apparmor-baseline", []string{"--profile", "baseline", "--lsm-host", "apparmor", "--apparmor"}, ExitOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			// LSM labels depend on the node: goldens name the node they show.
			args := append([]string{"render", "--diff", "--config", cfg, "--lsm-host", "none"}, c.args...)
			code, out, errs := run(append(args, "testdata/ctr-default-spec.json")...)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s", code, c.code, errs)
			}
			// The filter's rule count differs per architecture (amd64-only
			// syscalls), so each has its own golden file; amd64's keeps the
			// plain name.
			name := c.name
			if runtime.GOARCH != "amd64" {
				name += "." + runtime.GOARCH
			}
			golden(t, name, out+strings.ReplaceAll(errs, cfg, "CONFIG"))
		})
	}
}

func TestExplainGolden(t *testing.T) {
	cfg := noAdmin(t)
	for _, p := range []string{"restricted", "baseline", "locked"} {
		t.Run(p, func(t *testing.T) {
			code, out, errs := run("explain", "--config", cfg, "--lsm-host", "none", p)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errs)
			}
			golden(t, "explain-"+p, out)
		})
	}
}

func TestRenderPrintsAHardenedSpec(t *testing.T) {
	code, out, errs := run("render", "--config", noAdmin(t), "testdata/ctr-default-spec.json")
	if code != ExitOK || !strings.Contains(out, `"noNewPrivileges": true`) || !strings.Contains(out, `"readonly": true`) || !strings.Contains(out, `"defaultAction": "SCMP_ACT_ERRNO"`) {
		t.Fatalf("render: %d %s", code, errs)
	}
}

func TestLint(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := "name = \"p\"\n[pids]\nlimit = 10\n"
	arches := `"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"]`
	cases := []struct {
		file, body, want string
		code             int
	}{
		{"cap.toml", ok + "[capabilities]\nallowed = [\"NET_BINDSERVICE\"]\n", `cap.toml: error: field "capabilities.allowed[0]": unknown capability "NET_BINDSERVICE"`, ExitFailed},
		{"tmpfs.toml", ok + "[[filesystem.tmpfs]]\npath = \"tmp\"\nsize = \"1m\"\n", `tmpfs.toml: error: field "filesystem.tmpfs[0].path"`, ExitFailed},
		{"exec.toml", ok + "[exec]\nmode = \"enforce\"\nallow = [\"bin/sh\"]\n", `exec.toml: error: field "exec.allow[0]": "bin/sh" is not an absolute path`, ExitFailed},
		{"pids.toml", "name = \"p\"\n[pids]\nlimit = 0\n", `pids.toml: error: field "pids.limit": must be a positive number of processes, not 0`, ExitFailed},
		{"typo.toml", "name = \"p\"\n[pids]\nlimit = 10\n[filesytem]\nwritable_rootfs = true\n", `typo.toml:4: error: field "filesytem": unknown field`, ExitFailed},
		{"arm.json", `{"defaultAction":"SCMP_ACT_ERRNO",` + arches + `,"syscalls":[{"names":["arch_prctl","read"],"action":"SCMP_ACT_ALLOW"}]}`,
			`arm.json: warning: syscalls[0]: arch_prctl does not exist on arm64: the rule is a no-op there`, ExitOK},
		{"bad.json", `{"defaultAction":"SCMP_ACT_ERRNO",` + arches + `,"syscalls":[{"names":["opne"],"action":"SCMP_ACT_ALLOW"}]}`,
			`bad.json: error: invalid seccomp profile`, ExitFailed},
		{"shell.toml", ok + "[exec]\nmode = \"enforce\"\nallow = [\"/bin/sh\"]\n", `shell.toml: warning: field "exec.allow[0]": /bin/sh can run arbitrary code`, ExitOK},
		{"sysadmin.toml", ok + "[capabilities]\nallowed = [\"SYS_ADMIN\"]\n[exec]\nmode = \"enforce\"\nallow = [\"/usr/bin/app\"]\n",
			`sysadmin.toml: warning: field "capabilities.allowed": CAP_SYS_ADMIN with an enforced exec allow-list (exec.mode = "enforce"): wherever the kernel enforces the list, a container of this profile that holds it is refused`, ExitOK},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			p := write(c.file, c.body)
			code, out, errs := run("profile", "lint", p)
			if code != c.code || !strings.Contains(out, filepath.Join(dir, c.want)) {
				t.Errorf("exit %d (want %d)\nout: %s\nerr: %s\nwant: %s", code, c.code, out, errs, c.want)
			}
		})
	}
	// A native-only seccomp profile (no compat sub-architectures) is what
	// palisade installs anyway: it lints clean. One without a native
	// architecture does not.
	native := write("native.json", `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`)
	if code, out, errs := run("profile", "lint", "--strict", native); code != ExitOK || !strings.Contains(out, "no problems") {
		t.Errorf("native-only seccomp profile: exit %d\nout: %s\nerr: %s", code, out, errs)
	}
	compatOnly := write("compat.json", `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_AARCH64"],"syscalls":[]}`)
	if code, out, _ := run("profile", "lint", compatOnly); code != ExitFailed || !strings.Contains(out, "does not cover amd64: missing SCMP_ARCH_X86_64") {
		t.Errorf("seccomp profile without x86_64: exit %d\nout: %s", code, out)
	}
	if code, _, _ := run("profile", "lint", "--strict", write("s.toml", ok+"[exec]\nmode = \"enforce\"\nallow = [\"/bin/sh\"]\n")); code != ExitFailed {
		t.Errorf("--strict did not fail on a warning")
	}
	if code, out, _ := run("profile", "lint", "../../profiles/restricted.toml", "../../profiles/baseline.toml", "../../profiles/locked.toml", "../../seccomp/palisade-default.json"); code != ExitOK {
		t.Errorf("the built-ins do not lint clean: %s", out)
	}
}

func TestProfileListShowAndExecCheck(t *testing.T) {
	cfg := noAdmin(t)
	code, out, _ := run("profile", "list", "--config", cfg)
	if code != ExitOK || !strings.Contains(out, "restricted") || !strings.Contains(out, "locked") {
		t.Errorf("list: %d %s", code, out)
	}
	code, out, _ = run("profile", "show", "--config", cfg, "baseline")
	if code != ExitOK || !strings.Contains(out, "allow_root = true") {
		t.Errorf("show: %d %s", code, out)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run("exec", "check", "--config", cfg, "--rootfs", root, "--annotation", "palisade.dev/exec-allow=/bin/busybox", "sh")
	if code != ExitOK || !strings.Contains(out, "sh resolves to /bin/busybox (via /bin/sh)") || !strings.Contains(out, "allowed: on the list") {
		t.Errorf("exec check allowed: %d %s", code, out)
	}
	code, out, _ = run("exec", "check", "--config", cfg, "--rootfs", root, "--annotation", "palisade.dev/exec-allow=/bin/other", "/bin/sh")
	if code != ExitRefused || !strings.Contains(out, "refused: not on the list (/bin/other)") {
		t.Errorf("exec check refused: %d %s", code, out)
	}
}
