package cri

import (
	"strings"
	"testing"

	"palisade.dev/palisade/testing/harness"
)

// A pod mounts an image as a volume (Kubernetes ImageVolume): containerd
// mounts it read-only below its CRI state, in a directory of that pod's
// sandbox, and palisade lets the pod's own container bind it. The
// container reads the image's files and cannot write them.
func TestImageVolume(t *testing.T) {
	e := needEnv(t)
	podName := name(t, "pod")
	pod := writeJSON(t, podConfig(t, podName, nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	cfg := containerConfig("reader", nil, nil, "/usr/bin/probe", "sleep", "300")
	cfg["mounts"] = []obj{{"container_path": "/mnt/image", "readonly": true, "image": obj{"image": e.Image()}}}
	ctrID := crictl(t, e, "create", podID, writeJSON(t, cfg), pod)
	crictl(t, e, "start", ctrID)
	if out := crictl(t, e, "exec", ctrID, "/bin/cat", "/mnt/image/etc/hostname"); out != "palisade-test" {
		t.Errorf("/mnt/image/etc/hostname = %q, want the image's palisade-test", out)
	}
	if r := e.Crictl("exec", ctrID, "/bin/touch", "/mnt/image/x"); r.Err == nil || !strings.Contains(r.Stdout+r.Stderr, "Read-only file system") {
		t.Errorf("the image volume is writable: %s", r)
	}
}
