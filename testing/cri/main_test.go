// Package cri holds palisade's CRI end-to-end tests: pods and containers
// driven with crictl through containerd's CRI plugin, as a kubelet would,
// with a "palisade" runtime handler configured like
// contrib/containerd/palisade-runtime.toml. The pods use the host network
// (no CNI here) and a locally built pause image. They need root; `make test`
// sets PALISADE_E2E_REQUIRED=1 so that a missing prerequisite fails the run.
package cri

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

var (
	env        *harness.Env
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// pods of the Kubernetes namespace alertNamespace run in alert mode
	opts := harness.Options{CRI: true, Namespace: "k8s.io", AdminConfig: "alert_namespaces = [\"" + alertNamespace + "\"]\n"}
	return harness.Suite("cri", opts, func(e *harness.Env, reason string) int {
		env, skipReason = e, reason
		return m.Run()
	})
}

func needEnv(t *testing.T) *harness.Env {
	t.Helper()
	if env == nil {
		t.Skip("CRI environment unavailable: " + skipReason)
	}
	return env
}

// name is unique per test, a valid Kubernetes name.
func name(t *testing.T, suffix string) string { return harness.UniqueName(t, suffix, 30) }

// writeJSON writes v as a crictl config file and returns its path.
func writeJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "*.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

type obj = map[string]any

// Namespace modes of the CRI API.
const (
	nsPod       = 0
	nsContainer = 1
	nsNode      = 2
)

// podConfig is a pod sandbox config; pid is the PID namespace mode.
func podConfig(t *testing.T, podName string, annotations map[string]string, pid int) obj {
	return obj{
		"metadata":      obj{"name": podName, "namespace": "default", "uid": podName + "-uid", "attempt": 0},
		"log_directory": t.TempDir(),
		"annotations":   annotations,
		"linux": obj{"security_context": obj{
			"namespace_options": obj{"network": nsPod, "pid": pid},
		}},
	}
}

// containerConfig runs command in the test image.
func containerConfig(ctrName string, securityContext obj, annotations map[string]string, command ...string) obj {
	return obj{
		"metadata":    obj{"name": ctrName},
		"image":       obj{"image": env.Image()},
		"command":     command,
		"log_path":    ctrName + ".log",
		"annotations": annotations,
		"linux":       obj{"security_context": securityContext},
	}
}

// crictl runs crictl and fails the test when it fails.
func crictl(t *testing.T, e *harness.Env, args ...string) string {
	t.Helper()
	r := e.Crictl(args...)
	if r.Err != nil {
		t.Fatalf("%s", r)
	}
	return strings.TrimSpace(r.Stdout)
}

// auditRecords returns the audit file's records about container id.
func auditRecords(t *testing.T, e *harness.Env, id string) []audit.Record {
	t.Helper()
	return records(t, e, func(r audit.Record) bool { return r.Container == id })
}

// auditByName returns the audit records of pod podName's containers named
// ctrName ("" for the sandbox's own records, which carry no container name).
func auditByName(t *testing.T, e *harness.Env, podName, ctrName string) []audit.Record {
	t.Helper()
	return records(t, e, func(r audit.Record) bool { return r.Pod == podName && r.ContainerName == ctrName })
}

func records(t *testing.T, e *harness.Env, keep func(audit.Record) bool) []audit.Record {
	t.Helper()
	recs, err := e.AuditRecords(keep)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// assertClean fails when anything of the containers ids remains.
func assertClean(t *testing.T, e *harness.Env, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var left []string
	for time.Now().Before(deadline) {
		left = nil
		for _, id := range ids {
			left = append(left, e.Leftovers(id)...)
			// CRI's own per-sandbox directories and mounts
			for _, d := range []string{filepath.Join(e.Dir, "root", "io.containerd.grpc.v1.cri", "sandboxes", id), filepath.Join(e.Dir, "state", "io.containerd.grpc.v1.cri", "sandboxes", id)} {
				if _, err := os.Stat(d); err == nil {
					left = append(left, "CRI directory "+d)
				}
				for _, m := range harness.MountsUnder(d) {
					left = append(left, "mount "+m)
				}
			}
		}
		if len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("left behind: %s", strings.Join(left, "; "))
}

// runPod runs the pod sandbox of config file pod under handler; when the
// test ends it is removed, and nothing of it may remain.
func runPod(t *testing.T, e *harness.Env, handler, pod string) string {
	t.Helper()
	podID := crictl(t, e, "runp", "--runtime", handler, pod)
	t.Cleanup(func() {
		e.Crictl("rmp", "-f", podID)
		assertClean(t, e, podID)
	})
	return podID
}
