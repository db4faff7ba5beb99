package image

import (
	"archive/tar"
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

// With HardLinks, busybox's applets are hard links that follow their target
// in the layer, so that an unpacker can create them in order.
func TestHardLinksFollowTheirTarget(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static is not installed (make deps installs it): ", err)
	}
	entries, err := rootfs(Options{Busybox: "/bin/busybox", HardLinks: true})
	if err != nil {
		t.Fatal(err)
	}
	seen, links := map[string]bool{}, 0
	for _, e := range entries {
		if e.hdr.Typeflag == tar.TypeLink {
			links++
			if !seen[e.hdr.Linkname] {
				t.Fatalf("hard link %s comes before its target %s", e.hdr.Name, e.hdr.Linkname)
			}
		}
		seen[e.hdr.Name] = true
	}
	if links == 0 {
		t.Fatal("no hard links")
	}
	dir := t.TempDir()
	if err := Extract(dir, Options{Busybox: "/bin/busybox", HardLinks: true}); err != nil {
		t.Fatal(err)
	}
}
