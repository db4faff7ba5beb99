package harden

import (
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A pod's container may bind its own pod's image volumes (Kubernetes
// ImageVolume: containerd mounts each image read-only below its CRI state,
// image-volumes/<sandbox>/<image>), never another pod's, and only in a CRI
// namespace.
func TestImageVolumesOfTheOwnPodOnly(t *testing.T) {
	state := "/run/test-containerd"
	node := Node{Bundle: filepath.Join(state, taskDir, "k8s.io", "c1"), Addresses: []string{"/run/test-containerd/containerd.sock"}}
	volumes := filepath.Join(state, criDir, "image-volumes")
	pod := func(ns, sandbox string) *Request {
		req := request(t, "", nil)
		req.Namespace = ns
		req.HostPaths = ProtectedPaths(req.Config, node)
		req.CarveOuts = carveOuts(ns, req.Config, node, map[string]string{annotationSandboxID: sandbox})
		return req
	}
	spec := func() *specs.Spec {
		s := ctrSpec()
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt/image", Type: "bind",
			Source: filepath.Join(volumes, "sandbox-a", "sha256-image"), Options: []string{"rbind", "ro"}})
		return s
	}
	if err := harden(t, pod("k8s.io", "sandbox-a"), spec()); err != nil {
		t.Fatalf("the pod's own image volume: %v", err)
	}
	for _, other := range []*Request{pod("k8s.io", "sandbox-b"), pod("default", "sandbox-a"), pod("k8s.io", "..")} {
		if err := harden(t, other, spec()); err == nil || !strings.Contains(err.Error(), "[rule mounts") {
			t.Errorf("another pod's image volume (namespace %s): %v", other.Namespace, err)
		}
	}
}
