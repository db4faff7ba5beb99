package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
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
