package execguard

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/arch"
)

// root builds a tiny image: /bin/busybox, applet links (absolute and
// relative), a link that tries to escape, and a non-executable file.
func root(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	for _, d := range []string{"bin", "usr/bin", "etc", "work"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(r, "bin/busybox"), []byte("\x7fELF"), 0o755))
	must(os.Symlink("/bin/busybox", filepath.Join(r, "bin/sh")))
	must(os.Symlink("../../bin/busybox", filepath.Join(r, "usr/bin/env")))
	must(os.Symlink("/etc/shadow-like", filepath.Join(r, "usr/bin/escape")))
	must(os.WriteFile(filepath.Join(r, "etc/shadow-like"), []byte("x"), 0o755))
	must(os.Symlink("/../../../../usr/bin/true", filepath.Join(r, "bin/outside"))) // would be the host's /usr/bin/true
	must(os.WriteFile(filepath.Join(r, "usr/bin/data"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(r, "work/tool"), []byte("x"), 0o755))
	return r
}

func TestResolve(t *testing.T) {
	r := root(t)
	cases := []struct {
		args0, cwd string
		env        []string
		want       string
		err        string
	}{
		{"sh", "/", nil, "/bin/busybox", ""},
		{"env", "/", []string{"PATH=/usr/bin"}, "/bin/busybox", ""},
		{"/bin/sh", "/", nil, "/bin/busybox", ""},
		{"./tool", "/work", nil, "/work/tool", ""},
		{"escape", "/", nil, "/etc/shadow-like", ""},
		{"data", "/", []string{"PATH=/usr/bin"}, "", "not an executable file"},
		{"nope", "/", nil, "", `"nope" not found in the container`},
		{"", "/", nil, "", "no command"},
	}
	for _, c := range cases {
		res, err := Resolve(r, c.args0, c.env, c.cwd)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: got %v, want error %q", c.args0, err, c.err)
			}
			continue
		}
		if err != nil || res.Path != c.want {
			t.Errorf("%q: got %+v %v, want %s", c.args0, res, err, c.want)
		}
	}
	// a symlink pointing out of the root is resolved inside it (and is missing there)
	if res, err := Resolve(r, "/bin/outside", nil, "/"); err == nil {
		t.Errorf("a link out of the root resolved to %+v", res)
	}
}

func TestAllowedAndNarrows(t *testing.T) {
	allow := []string{"/bin/busybox", "/opt/app/"}
	for p, want := range map[string]bool{"/bin/busybox": true, "/opt/app/bin/x": true, "/opt/app": false, "/opt/application": false, "/usr/bin/probe": false} {
		if Allowed(p, allow) != want {
			t.Errorf("Allowed(%s) != %v", p, want)
		}
	}
	if err := Narrows([]string{"/opt/app/bin/x", "/bin/busybox", "/opt/app/lib/"}, allow); err != nil {
		t.Errorf("narrowing list refused: %v", err)
	}
	if err := Narrows([]string{"/usr/bin/probe"}, allow); err == nil || !strings.Contains(err.Error(), "/usr/bin/probe is not within") {
		t.Errorf("widening list accepted: %v", err)
	}
	if err := Narrows([]string{"/opt/"}, allow); err == nil {
		t.Error("a parent directory of an allowed tree was accepted")
	}
}

// A dynamic program needs its ELF interpreter to be executable too.
func TestRulesetAddsInterpreter(t *testing.T) {
	self := "/bin/ls" // dynamically linked on every glibc system
	interp, err := interpreter(self)
	if err != nil {
		t.Skipf("no %s to read an ELF interpreter from: %v", self, err)
	}
	if interp == "" {
		t.Fatalf("%s has no PT_INTERP: the reader is broken or ls is static here", self)
	}
	if !arch.Native().KnownLoader(interp) {
		t.Skipf("%s is not a %s program (interpreter %s): this test runs under emulation; TestRulesetFollowsOnlyKnownLoaders covers it", self, arch.Native().GoArch, interp)
	}
	tree := t.TempDir() + "/"
	paths, err := Ruleset([]string{self, tree})
	if err != nil {
		t.Fatal(err)
	}
	realSelf, _ := filepath.EvalSymlinks(self)
	if !slices.Contains(paths, realSelf) || !slices.Contains(paths, tree) {
		t.Errorf("ruleset %v lacks the entries", paths)
	}
	realInterp, _ := filepath.EvalSymlinks(interp)
	if !slices.Contains(paths, realInterp) {
		t.Errorf("ruleset %v lacks the interpreter %s", paths, realInterp)
	}
	if _, err := Ruleset([]string{"/no/such/file"}); err == nil {
		t.Error("a missing allow-list entry was accepted")
	}
	link := filepath.Join(t.TempDir(), "app")
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	if _, err := Ruleset([]string{link + "/"}); err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Errorf("a directory entry that links to / was accepted: %v", err)
	}
}
