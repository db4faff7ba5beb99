package harden

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/lsm"
	"palisade.dev/palisade/libshim/policy"
)

// lsmRequest is a request on a simulated host with the given LSMs, its MCS
// store in a temporary directory.
func lsmRequest(t *testing.T, host lsm.Host, ann map[string]string) *Request {
	t.Helper()
	req := request(t, "", ann)
	req.Config.SELinux.StateDir = t.TempDir()
	req.LSM = &lsm.Env{Host: host, Reserve: true}
	return req
}

// require refuses on a host without the LSM, naming it and the fix;
// if-available runs without it and records that in the audit changes.
func TestLSMModesOnHostWithout(t *testing.T) {
	for _, c := range []struct {
		selinux, apparmor string
		rule, want        string
		notes             []string
	}{
		{selinux: lsm.Require, apparmor: lsm.IfAvailable, rule: "lsm-labels", want: `SELinux is required (selinux.mode = "require") but this host does not enforce it`},
		{selinux: lsm.IfAvailable, apparmor: lsm.Require, rule: "apparmor", want: `AppArmor is required (apparmor.mode = "require") but this host does not enforce it`},
		{selinux: lsm.IfAvailable, apparmor: lsm.IfAvailable, notes: []string{"lsm-labels: SELinux is not enabled on this host", "apparmor: AppArmor is not enabled on this host"}},
		{selinux: lsm.Off, apparmor: lsm.Off},
	} {
		req := lsmRequest(t, lsm.Host{}, nil)
		req.Config.SELinux.Mode, req.Config.AppArmor.Mode = c.selinux, c.apparmor
		s := ctrSpec()
		changes, err := createIn(req, s)
		if c.want != "" {
			var r *policy.Refusal
			if !errors.As(err, &r) || r.Rule != c.rule || !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), c.want) ||
				!strings.Contains(err.Error(), `set `+strings.ToLower(strings.Fields(c.want)[0])+`.mode = "if-available" in`) {
				t.Errorf("%s/%s: err = %v, want a %s refusal %q with the fix", c.selinux, c.apparmor, err, c.rule, c.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s/%s: %v", c.selinux, c.apparmor, err)
		}
		var notes []string
		for _, ch := range changes {
			if ch.Note && (ch.Rule == "lsm-labels" || ch.Rule == "apparmor") {
				notes = append(notes, ch.Rule+": "+ch.After.(string))
			}
		}
		if len(notes) != len(c.notes) {
			t.Errorf("%s/%s: LSM notes %q, want %q", c.selinux, c.apparmor, notes, c.notes)
		}
		for i := range min(len(notes), len(c.notes)) {
			if !strings.HasPrefix(notes[i], c.notes[i]) {
				t.Errorf("note %q, want %q", notes[i], c.notes[i])
			}
		}
		if s.Process.SelinuxLabel != "" || s.Process.ApparmorProfile != "" || s.Linux.MountLabel != "" {
			t.Errorf("labels set on a host without the LSMs: %+v", s.Process)
		}
	}
	// A label the host cannot honour is refused under if-available.
	req := lsmRequest(t, lsm.Host{}, nil)
	s := ctrSpec()
	s.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2"
	if _, err := createIn(req, s); err == nil || !strings.Contains(err.Error(), "this host does not enforce SELinux") {
		t.Errorf("SELinux label on a host without SELinux: %v", err)
	}
}

// On an SELinux host every container gets container_t at its own reserved
// level, verified, idempotent, shared with its exec processes, and released.
func TestSELinuxLabels(t *testing.T) {
	host := lsm.Host{SELinux: true}
	req := lsmRequest(t, host, nil)
	s := ctrSpec()
	if _, err := createIn(req, s); err != nil {
		t.Fatal(err)
	}
	level := lsm.SELinuxLevel(s.Process.SelinuxLabel)
	if lsm.SELinuxType(s.Process.SelinuxLabel) != "container_t" || !strings.HasPrefix(level, "s0:c") ||
		s.Linux.MountLabel != "system_u:object_r:container_file_t:"+level {
		t.Fatalf("labels %q / %q", s.Process.SelinuxLabel, s.Linux.MountLabel)
	}
	again, err := createIn(req, s)
	if err != nil || len(slices.DeleteFunc(again, func(c audit.Change) bool { return c.Note })) != 0 {
		t.Fatalf("hardening again: %v %+v", err, again)
	}

	other := lsmRequest(t, host, nil)
	other.ID = "c2"
	other.Config.SELinux.StateDir = req.Config.SELinux.StateDir
	s2 := ctrSpec()
	if _, err := createIn(other, s2); err != nil {
		t.Fatal(err)
	}
	if lsm.SELinuxLevel(s2.Process.SelinuxLabel) == level {
		t.Fatalf("two containers share level %s", level)
	}

	p := &specs.Process{Args: []string{"/bin/sh"}}
	if _, err := execIn(req, p); err != nil || p.SelinuxLabel != s.Process.SelinuxLabel {
		t.Fatalf("exec process label %q (%v), want the container's %q", p.SelinuxLabel, err, s.Process.SelinuxLabel)
	}
	p = &specs.Process{Args: []string{"/bin/sh"}, SelinuxLabel: "system_u:system_r:container_t:s0:c1000,c1001"}
	if _, err := execIn(req, p); err == nil || !strings.Contains(err.Error(), "not the one palisade reserved") {
		t.Fatalf("exec at another level: %v", err)
	}

	if err := ReleaseLSM(req, req.Created); err != nil {
		t.Fatal(err)
	}
	levels, _ := req.mcs().Levels()
	if _, held := levels["ns/c1"]; held || len(levels) != 1 {
		t.Fatalf("after release the store holds %v", levels)
	}
}

