package cri

import (
	"encoding/json"
	"strings"
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
	podName := name(t, "pod")
	cfg := podConfig(t, podName, nil, nsPod)
	idmap := []obj{{"host_id": 1000000, "container_id": 0, "length": 65536}}
	userns := obj{"mode": nsPod, "uids": idmap, "gids": idmap}
	cfg["linux"].(obj)["security_context"].(obj)["namespace_options"].(obj)["userns_options"] = userns
	pod := writeJSON(t, cfg)
	podID := runPod(t, e, harness.CRIHandlerNoOptions, pod)
	ctr := writeJSON(t, containerConfig("main", obj{"namespace_options": obj{"userns_options": userns}}, nil, "/usr/bin/probe", "sleep", "300"))
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
