package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/lsm"
	"palisade.dev/palisade/testing/harness"
)

// skipVisibly skips a test that needs what this host lacks, and also writes
// the reason to $PALISADE_SKIPS, which make test prints at the end: a
// skipped protection must never look like a passed one.
func skipVisibly(t *testing.T, reason string) {
	t.Helper()
	if path := os.Getenv("PALISADE_SKIPS"); path != "" {
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%s: %s\n", t.Name(), reason)
			_ = f.Close()
		}
	}
	t.Skip(reason)
}

// lsmRun runs a container under an admin config with the given LSM section.
func lsmRun(t *testing.T, e *harness.Env, id, lsmConfig string, cmd ...string) harness.Result {
	t.Helper()
	cfg := adminConfig(t, e, lsmConfig)
	args := append([]string{"run", "--rm", "--runtime", harness.Runtime, "--runtime-config-path", cfg, e.Image(), id}, cmd...)
	return e.Ctr(args...)
}

// With mode require, a host without the LSM refuses the container with a
// message naming the LSM, the setting and the fix, and nothing is left.
func TestLSMRequireRefusesWithoutTheLSM(t *testing.T) {
	e := needEnv(t)
	host := lsm.Detect()
	for _, c := range []struct {
		name, section, want string
		present             bool
	}{
		{"selinux", "[selinux]\nmode = \"require\"\nstate_dir = \"" + t.TempDir() + "\"\n", `SELinux is required (selinux.mode = "require") but this host does not enforce it [rule lsm-labels, profile restricted]`, host.SELinux},
		{"apparmor", "[apparmor]\nmode = \"require\"\n", `AppArmor is required (apparmor.mode = "require") but this host does not enforce it [rule apparmor, profile restricted]`, host.AppArmor},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.present {
				skipVisibly(t, c.name+" is enforced on this host: require mode does not refuse here")
			}
			id := containerID(t, c.name)
			r := lsmRun(t, e, id, c.section, "/bin/true")
			if r.Err == nil {
				t.Fatalf("the container ran although %s is required and absent: %v", c.name, r)
			}
			fix := "run the container on a node with"
			if !strings.Contains(r.Stderr, c.want) || !strings.Contains(r.Stderr, fix) || !strings.Contains(r.Stderr, `.mode = "if-available" in `) {
				t.Errorf("refusal does not say what and how to fix it:\n%s\nwant %q and %q", r.Stderr, c.want, fix)
			}
			if strings.Contains(e.Ctr("containers", "list", "-q").Stdout, id) {
				t.Errorf("container %s exists after the refusal", id)
			}
			assertClean(t, e, id)
			rec := findRecord(auditRecords(t, e, id), audit.EventCreate)
			if rec == nil || rec.Result != audit.ResultRefused || !strings.Contains(rec.Reason, c.want) {
				t.Errorf("audit record %+v, want refused with %q", rec, c.want)
			}
		})
	}
}

// With mode if-available (the default) on a host without the LSMs, the
// container runs, and its audit record says which LSM was absent.
func TestLSMIfAvailableRecordsAbsence(t *testing.T) {
	e := needEnv(t)
	host := lsm.Detect()
	if host.SELinux && host.AppArmor {
		skipVisibly(t, "this host enforces SELinux and AppArmor: nothing is absent")
	}
	id := containerID(t, "ifav")
	r := lsmRun(t, e, id, "", "/usr/bin/probe", "report")
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	assertClean(t, e, id)
	rec := findRecord(auditRecords(t, e, id), audit.EventCreate)
	if rec == nil || rec.Result != audit.ResultAllowed {
		t.Fatalf("create record %+v", rec)
	}
	want := map[string]string{}
	if !host.SELinux {
		want["lsm-labels"] = `SELinux is not enabled on this host: the container runs without it (selinux.mode = "if-available")`
	}
	if !host.AppArmor {
		want["apparmor"] = `AppArmor is not enabled on this host: the container runs without it (apparmor.mode = "if-available")`
	}
	for rule, note := range want {
		found := false
		for _, ch := range rec.Changes {
			found = found || ch.Rule == rule && ch.Note && fmt.Sprint(ch.After) == note
		}
		if !found {
			t.Errorf("the audit record does not say %q (rule %s): %+v", note, rule, rec.Changes)
		}
	}
}

