package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade/testing/harness"
)

// Where the admin lets a workload run without palisade's seccomp filter
// (overrides.PROFILE.seccomp_unconfined) and it asks for that, a filter the
// workload brought itself (a pod's Localhost profile, here ctr's
// --seccomp-profile) still applies: a workload may always ask for less.
// The calls palisade's own filter would deny are allowed, as the workload
// asked, but its own denial of mkdir holds.
func TestUnconfinedKeepsWorkloadFilter(t *testing.T) {
	e := needEnv(t)
	profile := filepath.Join(t.TempDir(), "deny-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64"],`+
		`"listenerPath":"/run/palisade-no-such-agent.sock","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := adminConfig(t, e, "[overrides.restricted]\nseccomp_unconfined = true\n")
	id := containerID(t, "own")
	r := e.Ctr("run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg,
		"--annotation", "palisade.dev/seccomp-profile=unconfined", "--seccomp", "--seccomp-profile", profile,
		e.Image(), id, "/bin/sh", "-c", "mkdir /tmp/made; echo mkdir=$?; /usr/bin/probe try syscall keyctl")
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	if !strings.Contains(r.Stdout, "mkdir=1") || !strings.Contains(r.Stdout+r.Stderr, "Operation not permitted") {
		t.Errorf("mkdir under the workload's own filter that denies it: %s", r)
	}
	if !strings.Contains(r.Stdout, `{"action":"syscall","ok":true}`) {
		t.Errorf("keyctl (palisade's filter denies it, the workload's does not) was denied: %s", r.Stdout)
	}
	assertClean(t, e, id)
}

// An admin profile may compare one argument twice in a rule (allow
// personality if arg0 == 0 or arg0 == 8), which runc installs as one rule
// per condition. Combined with a workload filter that allows personality
// only with 7 in its second argument, a call that the node's filter denies
// (personality(3), second argument 7) must stay denied: merging the two
// rules' conditions would let runc split the merged rule, each condition
// then allowing the call alone.
func TestWorkloadFilterWithRepeatedArgumentRule(t *testing.T) {
	e := needEnv(t)
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "seccomp", "palisade-default.json"))
	if err != nil {
		t.Fatal(err)
	}
	var prof map[string]any
	if err := json.Unmarshal(b, &prof); err != nil {
		t.Fatal(err)
	}
	var rules []any
	for _, r := range prof["syscalls"].([]any) {
		if names, _ := r.(map[string]any)["names"].([]any); len(names) == 1 && names[0] == "personality" {
			continue
		}
		rules = append(rules, r)
	}
	prof["syscalls"] = append(rules, map[string]any{"names": []string{"personality"}, "action": "SCMP_ACT_ALLOW",
		"args": []map[string]any{{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}}})
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "seccomp"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(prof)
	if err := os.WriteFile(filepath.Join(dir, "seccomp", "either.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "either.toml"), []byte("name = \"either\"\n[pids]\nlimit = 64\n[seccomp]\nprofile = \"either\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := adminConfig(t, e, "profiles_dir = \""+dir+"\"\ndefault_profile = \"either\"\n")
	pod := filepath.Join(t.TempDir(), "pod.json")
	if err := os.WriteFile(pod, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":7,"op":"SCMP_CMP_EQ"}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	id := containerID(t, "either")
	r := e.Ctr("run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg, "--seccomp", "--seccomp-profile", pod,
		e.Image(), id, "/usr/bin/probe", "try", "syscall", "personality-3-7")
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	if !strings.Contains(r.Stdout, `"ok":false`) {
		t.Errorf("personality(3) with 7 in the second argument, which the node's filter denies: %s", r.Stdout)
	}
	assertClean(t, e, id)
}
