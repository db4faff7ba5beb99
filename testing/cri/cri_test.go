package cri

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

// A pod and its container go through the whole kubelet lifecycle under the
// palisade handler: RunPodSandbox, CreateContainer, StartContainer, exec,
// logs, stop and remove, and nothing of either is left behind. The exec
// process is hardened (no_new_privs although nothing asked for it), and
// the pod's palisade.dev/ annotation reached the shim (its audit record).
func TestPodLifecycle(t *testing.T) {
	e := needEnv(t)
	podName := name(t, "pod")
	pod := writeJSON(t, podConfig(t, podName, map[string]string{"palisade.dev/pids-limit": "77"}, nsPod))
	podID := crictl(t, e, "runp", "--runtime", harness.CRIHandler, pod)
	defer e.Crictl("rmp", "-f", podID)

	ctr := writeJSON(t, containerConfig("main", nil, nil, "/bin/sh", "-c", "echo hello from cri; exec /usr/bin/probe sleep 300"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	crictl(t, e, "start", ctrID)

	out := crictl(t, e, "exec", ctrID, "/usr/bin/probe", "report")
	var rep struct {
		NoNewPrivs int `json:"no_new_privs"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.NoNewPrivs != 1 {
		t.Errorf("exec report: %v %q, want no_new_privs 1", err, out)
	}
	// crictl exits 1 and names the process's own exit code
	if r := e.Crictl("exec", ctrID, "/bin/sh", "-c", "exit 3"); r.Err == nil || !strings.Contains(r.Stderr, "exit code 3") {
		t.Errorf("exec of `exit 3`: %s", r)
	}
	var logs string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r := e.Crictl("logs", ctrID); strings.Contains(r.Stdout, "hello from cri") {
			logs = r.Stdout
			break
		}
	}
	if logs == "" {
		t.Errorf("crictl logs never showed the container's output")
	}

	// The shim created both the sandbox and the container, with the pod's
	// annotation applied to each.
	for _, id := range []string{podID, ctrID} {
		rec := harness.FindRecord(auditRecords(t, e, id), audit.EventCreate)
		if rec == nil || rec.Result != audit.ResultAllowed || rec.Pod != podName {
			t.Fatalf("create audit record of %s = %+v, want allowed for pod %s", id, rec, podName)
		}
		if !hasChange(rec, "pids-limit", "77") {
			t.Errorf("audit record of %s does not show the pod's pids-limit 77: %+v", id, rec.Changes)
		}
	}

	crictl(t, e, "stop", ctrID)
	crictl(t, e, "rm", ctrID)
	crictl(t, e, "stopp", podID)
	crictl(t, e, "rmp", podID)
	assertClean(t, e, podID, ctrID)
	if rec := harness.FindRecord(auditRecords(t, e, ctrID), audit.EventDelete); rec == nil {
		t.Errorf("no delete audit record for %s", ctrID)
	}
}

// A pod that asks for the node's PID namespace is refused at RunPodSandbox
// with palisade's message, and leaves nothing behind.
func TestHostPIDPodRefused(t *testing.T) {
	e := needEnv(t)
	podName := name(t, "pod")
	pod := writeJSON(t, podConfig(t, podName, nil, nsNode))
	r := e.Crictl("runp", "--runtime", harness.CRIHandler, pod)
	if r.Err == nil {
		e.Crictl("rmp", "-f", strings.TrimSpace(r.Stdout))
		t.Fatalf("a host-PID pod was not refused: %s", r)
	}
	if !strings.Contains(r.Stderr, "palisade: container k8s.io/") || !strings.Contains(r.Stderr, "share the host's pid namespace [rule namespaces") {
		t.Errorf("RunPodSandbox error does not carry palisade's refusal: %s", r.Stderr)
	}
	if pods := crictl(t, e, "pods", "-q", "--name", podName); pods != "" {
		for _, id := range strings.Fields(pods) {
			e.Crictl("rmp", "-f", id)
			assertClean(t, e, id)
		}
	}
	recs := auditByName(t, e, podName, "")
	if len(recs) == 0 || recs[0].Result != audit.ResultRefused {
		t.Errorf("audit records of the refused pod: %+v", recs)
	}
}

// A privileged container in a privileged pod is refused at StartContainer
// (when the shim first sees its spec) with palisade's message; the pod goes
// on, and the refused container leaves nothing behind.
func TestPrivilegedContainerRefused(t *testing.T) {
	e := needEnv(t)
	podName := name(t, "pod")
	cfg := podConfig(t, podName, nil, nsPod)
	cfg["linux"].(obj)["security_context"].(obj)["privileged"] = true
	pod := writeJSON(t, cfg)
	// The sandbox (pause) itself asks for nothing privileged.
	podID := runPod(t, e, harness.CRIHandler, pod)
	ctr := writeJSON(t, containerConfig("priv", obj{"privileged": true}, nil, "/usr/bin/probe", "sleep", "300"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	r := e.Crictl("start", ctrID)
	if r.Err == nil {
		t.Fatalf("a privileged container started: %s", r)
	}
	if !strings.Contains(r.Stderr, "palisade: container k8s.io/"+ctrID+": privileged containers are not allowed") || !strings.Contains(r.Stderr, "rule privileged") {
		t.Errorf("StartContainer error does not carry palisade's refusal: %s", r.Stderr)
	}
	crictl(t, e, "rm", "-f", ctrID)
	assertClean(t, e, ctrID)
	if rec := harness.FindRecord(auditRecords(t, e, ctrID), audit.EventCreate); rec == nil || rec.Result != audit.ResultRefused {
		t.Errorf("create audit record of the privileged container = %+v, want refused", rec)
	}
}

// hasChange reports whether the record has a change by rule whose result
// mentions s.
func hasChange(rec *audit.Record, rule, s string) bool {
	for _, c := range rec.Changes {
		if c.Rule == rule && strings.Contains(fmt.Sprint(c.After), s) {
			return true
		}
	}
	return false
}

// containerd's CRI plugin probes each handler's features with the runtime's
// own `-info` (in containerd's environment, not the shims'); palisade's
// handler advertises what the runc handler does, so the kubelet may schedule
// user-namespace pods and recursive read-only mounts on it.
func TestHandlerFeaturesMatchRunc(t *testing.T) {
	e := needEnv(t)
	var info struct {
		RuntimeHandlers []struct {
			Name     string          `json:"name"`
			Features json.RawMessage `json:"features"`
		} `json:"runtimeHandlers"`
	}
	out := crictl(t, e, "info", "-o", "json")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("crictl info: %v\n%s", err, out)
	}
	features := map[string]string{}
	for _, h := range info.RuntimeHandlers {
		features[h.Name] = string(h.Features)
	}
	if features[harness.CRIHandler] == "" || features[harness.CRIHandler] != features["runc"] {
		t.Errorf("handler features: palisade %s, runc %s", features[harness.CRIHandler], features["runc"])
	}
	t.Logf("features: %s", features["runc"])
}

// A pod's own Localhost seccomp profile is combined with palisade's, not
// dropped: a profile that denies mkdir keeps mkdir denied under palisade
// (runc would deny it too), palisade's own denials stay, and the audit
// record names both filters.
func TestPodSeccompProfileTightens(t *testing.T) {
	e := needEnv(t)
	profile := filepath.Join(t.TempDir(), "deny-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64"],`+
		`"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	podName := name(t, "pod")
	pod := writeJSON(t, podConfig(t, podName, nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	sc := obj{"seccomp": obj{"profile_type": 2, "localhost_ref": profile}} // Localhost
	ctr := writeJSON(t, containerConfig("main", sc, nil, "/usr/bin/probe", "sleep", "300"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	crictl(t, e, "start", ctrID)
	r := e.Crictl("exec", ctrID, "/bin/mkdir", "/tmp/made")
	if r.Err == nil || !strings.Contains(r.Stdout+r.Stderr, "Operation not permitted") {
		t.Errorf("mkdir under a pod profile that denies it: %s", r)
		t.Logf("%+v", auditRecords(t, e, ctrID))
	}
	if out := crictl(t, e, "exec", ctrID, "/bin/sh", "-c", "echo ok > /tmp/file && cat /tmp/file"); out != "ok" {
		t.Errorf("a call both filters allow failed: %q", out)
	}
	r = e.Crictl("exec", ctrID, "/bin/mount", "-t", "tmpfs", "none", "/mnt")
	if r.Err == nil {
		t.Errorf("mount (palisade denies it) succeeded: %s", r)
	}
	rec := harness.FindRecord(auditRecords(t, e, ctrID), audit.EventCreate)
	if rec == nil {
		t.Fatal("no create audit record")
	}
	found := false
	for _, c := range rec.Changes {
		found = found || c.Rule == "seccomp" && strings.Contains(fmt.Sprint(c.Before), "client filter") && strings.Contains(fmt.Sprint(c.After), "∩ client filter")
	}
	if !found {
		t.Errorf("the audit record does not name both filters: %+v", rec.Changes)
	}
}

// A stock image writing its pid file under /var/run and /run (nginx, httpd)
// works on palisade's read-only root, as the unprivileged user root became;
// the directories are noexec.
func TestStockImageRunDirectories(t *testing.T) {
	e := needEnv(t)
	podName := name(t, "pod")
	pod := writeJSON(t, podConfig(t, podName, nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	ctr := writeJSON(t, containerConfig("web", nil, nil, "/bin/sh", "-c",
		"echo $$ > /var/run/web.pid && echo up > /run/web.state && exec /usr/bin/probe sleep 300"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	crictl(t, e, "start", ctrID)
	if out := crictl(t, e, "exec", ctrID, "/bin/cat", "/run/web.state"); out != "up" {
		t.Errorf("/run/web.state = %q: the container could not write its run directory", out)
	}
	if r := e.Crictl("exec", ctrID, "/bin/sh", "-c", "test -s /var/run/web.pid"); r.Err != nil {
		t.Errorf("no pid file in /var/run: %s", r)
	}
	r := e.Crictl("exec", ctrID, "/bin/sh", "-c", "cp /bin/busybox /run/bb && /run/bb true")
	if r.Err == nil {
		t.Errorf("a binary copied into /run ran: %s", r)
	}
	if r := e.Crictl("exec", ctrID, "/bin/touch", "/etc/x"); r.Err == nil {
		t.Errorf("the root filesystem is writable: %s", r)
	}
}

// A pod asks for more writable directories with palisade.dev/writable-paths,
// within the profile's allow-list: they become noexec tmpfs; a directory
// outside the list is refused with palisade's message.
func TestWritablePathsAnnotation(t *testing.T) {
	e := needEnv(t)
	ann := map[string]string{"palisade.dev/writable-paths": "/var/cache/app,/var/log/app"}
	pod := writeJSON(t, podConfig(t, name(t, "pod"), ann, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	ctr := writeJSON(t, containerConfig("app", nil, ann, "/bin/sh", "-c", "echo cached > /var/cache/app/x && exec /usr/bin/probe sleep 300"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	crictl(t, e, "start", ctrID)
	if out := crictl(t, e, "exec", ctrID, "/bin/cat", "/var/cache/app/x"); out != "cached" {
		t.Errorf("/var/cache/app/x = %q", out)
	}
	if r := e.Crictl("exec", ctrID, "/bin/sh", "-c", "cp /bin/busybox /var/log/app/bb && /var/log/app/bb true"); r.Err == nil {
		t.Errorf("a binary copied into a writable path ran: %s", r)
	}

	bad := writeJSON(t, containerConfig("etc", nil, map[string]string{"palisade.dev/writable-paths": "/etc"}, "/bin/true"))
	badID := crictl(t, e, "create", podID, bad, pod)
	if r := e.Crictl("start", badID); r.Err == nil || !strings.Contains(r.Stderr, "/etc is not at or below a directory profile") || !strings.Contains(r.Stderr, "[rule tmpfs, profile restricted]") {
		t.Errorf("writable /etc: %s", r)
	}
}

// A stock image that writes its pid file to its root filesystem fails on
// palisade's read-only root. `palisade explain --container` names that
// first: the rule and profile that made the root read-only against the
// pod's wish, the exit, the writable directories and the fix.
func TestExplainReadOnlyRootExit(t *testing.T) {
	e := needEnv(t)
	pod := writeJSON(t, podConfig(t, name(t, "pod"), nil, nsPod))
	podID := runPod(t, e, harness.CRIHandler, pod)
	ctr := writeJSON(t, containerConfig("web", nil, nil, "/bin/sh", "-c", "echo $$ > /web.pid"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	crictl(t, e, "start", ctrID)
	var del *audit.Record
	for deadline := time.Now().Add(10 * time.Second); del == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		del = harness.FindRecord(auditRecords(t, e, ctrID), audit.EventDelete)
	}
	if del == nil || del.Exit == nil || del.Exit.Status == 0 {
		t.Fatalf("delete record of the exited container = %+v, want its non-zero exit", del)
	}
	out, err := e.Command("palisade", "explain", "--config", e.AdminConfig, "--container", ctrID, "-n", "k8s.io").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "Likely cause: palisade made this container's root filesystem read-only (rule readonly-rootfs, profile restricted)") ||
		!strings.Contains(string(out), "exited with status 1") || !strings.Contains(string(out), "palisade.dev/writable-paths") {
		t.Errorf("explain of a container that failed on its read-only root: %v\n%s", err, out)
	}

	// A container that asked for a read-only root itself gets no such hint.
	ro := writeJSON(t, containerConfig("ro", obj{"readonly_rootfs": true}, nil, "/bin/sh", "-c", "echo $$ > /web.pid"))
	roID := crictl(t, e, "create", podID, ro, pod)
	crictl(t, e, "start", roID)
	del = nil
	for deadline := time.Now().Add(10 * time.Second); del == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		del = harness.FindRecord(auditRecords(t, e, roID), audit.EventDelete)
	}
	out, err = e.Command("palisade", "explain", "--config", e.AdminConfig, "--container", roID, "-n", "k8s.io").CombinedOutput()
	if del == nil || err != nil || strings.Contains(string(out), "Likely cause") {
		t.Errorf("explain of a container that asked for its read-only root: %v\n%s", err, out)
	}
}