// On a host that enforces the LSM, the container runs under palisade's
// label, and the LSM denies what the label forbids.
func TestLSMEnforced(t *testing.T) {
	e := needEnv(t)
	host := lsm.Detect()
	t.Run("selinux", func(t *testing.T) {
		if !host.SELinux {
			skipVisibly(t, "SELinux is not enabled on this kernel (no /sys/fs/selinux): label applied and denial enforced are not tested here")
		}
		label := currentLabel(t, e, "se", "[selinux]\nmode = \"require\"\n")
		if lsm.SELinuxType(label) != "container_t" || !strings.Contains(lsm.SELinuxLevel(label), ":c") {
			t.Errorf("the container runs as %q, want container_t with an MCS pair", label)
		}
		// The container may not move itself to an unconfined type.
		id := containerID(t, "se-setcon")
		r := lsmRun(t, e, id, "[selinux]\nmode = \"require\"\n", "/bin/sh", "-c", "echo system_u:system_r:spc_t:s0 > /proc/self/attr/current")
		if r.Err == nil {
			t.Errorf("the container switched itself to spc_t: %v", r)
		}
	})
	t.Run("apparmor", func(t *testing.T) {
		if !host.AppArmor {
			skipVisibly(t, "AppArmor is not enabled on this kernel: profile applied and denial enforced are not tested here (the profiles are parsed by apparmor_parser in libshim/lsm)")
		}
		if got := currentLabel(t, e, "aa", "[apparmor]\nmode = \"require\"\n"); !strings.HasPrefix(got, "palisade-restricted-") || !strings.HasSuffix(got, "(enforce)") {
			t.Errorf("the container runs under %q, want palisade-restricted-HASH (enforce)", got)
		}
		// A raw socket: without AppArmor the missing capability refuses it
		// with EPERM; palisade's profile denies it first, with EACCES.
		id := containerID(t, "aa-raw")
		r := lsmRun(t, e, id, "[apparmor]\nmode = \"require\"\n", "/usr/bin/probe", "try", "rawsocket")
		if out := parseOutcomes(t, r); len(out) != 1 || out[0].OK || out[0].Errno != "EACCES" {
			t.Errorf("raw socket under the AppArmor profile: %+v, want EACCES", out)
		}
	})
}

// currentLabel runs a container and returns the LSM label its process sees
// as its own.
func currentLabel(t *testing.T, e *harness.Env, suffix, lsmConfig string) string {
	t.Helper()
	r := lsmRun(t, e, containerID(t, suffix), lsmConfig, "/bin/cat", "/proc/self/attr/current")
	if r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	return strings.TrimRight(strings.TrimSpace(r.Stdout), "\x00")
}

// The MCS store is rebuilt from runc's state of running containers: the
// state a real runc writes names the container, its namespace and its
// bundle the way the rebuild reads them.
func TestMCSRebuildReadsRealRuncState(t *testing.T) {
	e := needEnv(t)
	id := containerID(t, "state")
	startDetached(t, e, id)
	defer removeContainer(t, e, id)
	file := filepath.Join(e.RuncRoot, e.Namespace, id, "state.json")
	h, level, err := lsm.RuncHolder(e.RuncRoot, file)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(e.Dir, "state", "io.containerd.runtime.v2.task", e.Namespace, id)
	if h.ID != id || h.Namespace != e.Namespace || h.Bundle != bundle || h.Group != id {
		t.Errorf("from runc's state: %+v, want id %s in %s with bundle %s", h, id, e.Namespace, bundle)
	}
	if host := lsm.Detect(); !host.SELinux && level != "" {
		t.Errorf("level %q without SELinux", level)
	}
}
