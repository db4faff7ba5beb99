package harden

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/execguard"
	"palisade.dev/palisade/libshim/policy"
)

// A process that holds CAP_SYS_ADMIN could set vm.memfd_noexec back to 0 in
// its PID namespace: an enforced exec allow-list refuses it, at create and
// in an exec process, in any capability set and however it is spelled,
// even when the profile allows the capability.
func TestExecAllowlistRefusesSysAdmin(t *testing.T) {
	root, helper := execFixture(t)
	req := request(t, "", map[string]string{policy.AnnotationExecAllow: "/bin/app"})
	req.LandlockABI = func() (int, error) { return 7, nil }
	req.Helper = helper
	req.Rootfs = func(f func(string) error) error { return f(root) }
	prof := *req.Policy.Profile
	prof.Capabilities.Allowed = append(slices.Clone(prof.Capabilities.Allowed), "CAP_SYS_ADMIN")
	req.Policy.Profile = &prof

	s := ctrSpec()
	s.Process.Args = []string{"/bin/app"}
	plan, _, err := Harden(req, s)
	if err != nil || !plan.ExecEnforced {
		t.Fatalf("without CAP_SYS_ADMIN: %v", err)
	}
	for _, c := range []*specs.LinuxCapabilities{
		{Bounding: []string{"CAP_SYS_ADMIN"}, Effective: []string{"CAP_SYS_ADMIN"}, Permitted: []string{"CAP_SYS_ADMIN"}},
		{Bounding: []string{"sys_admin"}},
	} {
		s := ctrSpec()
		s.Process.Args = []string{"/bin/app"}
		s.Process.Capabilities = c
		refusal(t, harden(t, req, s), "exec-allowlist", "cannot hold with CAP_SYS_ADMIN", "vm.memfd_noexec")
	}
	exec := *req
	exec.Created = plan.ForExec()
	p := *plan.Spec.Process
	p.Args = []string{"/bin/app"}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN"}, Effective: []string{"CAP_SYS_ADMIN"}, Permitted: []string{"CAP_SYS_ADMIN"}}
	_, _, err = Process(&exec, &p)
	refusal(t, err, "exec-allowlist", "cannot hold with CAP_SYS_ADMIN")
}

// Verification holds the rule on its own, whatever the transforms did: a
// finished process that starts through the helper but holds CAP_SYS_ADMIN
// fails it.
func TestVerifyExecAllowlistCatchesSysAdmin(t *testing.T) {
	p := &specs.Process{
		Args:         []string{execguard.HelperPath, "exec", "--allow", "/bin/app", "--", "/bin/app"},
		Capabilities: &specs.LinuxCapabilities{Ambient: []string{"CAP_SYS_ADMIN"}},
	}
	err := VerifyProcess(request(t, "", nil), &Decisions{ExecEnforced: true}, p)
	if err == nil || !strings.Contains(err.Error(), "the exec allow-list is to be enforced but the process holds CAP_SYS_ADMIN") {
		t.Fatalf("verification of a process with CAP_SYS_ADMIN under an enforced list: %v", err)
	}
}
