package cri

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

// A pod with its own user namespace (Kubernetes hostUsers: false) runs under
// palisade. containerd sends runc's options type for it (IoUid/IoGid), so the
// handler has no ConfigPath and the shim uses its default admin config;
// the sandbox joins the user namespace containerd pinned for it, the
// container's /etc files are id-mapped exactly as its user namespace. Inside,
// the profile's rules still apply: the process runs as the profile's user
// within the mapped range, with no_new_privs.
func TestUserNamespacePod(t *testing.T) {
	e := needEnv(t)
	podID, pod := usernsPod(t, e, name(t, "pod"))
	ctr := writeJSON(t, containerConfig("main", usernsContainer, nil, "/usr/bin/probe", "sleep", "300"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	crictl(t, e, "start", ctrID)
	if out := strings.Fields(crictl(t, e, "exec", ctrID, "/bin/cat", "/proc/self/uid_map")); len(out) != 3 || out[0] != "0" || out[1] != "1000000" || out[2] != "65536" {
		t.Errorf("uid_map inside = %q, want 0 1000000 65536", out)
	}
	var rep struct {
		UID        int `json:"uid"`
		NoNewPrivs int `json:"no_new_privs"`
	}
	if out := crictl(t, e, "exec", ctrID, "/usr/bin/probe", "report"); json.Unmarshal([]byte(out), &rep) != nil || rep.UID != 65534 || rep.NoNewPrivs != 1 {
		t.Errorf("probe report %q: want uid 65534 (the profile's user, mapped) and no_new_privs 1", out)
	}
	rec := harness.FindRecord(auditRecords(t, e, ctrID), audit.EventCreate)
	if rec == nil || rec.Result != audit.ResultAllowed || rec.Config != e.Build().DefaultConfig {
		t.Errorf("create audit record %+v: want allowed under the default admin config", rec)
	}
	crictl(t, e, "rm", "-f", ctrID)
	assertClean(t, e, ctrID)
}

// A secret reaches a container in its own user namespace: the file is
// owned by the profile's user as the container sees it (65534), which is
// the mapped uid on the host, readable by the process and by nobody else;
// the value is in no environment, and the tmpfs goes with the container.
func TestUserNamespacePodSecrets(t *testing.T) {
	e := needEnv(t)
	const value = "userns-secret-4f1c9a"
	dir := filepath.Join(e.SecretStore, "kubernetes", "default")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db-password"), []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	podID, pod := usernsPod(t, e, name(t, "pod"))
	ann := map[string]string{"palisade.dev/secrets": "db-password"}
	ctr := writeJSON(t, containerConfig("main", usernsContainer, ann, "/usr/bin/probe", "sleep", "300"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	crictl(t, e, "start", ctrID)

	if out := crictl(t, e, "exec", ctrID, "/bin/cat", "/run/secrets/db-password"); out != value {
		t.Errorf("the secret read inside = %q", out)
	}
	if out := crictl(t, e, "exec", ctrID, "/bin/sh", "-c", "stat -c '%a %u %g' /run/secrets/db-password"); out != "400 65534 65534" {
		t.Errorf("the secret file inside is %q, want 400 owned by 65534:65534", out)
	}
	if out := crictl(t, e, "exec", ctrID, "/bin/sh", "-c", "cat /proc/1/environ /proc/self/environ | tr '\\0' '\\n'"); strings.Contains(out, value) {
		t.Error("the secret value is in the environment")
	}
	var hostFile string
	for _, m := range e.SecretMounts(t) {
		if strings.HasSuffix(m, "/"+ctrID) {
			hostFile = filepath.Join(m, "db-password")
		}
	}
	var st syscall.Stat_t
	if hostFile == "" || syscall.Stat(hostFile, &st) != nil || st.Uid != 1000000+65534 || st.Gid != 1000000+65534 {
		t.Errorf("the secret file on the host (%q) is owned by %d:%d, want the mapped 1065534", hostFile, st.Uid, st.Gid)
	}
	crictl(t, e, "rm", "-f", ctrID)
	assertClean(t, e, ctrID)
	for _, m := range e.SecretMounts(t) {
		if strings.HasSuffix(m, "/"+ctrID) {
			t.Errorf("the secret tmpfs %s is still mounted", m)
		}
	}
}

// palisade.dev/writable-paths works for a pod in its own user namespace:
// the image is looked up (its snapshot is id-mapped) and the tmpfs is
// writable by the profile's user, mapped.
func TestUserNamespacePodWritablePaths(t *testing.T) {
	e := needEnv(t)
	podID, pod := usernsPod(t, e, name(t, "pod"))
	ann := map[string]string{"palisade.dev/writable-paths": "/var/cache/app"}
	ctr := writeJSON(t, containerConfig("main", usernsContainer, ann,
		"/bin/sh", "-c", "echo cached > /var/cache/app/x && exec /usr/bin/probe sleep 300"))
	ctrID := crictl(t, e, "create", podID, ctr, pod)
	crictl(t, e, "start", ctrID)
	if out := crictl(t, e, "exec", ctrID, "/bin/cat", "/var/cache/app/x"); out != "cached" {
		t.Errorf("/var/cache/app/x = %q", out)
	}
}

// usernsMapping is the user namespace of the pods here: ids 0–65535 inside
// are 1000000–1065535 on the host.
var usernsMapping = func() obj {
	idmap := []obj{{"host_id": 1000000, "container_id": 0, "length": 65536}}
	return obj{"mode": nsPod, "uids": idmap, "gids": idmap}
}()

// usernsContainer is the security context of a container in such a pod.
var usernsContainer = obj{"namespace_options": obj{"userns_options": usernsMapping}}

// usernsPod runs a pod named podName in its own user namespace (Kubernetes
// hostUsers: false) under the handler without runtime options, and returns
// its ID and config file.
func usernsPod(t *testing.T, e *harness.Env, podName string) (string, string) {
	t.Helper()
	cfg := podConfig(t, podName, nil, nsPod)
	cfg["linux"].(obj)["security_context"].(obj)["namespace_options"].(obj)["userns_options"] = usernsMapping
	pod := writeJSON(t, cfg)
	return runPod(t, e, harness.CRIHandlerNoOptions, pod), pod
}