// A client's label is accepted only with an allowed type at palisade's
// level; unconfined types are refused whatever the mode.
func TestSELinuxClientLabels(t *testing.T) {
	host := lsm.Host{SELinux: true}
	req := lsmRequest(t, host, nil)
	req.Config.SELinux.AllowedTypes = []string{"container_init_t"}
	level, err := req.mcs().Reserve(lsm.Holder{Namespace: "ns", ID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		label, want string
	}{
		{"system_u:system_r:container_init_t:" + level, ""},
		{"system_u:system_r:container_t:s0:c1000,c1001", "not the one palisade reserved"},
		{"system_u:system_r:svirt_lxc_net_t:" + level, "type svirt_lxc_net_t is not allowed"},
		{"system_u:system_r:spc_t:" + level, "would run the process unconfined"},
	} {
		for _, mode := range []string{lsm.IfAvailable, lsm.Off} {
			req.Config.SELinux.Mode = mode
			s := ctrSpec()
			s.Process.SelinuxLabel = c.label
			_, err := createIn(req, s)
			want := c.want
			if mode == lsm.Off && !strings.Contains(c.label, "spc_t") {
				want = "" // palisade does not manage SELinux: only unconfined types are refused
			}
			if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
				t.Errorf("%s %s: %v, want %q", mode, c.label, err, want)
			}
			if want == "" && err == nil && s.Process.SelinuxLabel != c.label {
				t.Errorf("%s: accepted label became %q", c.label, s.Process.SelinuxLabel)
			}
		}
	}
}

// The verification pass checks the labels on its own: a process that lost
// its level or profile, or got an unconfined type, fails it.
func TestVerifyLSMLabels(t *testing.T) {
	req := lsmRequest(t, lsm.Host{SELinux: true, AppArmor: true}, nil)
	s := ctrSpec()
	if _, err := createIn(req, s); err != nil {
		t.Fatal(err)
	}
	for _, tamper := range []func(p *specs.Process){
		func(p *specs.Process) { p.SelinuxLabel = "system_u:system_r:container_t:s0:c1000,c1001" },
		func(p *specs.Process) { p.SelinuxLabel = "system_u:system_r:spc_t:s0" },
		func(p *specs.Process) { p.ApparmorProfile = "docker-default" },
		func(p *specs.Process) { p.ApparmorProfile = "unconfined" },
	} {
		p := *s.Process
		tamper(&p)
		if err := VerifyProcess(req, req.Created, &p); err == nil || !strings.Contains(err.Error(), "verify-lsm-labels") {
			t.Errorf("tampered process %q %q passes verification: %v", p.SelinuxLabel, p.ApparmorProfile, err)
		}
	}
}

// On an AppArmor host the container and its exec processes run under the
// profile generated for it, which replaces the runtime's default; with an
// exec allow-list the profile lets exactly those programs run.
func TestAppArmorProfileApplied(t *testing.T) {
	root, helper := execFixture(t)
	req := lsmRequest(t, lsm.Host{AppArmor: true}, map[string]string{policy.AnnotationExecAllow: "/bin/app"})
	req.Helper = helper
	req.Rootfs = func(f func(string) error) error { return f(root) }
	req.LandlockABI = func() (int, error) { return 7, nil }
	s := ctrSpec()
	s.Process.Args = []string{"/bin/app"}
	s.Process.ApparmorProfile = "cri-containerd.apparmor.d"
	changes, err := createIn(req, s)
	if err != nil {
		t.Fatal(err)
	}
	name := s.Process.ApparmorProfile
	if !strings.HasPrefix(name, "palisade-restricted-") || req.Created.Labels.AppArmorName != name {
		t.Fatalf("apparmor profile %q", name)
	}
	if !slices.ContainsFunc(changes, func(c audit.Change) bool { return c.Rule == "apparmor" && c.Before == "cri-containerd.apparmor.d" }) {
		t.Errorf("replacing the runtime's profile is not audited: %+v", changes)
	}
	text := req.Created.Labels.AppArmorText
	if strings.Count(text, " ix,") != 2 || !strings.Contains(text, "  \"/bin/app\" ix,\n") || !strings.Contains(text, "  \"/dev/.palisade-init\" ix,\n") ||
		!strings.Contains(text, "  \"/tmp{,/**}\" rwlk,\n") || !strings.Contains(text, "deny network raw,") {
		t.Errorf("generated profile:\n%s", text)
	}
	p := &specs.Process{Args: []string{"/bin/app"}, ApparmorProfile: "cri-containerd.apparmor.d"}
	if _, err := execIn(req, p); err != nil || p.ApparmorProfile != name {
		t.Fatalf("exec process profile %q (%v), want %q", p.ApparmorProfile, err, name)
	}
	again, err := createIn(req, s)
	if err != nil || len(slices.DeleteFunc(again, func(c audit.Change) bool { return c.Note })) != 0 {
		t.Fatalf("hardening again: %v %+v", err, again)
	}
}

