package critest

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade/testing/image"
)

// The registry serves what containerd's pull asks for: the API check, a
// manifest by tag and by digest (with its media type and digest), its blobs;
// anything else is 404 and writes are refused. containerd's hosts.toml for
// each mirrored registry points at it.
func TestRegistry(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static is not installed (make deps installs it): ", err)
	}
	img, err := image.Layout(image.Options{Busybox: "/bin/busybox", User: "1002"})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry()
	r.Add("k8s-staging-cri-tools/test-image-user-uid", "latest", img)
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+r.Addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, _ := get("GET", "/v2/"); resp.StatusCode != 200 {
		t.Errorf("/v2/: %s", resp.Status)
	}
	man := img.Manifest.Digest
	for _, ref := range []string{"latest", string(man)} {
		resp, body := get("GET", "/v2/k8s-staging-cri-tools/test-image-user-uid/manifests/"+ref)
		if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != string(man) ||
			resp.Header.Get("Content-Type") != img.Manifest.MediaType || body != string(img.Blobs[man]) {
			t.Errorf("manifest %s: %s %v", ref, resp.Status, resp.Header)
		}
	}
	if resp, _ := get("HEAD", "/v2/k8s-staging-cri-tools/test-image-user-uid/manifests/latest"); resp.StatusCode != 200 {
		t.Errorf("HEAD manifest: %s", resp.Status)
	}
	for d, b := range img.Blobs {
		if resp, body := get("GET", "/v2/k8s-staging-cri-tools/test-image-user-uid/blobs/"+string(d)); resp.StatusCode != 200 || body != string(b) {
			t.Errorf("blob %s: %s", d, resp.Status)
		}
	}
	for _, p := range []string{"/v2/k8s-staging-cri-tools/test-image-user-uid/manifests/other", "/v2/other/manifests/latest", "/v2/x/blobs/sha256:00"} {
		if resp, _ := get("GET", p); resp.StatusCode != 404 {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
	}
	if resp, _ := get("PUT", "/v2/k8s-staging-cri-tools/test-image-user-uid/manifests/latest"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %s, want 405", resp.Status)
	}

	dir := t.TempDir()
	if err := r.WriteHosts(dir, Mirrored...); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "registry.k8s.io", "hosts.toml"))
	if err != nil || strings.TrimSpace(string(b)) != `server = "http://`+r.Addr+`"` {
		t.Errorf("hosts.toml: %v %q", err, b)
	}
}

// Every image critest v1.37.0 pulls is built (busybox-based, with its
// users, markers and programs), and the three tags of test-image-tags are one
// image while test-image-1..3 differ.
func TestImages(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static is not installed (make deps installs it): ", err)
	}
	prog := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	imgs, err := Images(Programs{Busybox: "/bin/busybox", Pause: prog, CRIImage: prog})
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for ref, o := range imgs {
		b, err := image.Layout(o)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		digests[ref] = string(b.Manifest.Digest)
	}
	const cri = "gcr.io/k8s-staging-cri-tools/"
	if digests[cri+"test-image-tags:1"] != digests[cri+"test-image-tags:3"] || digests[cri+"test-image-1:latest"] == digests[cri+"test-image-2:latest"] {
		t.Errorf("tags: %v", digests)
	}
	for _, ref := range []string{"registry.k8s.io/e2e-test-images/busybox:1.29-2", "registry.k8s.io/e2e-test-images/nginx:1.14-2",
		"registry.k8s.io/e2e-test-images/httpd:2.4.39-4", "registry.k8s.io/e2e-test-images/nonewprivs:1.3", "registry.k8s.io/pause:3.9",
		cri + "test-image-predefined-group:latest", cri + "test-image-user-username-group:latest"} {
		if digests[ref] == "" {
			t.Errorf("no image %s", ref)
		}
	}
	if u := imgs[cri+"test-image-user-username-group:latest"].User; u != "www-data:1004" {
		t.Errorf("username-group image user %q", u)
	}
	if f := imgs["registry.k8s.io/e2e-test-images/nonewprivs:1.3"].Files["/usr/local/bin/nnp"]; f.Mode != 0o4755 {
		t.Errorf("nnp mode %o, want setuid 4755", f.Mode)
	}
}
