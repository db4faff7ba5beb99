package image

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The same inputs give the same archive, byte for byte.
func TestBuildIsDeterministic(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static is not installed (make deps installs it): ", err)
	}
	prog := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{Busybox: "/bin/busybox", Programs: map[string]string{"/usr/bin/prog": prog}}
	var a, b bytes.Buffer
	if err := Build(&a, o); err != nil {
		t.Fatal(err)
	}
	if err := Build(&b, o); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two builds of the same inputs differ")
	}
}
