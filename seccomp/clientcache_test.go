//go:build cgo

package seccomp

import (
	"bytes"
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	podDenyMkdir = `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`
	podDenyChmod = `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["chmod","fchmodat"],"action":"SCMP_ACT_ERRNO"}]}`
)

func decodeClient(t *testing.T, text string) *specs.LinuxSeccomp {
	t.Helper()
	sc, err := DecodeClient([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// The same text is decoded once; any other text (one name changed, the
// same filter spelled differently) gets its own decoding, never the
// cached one of another; a malformed text is an error, also when a valid
// one is cached.
func TestDecodeClientByText(t *testing.T) {
	a, again := decodeClient(t, podDenyMkdir), decodeClient(t, podDenyMkdir)
	if a != again {
		t.Error("the same filter text was decoded twice")
	}
	b := decodeClient(t, podDenyChmod)
	if b == a || b.Syscalls[0].Names[0] != "chmod" || a.Syscalls[0].Names[0] != "mkdir" {
		t.Fatalf("a different filter got another's decoding: %+v / %+v", a.Syscalls, b.Syscalls)
	}
	spaced := decodeClient(t, " "+podDenyMkdir)
	if spaced == a || !sameJSON(spaced, a) {
		t.Errorf("the same filter spelled differently: %p %p, %+v", spaced, a, spaced)
	}
	for _, bad := range []string{`{"syscalls":[{]}`, `{"defaultAction":7}`, podDenyMkdir[:40]} {
		if sc, err := DecodeClient([]byte(bad)); err == nil {
			t.Errorf("%s decoded: %+v", bad, sc)
		}
	}
}

// A combination is remembered only for a node filter from ResolveCached and
// a client filter from DecodeClient, keyed by both and the architecture: a
// different pod filter or a different node filter (another capability set)
// gets its own answer, always the one Intersect gives, with its JSON.
func TestIntersectCachedKeyedByBoth(t *testing.T) {
	l, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	node, err := ResolveCached(l, "amd64", nil, NativeOnly)
	if err != nil {
		t.Fatal(err)
	}
	nodeAdmin, err := ResolveCached(l, "amd64", []string{"CAP_SYS_ADMIN"}, NativeOnly)
	if err != nil {
		t.Fatal(err)
	}
	mkdir, chmod := decodeClient(t, podDenyMkdir), decodeClient(t, podDenyChmod)
	check := func(name string, n, w *specs.LinuxSeccomp) *specs.LinuxSeccomp {
		t.Helper()
		got := IntersectCached(n, w, specs.ArchX86_64)
		if want := Intersect(n, w, specs.ArchX86_64); !sameJSON(got, want) {
			t.Errorf("%s: the cached answer differs from Intersect's", name)
		}
		if enc := Encoded(got); enc != nil {
			if want, _ := json.Marshal(got); !bytes.Equal(enc, want) {
				t.Errorf("%s: the cached JSON is not the filter's", name)
			}
		}
		return got
	}
	first := check("mkdir", node, mkdir)
	if again := check("mkdir again", node, mkdir); again != first || Encoded(first) == nil {
		t.Errorf("the combination was not remembered")
	}
	if v, _ := compiled(t, first).Check("mkdir"); v.Action != "errno EPERM" {
		t.Errorf("mkdir under the pod's filter = %s", v.Action)
	}
	other := check("chmod", node, chmod)
	if other == first {
		t.Fatal("a different pod filter got another's combination")
	}
	f := compiled(t, other)
	if v, _ := f.Check("mkdir"); v.Action != "allow" {
		t.Errorf("mkdir under a filter that only denies chmod = %s (another pod's answer?)", v.Action)
	}
	if v, _ := f.Check("chmod"); v.Action != "errno EPERM" {
		t.Errorf("chmod = %s", v.Action)
	}
	if admin := check("CAP_SYS_ADMIN node", nodeAdmin, mkdir); admin == first || sameJSON(admin, first) {
		t.Error("a different node filter got another's combination")
	}
	// a client filter not from DecodeClient (a caller's own value, which it
	// could change) is never remembered
	own := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno}}}
	if a, b := check("own", node, own), check("own again", node, own); a == b {
		t.Error("a filter not decoded by DecodeClient was cached")
	}
}
