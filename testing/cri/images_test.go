package cri

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"palisade.dev/palisade/testing/harness"
)

// A pod whose image is "sha256:ID" runs the local image with that ID:
// containerd's CRI reads an ALGORITHM:HEX reference as an image ID (or a
// prefix of one), whatever its repository. Read as a reference, the same
// string is docker.io/library/sha256 with a tag, so an allow-list of
// docker.io/library/* must not let it through: the image-name annotation
// (the kubelet's user-specified image) names no repository at all.
func TestImageIDIsNotAnApprovedRepository(t *testing.T) {
	e := needEnv(t)
	pod := writeJSON(t, podConfig(t, name(t, "pod"), nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)

	// the pod's sandbox is up; from now on only Docker Hub's official images
	// are approved (the test image is docker.io/palisade/test)
	restrictImages(t, e, "[images]\nallowed = [\"docker.io/library/*\"]\n")

	var inspect struct {
		Status struct {
			ID string `json:"id"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(crictl(t, e, "inspecti", "-o", "json", e.Image())), &inspect); err != nil || !strings.HasPrefix(inspect.Status.ID, "sha256:") {
		t.Fatalf("the test image's ID: %q %v", inspect.Status.ID, err)
	}
	for _, ref := range []string{inspect.Status.ID, inspect.Status.ID[:len("sha256:")+12], e.Image()} {
		cfg := containerConfig("c", nil, nil, "/usr/bin/probe", "sleep", "300")
		// as the kubelet sends it: the image it resolved, and what the pod said
		cfg["image"] = obj{"image": inspect.Status.ID, "user_specified_image": ref}
		r := e.Crictl("create", podID, writeJSON(t, cfg), pod)
		if r.Err == nil {
			id := strings.TrimSpace(r.Stdout)
			if r = e.Crictl("start", id); r.Err == nil {
				t.Errorf("image %s (docker.io/palisade/test) ran under an allow-list of docker.io/library/*", ref)
			}
			crictl(t, e, "rm", "-f", id)
			assertClean(t, e, id)
		}
		if r.Err != nil && !strings.Contains(r.Stderr, "[rule images") {
			t.Errorf("image %s refused, but not by the image rule: %s", ref, r)
		}
	}
}

// restrictImages adds extra to the suite's admin config until the test
// ends.
func restrictImages(t *testing.T, e *harness.Env, extra string) {
	t.Helper()
	before, err := os.ReadFile(e.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(e.AdminConfig, before, 0o600); err != nil {
			t.Error(err)
		}
	})
	if err := os.WriteFile(e.AdminConfig, append(before, "\n"+extra...), 0o600); err != nil {
		t.Fatal(err)
	}
}
