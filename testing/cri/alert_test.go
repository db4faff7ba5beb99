package cri

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

// alertNamespace is the Kubernetes namespace the suite's admin config puts
// in alert mode.
const alertNamespace = "palisade-alert"

// A pod in an alert-mode namespace: its container calls what the seccomp
// profile denies, at start and through an exec; both calls run, the audit
// file holds them per container with the pod's names, and `palisade
// profile learn --pod` gathers them into a profile.
func TestAlertPodLearn(t *testing.T) {
	e := needEnv(t)
	podName := name(t, "pod")
	cfg := podConfig(t, podName, nil, nsPod)
	cfg["metadata"].(obj)["namespace"] = alertNamespace
	pod := writeJSON(t, cfg)
	podID := runPod(t, e, harness.CRIHandler, pod)

	ctr := writeJSON(t, containerConfig("main", nil, nil, "/bin/sh", "-c", "probe try syscall unshare0; exec /usr/bin/probe sleep 300"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	crictl(t, e, "start", ctrID)
	if out := crictl(t, e, "exec", ctrID, "/usr/bin/probe", "try", "syscall", "unshare0"); !strings.Contains(out, `"ok":true`) {
		t.Errorf("unshare through an exec in alert mode: %s", out)
	}
	crictl(t, e, "stop", ctrID)
	crictl(t, e, "rm", ctrID)

	var calls uint64
	for _, rec := range auditByName(t, e, podName, "main") {
		if rec.Event != audit.EventSeccompWouldDeny {
			continue
		}
		if rec.PodNamespace != alertNamespace || rec.Mode != "alert" {
			t.Errorf("seccomp record without its pod or mode: %+v", rec)
		}
		for _, s := range rec.Syscalls {
			if s.Name == "unshare" {
				calls += s.Count
			}
		}
	}
	if calls != 2 {
		t.Errorf("unshare recorded %d times for the pod's container, want 2 (its start and the exec)", calls)
	}

	out := filepath.Join(t.TempDir(), "pod.toml")
	if o, err := e.Command("palisade", "profile", "learn", "--config", e.AdminConfig, "--from-audit", e.AuditLog,
		"--pod", alertNamespace+"/"+podName, "--parent", "restricted", "--name", "pod-learned", "--out", out).CombinedOutput(); err != nil {
		t.Fatalf("palisade profile learn --pod: %v\n%s", err, o)
	}
	text, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(text), "for pod "+alertNamespace+"/"+podName) || !strings.Contains(string(text), "system call unshare") {
		t.Errorf("learned for the pod (%v):\n%s", err, text)
	}
}