// A container refused after its MCS pair was reserved leaves no
// reservation: Harden releases what it reserved when it refuses.
func TestRefusedContainerReleasesMCS(t *testing.T) {
	req := lsmRequest(t, lsm.Host{SELinux: true}, nil)
	s := ctrSpec()
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/host", Type: "bind", Source: "/", Options: []string{"rbind"}})
	if _, err := createIn(req, s); err == nil {
		t.Fatal("a bind mount of / was accepted")
	}
	if levels, _ := req.mcs().Levels(); len(levels) != 0 {
		t.Fatalf("reservations left behind: %v", levels)
	}
}

// A volume at a path AppArmor rules cannot hold refuses the container only
// where AppArmor applies.
func TestAppArmorUnrenderablePath(t *testing.T) {
	for _, host := range []lsm.Host{{}, {AppArmor: true}} {
		req := lsmRequest(t, host, nil)
		s := ctrSpec()
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data*", Type: "bind", Source: t.TempDir(), Options: []string{"rbind", "rw"}})
		_, err := createIn(req, s)
		if host.AppArmor != (err != nil) || err != nil && !strings.Contains(err.Error(), "cannot generate the AppArmor profile") {
			t.Errorf("apparmor host %v: %v", host.AppArmor, err)
		}
	}
}

// The secrets tmpfs is mounted with the container's SELinux mount label.
func TestSecretsGetTheMountLabel(t *testing.T) {
	ann := map[string]string{policy.AnnotationSecrets: "db"}
	req := withSecrets(t, lsmRequest(t, lsm.Host{SELinux: true}, nil), ann)
	s := ctrSpec()
	s.Annotations = ann
	plan, _, err := Harden(req, s)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Secrets == nil || plan.Secrets.MountLabel == "" || plan.Secrets.MountLabel != plan.Spec.Linux.MountLabel {
		t.Fatalf("secrets plan %+v, mount label %q", plan.Secrets, plan.Spec.Linux.MountLabel)
	}
}

// The containers of a CRI pod share their sandbox's pair; another pod gets
// its own.
func TestSELinuxPodsSharePairs(t *testing.T) {
	dir := t.TempDir()
	level := func(id string, ann map[string]string) string {
		t.Helper()
		req := lsmRequest(t, lsm.Host{SELinux: true}, nil)
		req.ID, req.Config.SELinux.StateDir = id, dir
		s := ctrSpec()
		s.Annotations = ann
		if _, err := createIn(req, s); err != nil {
			t.Fatal(err)
		}
		return lsm.SELinuxLevel(s.Process.SelinuxLabel)
	}
	pod := func(sandbox, typ string) map[string]string {
		return map[string]string{lsm.AnnotationSandboxID: sandbox, lsm.AnnotationContainerType: typ}
	}
	sb1 := level("sb1", pod("sb1", "sandbox"))
	app1 := level("app1", pod("sb1", "container"))
	sb2 := level("sb2", pod("sb2", "sandbox"))
	app2 := level("app2", pod("sb2", "container"))
	if sb1 != app1 || sb2 != app2 || sb1 == sb2 {
		t.Fatalf("pod 1: %s %s, pod 2: %s %s; want shared within a pod, distinct between pods", sb1, app1, sb2, app2)
	}
}

// createIn hardens s in place as the shim does at create, and leaves the
// container's decisions in req.Created for its exec processes.
func createIn(req *Request, s *specs.Spec) ([]audit.Change, error) {
	plan, changes, err := Harden(req, s)
	if err != nil {
		return changes, err
	}
	*s = *plan.Spec
	req.Created = plan.ForExec()
	return changes, nil
}

// execIn hardens an exec process in place under the container's decisions.
func execIn(req *Request, p *specs.Process) ([]audit.Change, error) {
	out, changes, err := Process(req, p)
	if err != nil {
		return changes, err
	}
	*p = *out
	return changes, nil
}
