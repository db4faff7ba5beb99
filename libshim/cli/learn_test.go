package cli

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/config"
	"palisade.dev/palisade/profiles"
	"palisade.dev/palisade/seccomp"
)

func learnRecords() []audit.Record {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	pod := func(c, img string) audit.Record {
		return audit.Record{Namespace: "k8s.io", Container: c, Pod: "web-1", PodNamespace: "shop", ContainerName: c, Image: img, Mode: "alert"}
	}
	a := pod("app", "registry.example.com/shop/web:1.0")
	a.Event, a.Syscalls = audit.EventSeccompWouldDeny, []audit.SyscallSeen{{Name: "unshare", Arch: "SCMP_ARCH_X86_64", Count: 3, First: t0, Last: t0.Add(time.Second)}}
	b := pod("sidecar", "registry.example.com/shop/proxy:2.0")
	b.Event, b.Executables = audit.EventExecWouldRefuse, []audit.ExecSeen{{Path: "/bin/sh", Resolved: "/bin/busybox", Count: 2, First: t0, Last: t0},
		{Path: "fd 3", Resolved: "/memfd:x (deleted)", Count: 1, First: t0, Last: t0}, {Path: "(path not read)", Count: 1, First: t0, Last: t0}}
	c := audit.Record{Namespace: "default", Container: "other", Image: "registry.example.com/shop/web@sha256:" + strings.Repeat("a", 64), Event: audit.EventSeccompWouldDeny,
		Syscalls: []audit.SyscallSeen{{Name: "kcmp", Arch: "SCMP_ARCH_X86_64", Count: 1, First: t0, Last: t0}}}
	return []audit.Record{a, b, c}
}

// Learning gathers a pod's containers, or an image's, and writes the
// system calls into a seccomp profile that loads like an admin's: the
// learned calls allowed, everything else the parent denied still denied.
func TestLearnSelectorsAndSyscalls(t *testing.T) {
	set, err := profiles.Load("")
	if err != nil {
		t.Fatal(err)
	}
	recs := learnRecords()
	for _, c := range []struct {
		sel        selectorFlags
		syscalls   string
		executable bool
	}{
		{selectorFlags{pod: "shop/web-1"}, "unshare", true},
		{selectorFlags{image: "registry.example.com/shop/web"}, "kcmp unshare", false},
		{selectorFlags{image: "registry.example.com/shop/web:1.0"}, "unshare", false},
		{selectorFlags{container: "default/other"}, "kcmp", false},
	} {
		match, what, err := c.sel.selector()
		if err != nil {
			t.Fatal(err)
		}
		l, err := learn(set["restricted"], "web", what, "audit.jsonl", filterRecords(recs, match))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := strings.Join(slices.Sorted(maps.Keys(l.syscalls)), " "); got != c.syscalls {
			t.Errorf("%s: system calls %q, want %q", what, got, c.syscalls)
		}
		text, err := l.render()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, "memfd:x (deleted)'") || strings.Contains(text, "'(path not read)'") {
			t.Errorf("%s: a program that is no file in the container was learned:\n%s", what, text)
		}
		if has := strings.Contains(text, "/bin/busybox"); has != c.executable {
			t.Errorf("%s: executable learned %v, want %v:\n%s", what, has, c.executable, text)
		}
		if !strings.Contains(text, "# Profile web, learned") || (strings.Contains(c.syscalls, "unshare") && !strings.Contains(text, "system call unshare: denied by seccomp profile palisade-default")) {
			t.Errorf("%s: comments:\n%s", what, text)
		}
	}
	if _, _, err := (&selectorFlags{pod: "a/b", image: "x"}).selector(); err == nil {
		t.Error("two selectors accepted")
	}

	// the seccomp profile: unshare allowed, its neighbours still denied
	match, what, _ := (&selectorFlags{pod: "shop/web-1"}).selector()
	l, err := learn(set["restricted"], "web", what, "audit.jsonl", filterRecords(recs, match))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := l.writeSeccomp(config.Default(), set["restricted"], filepath.Join(dir, "seccomp", "web.json")); err != nil {
		t.Fatal(err)
	}
	loaded, err := seccomp.Load("web", filepath.Join(dir, "seccomp"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := seccomp.Resolve(loaded, "amd64", nil, seccomp.NativeOnly)
	if err != nil {
		t.Fatal(err)
	}
	f, err := seccomp.Compile(sc, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"unshare": "allow", "setns": "errno EPERM", "kcmp": "errno EPERM", "read": "allow"} {
		if v, err := f.Check(name); err != nil || v.Action != want {
			t.Errorf("learned filter: %s %s, want %s (%v)", name, v.Action, want, err)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "seccomp", "web.json")); !strings.Contains(string(data), "learned by palisade profile learn from audit.jsonl for pod shop/web-1: unshare (3 time(s) by app") {
		t.Errorf("the learned rule does not say where it came from:\n%s", data)
	}
}

// The report counts what alert mode saw at run time per workload, with
// the calls' own counts, and does not count those records as operations.
func TestReportRunTimeFindings(t *testing.T) {
	recs := learnRecords()
	recs[0].Dropped = 4
	got := map[string]summary{}
	for _, s := range summarize(recs) {
		got[s.Workload] = s
	}
	app, side := got["shop/web-1/app"], got["shop/web-1/sidecar"]
	if app.Allowed != 0 || side.Allowed != 0 {
		t.Errorf("run-time records counted as operations: %d, %d", app.Allowed, side.Allowed)
	}
	if count(app.WouldRefuse) != 3+4 || app.WouldRefuse[0].Value != "unshare (SCMP_ARCH_X86_64)" || app.WouldRefuse[1].Subject != "dropped" {
		t.Errorf("app: %+v", app.WouldRefuse)
	}
	if count(side.WouldRefuse) != 4 || side.WouldRefuse[0].Value != "/bin/sh -> /bin/busybox" {
		t.Errorf("sidecar: %+v", side.WouldRefuse)
	}
}

// A note quotes what a workload named: it stays one comment line whatever
// bytes the name holds.
func TestCommentLine(t *testing.T) {
	for in, want := range map[string]string{
		"executable /bin/busybox":         "executable /bin/busybox",
		"/tmp/x\n[capabilities]\r\nb = 1": `/tmp/x\n[capabilities]\r\nb = 1`,
		"/tmp/\xff\x00\t\u2028é":          `/tmp/\xff\x00\t\u2028é`,
	} {
		if got := commentLine(in); got != want {
			t.Errorf("commentLine(%q) = %q, want %q", in, got, want)
		}
	}
}
