package bundle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/seccomp"
)

func TestRoundTripKeepsModeAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ConfigName)
	if err := os.WriteFile(path, []byte(`{"ociVersion":"1.3.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Hostname = "h"
	if err := WriteSpec(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSpec(dir)
	if err != nil || got.Hostname != "h" || got.Version != "1.3.0" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode changed to %v", st.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := map[string][]byte{
		"not json":      []byte("{"),
		"trailing data": []byte(`{} {}`),
		"wrong type":    []byte(`{"process":"x"}`),
		"oversized":     []byte(`{"hostname":"` + strings.Repeat("a", MaxSpecSize) + `"}`),
	}
	for name, data := range cases {
		if _, err := DecodeSpec("x", data); err == nil || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestWriteSpecToMissingBundle(t *testing.T) {
	if err := WriteSpec(filepath.Join(t.TempDir(), "nope"), &specs.Spec{}); err == nil {
		t.Fatal("write into a missing bundle succeeded")
	}
}

// The client's seccomp filter is decoded whole (the pipeline combines it
// with the policy's), everything else in the spec too, and a malformed
// filter makes the spec invalid.
func TestDecodeClientSeccomp(t *testing.T) {
	body := `{"ociVersion":"1.3.0","process":{"args":["/bin/true"]},"linux":{"namespaces":[{"type":"pid"}],` +
		`"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]},` +
		`"maskedPaths":["/proc/kcore"]}}`
	s, err := DecodeSpec("c.json", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux == nil || s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != "SCMP_ACT_ERRNO" {
		t.Fatalf("the client's filter is not marked: %+v", s.Linux)
	}
	if len(s.Linux.Seccomp.Syscalls) != 1 || len(s.Linux.Seccomp.Syscalls[0].Names) != 2 || len(s.Linux.Seccomp.Architectures) != 1 {
		t.Errorf("the client's filter was not decoded whole: %+v", s.Linux.Seccomp)
	}
	if len(s.Linux.Namespaces) != 1 || len(s.Linux.MaskedPaths) != 1 || s.Version != "1.3.0" || s.Process.Args[0] != "/bin/true" {
		t.Errorf("other fields lost: %+v", s)
	}
	if s, err := DecodeSpec("n.json", []byte(`{"ociVersion":"1.3.0","linux":{"namespaces":[]}}`)); err != nil || s.Linux == nil || s.Linux.Seccomp != nil {
		t.Errorf("spec without a filter: %+v %v", s, err)
	}
	if _, err := DecodeSpec("bad.json", []byte(`{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{]}}}`)); err == nil {
		t.Errorf("a malformed filter was accepted")
	}
}

// A cached filter is written from its cached JSON; the file means exactly
// what encoding the spec field by field would.
func TestEncodeSpecWithCachedFilter(t *testing.T) {
	l, err := seccomp.Default()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := seccomp.ResolveCached(l, "amd64", []string{"CAP_NET_BIND_SERVICE"}, seccomp.NativeOnly)
	if err != nil {
		t.Fatal(err)
	}
	if seccomp.Encoded(sc) == nil {
		t.Fatal("the resolved filter has no cached encoding")
	}
	s := &specs.Spec{Version: "1.3.0", Process: &specs.Process{Args: []string{"/bin/true"}},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}}, Seccomp: sc, MaskedPaths: []string{"/proc/kcore"}}}
	fast, err := EncodeSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(fast, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(slow, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("the spec written with the cached filter differs:\n%s\n%s", fast, slow)
	}
}
