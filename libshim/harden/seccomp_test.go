package harden

import (
	"bytes"
	"encoding/json"
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/bundle"

	"palisade.dev/palisade/seccomp"
)

// The built-in profiles get a native-only filter, whatever the client's
// filter listed; a profile with seccomp.compat_abi = true (here through the
// admin override, the way a node opts in) gets the compat ABIs of the
// seccomp profile. The audit record says which, and the verification pass
// refuses a filter that admits compat ABIs the profile does not allow.
func TestSeccompCompatABIs(t *testing.T) {
	target := seccomp.Arches[runtime.GOARCH]
	compat := []specs.Arch{target.Arch}
	for _, c := range target.Compat {
		compat = append(compat, c.Arch)
	}
	for _, prof := range []string{"restricted", "baseline"} {
		req := request(t, prof, nil)
		s := ctrSpec()
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: compat}
		changes, err := hardenInPlace(req, s)
		if err != nil {
			t.Fatalf("%s: %v", prof, err)
		}
		if got := s.Linux.Seccomp.Architectures; !slices.Equal(got, []specs.Arch{target.Arch}) {
			t.Errorf("%s: architectures %v, want the native one only", prof, got)
		}
		if !slices.ContainsFunc(changes, func(c audit.Change) bool {
			return c.Rule == "seccomp" && strings.Contains(c.After.(string), "native ABI only")
		}) {
			t.Errorf("%s: the audit changes do not say the filter is native-only: %+v", prof, changes)
		}
	}

	req := request(t, "", nil)
	req.Policy.Profile.Seccomp.CompatABI = true
	s := ctrSpec()
	changes, err := hardenInPlace(req, s)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Linux.Seccomp.Architectures; !slices.Equal(got, compat) {
		t.Errorf("compat_abi = true: architectures %v, want %v", got, compat)
	}
	if !slices.ContainsFunc(changes, func(c audit.Change) bool {
		return c.Rule == "seccomp" && strings.Contains(c.After.(string), "compat ABIs allowed")
	}) {
		t.Errorf("the audit changes do not say compat ABIs are allowed: %+v", changes)
	}
	if _, err := hardenInPlace(req, s); err != nil {
		t.Errorf("hardening again: %v", err)
	}

	// The independent check: the same spec under a native-only profile.
	req.Policy.Profile.Seccomp.CompatABI = false
	if err := Verify(req, nil, s); err == nil || !strings.Contains(err.Error(), "rule verify-seccomp") {
		t.Errorf("verify accepted compat ABIs the profile does not allow: %v", err)
	}
}

// Pods' own filters, decoded the way the shim reads config.json (shared per
// text, seccomp.DecodeClient) and combined through the caches
// (seccomp.IntersectCached): each container gets its own pod's answer, run
// after run, in either order, and the filter it sent is left as it was.
func TestSeccompPodFiltersNeverShareAnswers(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the pod filters below name x86_64")
	}
	spec := func(denied string) *specs.Spec {
		body := `{"ociVersion":"1.3.0","process":{"args":["/bin/sh"]},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"network"}],` +
			`"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["` + denied + `"],"action":"SCMP_ACT_ERRNO"}]}}}`
		s, err := bundle.DecodeSpec("config.json", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	verdicts := func(s *specs.Spec) (mkdir, chmod string) {
		f, err := seccomp.Compile(s.Linux.Seccomp, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := f.Check("mkdir")
		c, _ := f.Check("chmod")
		return m.Action, c.Action
	}
	req := request(t, "", nil)
	for round := range 3 {
		for _, denied := range []string{"mkdir", "chmod", "mkdir"} {
			in := spec(denied)
			sent, _ := json.Marshal(in.Linux.Seccomp)
			plan, _, err := Harden(req, in)
			if err != nil {
				t.Fatal(err)
			}
			m, c := verdicts(plan.Spec)
			if want := map[bool]string{true: "errno EPERM", false: "allow"}; m != want[denied == "mkdir"] || c != want[denied == "chmod"] {
				t.Errorf("round %d, pod denying %s: mkdir %s, chmod %s", round, denied, m, c)
			}
			if after, _ := json.Marshal(in.Linux.Seccomp); !bytes.Equal(sent, after) {
				t.Errorf("round %d: the pod's filter was changed: %s", round, after)
			}
		}
	}
}

// Unconfined by the admin's leave, a workload keeps its own filter without
// what only the node chooses (listener, flags, notify); hardening again
// changes nothing, and the verification pass accepts it.
func TestUnconfinedKeepsClientFilter(t *testing.T) {
	req := request(t, "", nil)
	req.Policy.Seccomp, req.Policy.SeccompName = nil, seccomp.Unconfined
	s := ctrSpec()
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock", Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}, {Names: []string{"chmod"}, Action: specs.ActNotify}}}
	if _, err := hardenInPlace(req, s); err != nil {
		t.Fatal(err)
	}
	sc := s.Linux.Seccomp
	if sc == nil || sc.ListenerPath != "" || len(sc.Flags) > 0 || len(sc.Syscalls) != 1 || sc.Syscalls[0].Action != specs.ActErrno || !slices.Equal(sc.Syscalls[0].Names, []string{"chmod", "mkdir"}) {
		t.Fatalf("the workload's filter under unconfined: %+v", sc)
	}
	before := *sc
	changes, err := hardenInPlace(req, s)
	if err != nil || !sameFilter(&before, s.Linux.Seccomp) || slices.ContainsFunc(changes, func(c audit.Change) bool { return c.Rule == "seccomp" }) {
		t.Errorf("hardening again: %v, %+v, changes %+v", err, s.Linux.Seccomp, changes)
	}
	if err := Verify(req, nil, s); err != nil {
		t.Errorf("verify: %v", err)
	}
}
