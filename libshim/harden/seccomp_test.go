package harden

import (
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"

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
