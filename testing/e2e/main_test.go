// Package e2e holds palisade's end-to-end tests: real containers started
// through a real containerd and runc under the palisade shim, probed from the
// inside. They need root; `make test` sets PALISADE_E2E_REQUIRED=1 so that a
// missing prerequisite fails the run instead of skipping it.
package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/testing/harness"
)

var (
	env        *harness.Env
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	return harness.Suite("e2e", harness.Options{}, func(e *harness.Env, reason string) int {
		env, skipReason = e, reason
		return m.Run()
	})
}

// needEnv returns the environment or skips the test, printing why.
func needEnv(t *testing.T) *harness.Env {
	t.Helper()
	if env == nil {
		t.Skip("end-to-end environment unavailable: " + skipReason)
	}
	return env
}

// containerID is unique per test so tests never see each other's leftovers.
func containerID(t *testing.T, suffix string) string { return harness.UniqueName(t, suffix, 40) }

// report is the probe's `report` output.
type report struct {
	UID        int                 `json:"uid"`
	GID        int                 `json:"gid"`
	Groups     []int               `json:"groups"`
	NoNewPrivs int                 `json:"no_new_privs"`
	Seccomp    string              `json:"seccomp"`
	Caps       map[string][]string `json:"caps"`
}

func parseReport(t *testing.T, r harness.Result) report {
	t.Helper()
	var rep report
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &rep); err != nil {
		t.Fatalf("probe report is not JSON: %v\n%s", err, r)
	}
	return rep
}

// auditRecords returns the audit file's records about container id.
func auditRecords(t *testing.T, e *harness.Env, id string) []audit.Record {
	t.Helper()
	recs, err := e.AuditRecords(func(r audit.Record) bool { return r.Container == id })
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func findRecord(recs []audit.Record, ev audit.Event) *audit.Record {
	return harness.FindRecord(recs, ev)
}

// waitStopped polls until the task of id is STOPPED.
func waitStopped(t *testing.T, e *harness.Env, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r := e.Ctr("tasks", "list")
		for _, line := range strings.Split(r.Stdout, "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == id && f[2] == "STOPPED" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("task %s did not stop", id)
}

// taskStatus returns the status column of `ctr tasks list` for id.
func taskStatus(e *harness.Env, id string) string {
	for _, line := range strings.Split(e.Ctr("tasks", "list").Stdout, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

// removeContainer kills, deletes and removes id, and checks nothing is left.
func removeContainer(t *testing.T, e *harness.Env, id string) {
	t.Helper()
	if r := e.Ctr("tasks", "kill", "-s", "SIGKILL", id); r.Err != nil {
		t.Fatalf("kill: %v", r)
	}
	waitStopped(t, e, id)
	if r := e.Ctr("tasks", "delete", id); r.Err != nil {
		t.Fatalf("task delete: %v", r)
	}
	if r := e.Ctr("containers", "delete", id); r.Err != nil {
		t.Fatalf("container delete: %v", r)
	}
	assertClean(t, e, id)
}

// assertClean fails when anything of id remains: no mount, bundle, runc
// state, cgroup or shim process.
func assertClean(t *testing.T, e *harness.Env, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var left []string
	for time.Now().Before(deadline) {
		if left = e.Leftovers(id); len(left) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond) // a shim exits shortly after its last delete
	}
	t.Fatalf("container %s left behind: %s", id, strings.Join(left, "; "))
}

// startDetached starts a long-running container (probe sleep) under palisade
// with extra ctr flags.
func startDetached(t *testing.T, e *harness.Env, id string, extra ...string) {
	t.Helper()
	args := append(append([]string{"run", "-d"}, extra...), e.RunArgs()...)
	if r := e.Ctr(append(args, e.Image(), id, "/usr/bin/probe", "sleep", "300")...); r.Err != nil {
		t.Fatalf("run -d: %v", r)
	}
}

// outcome is the probe's `try` output.
type outcome struct {
	Action string `json:"action"`
	OK     bool   `json:"ok"`
	Errno  string `json:"errno"`
	Detail string `json:"detail"`
}

// parseOutcomes reads one `probe try` result per line.
func parseOutcomes(t *testing.T, r harness.Result) []outcome {
	t.Helper()
	var out []outcome
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		var o outcome
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatalf("probe output line is not JSON: %q\n%s", line, r)
		}
		out = append(out, o)
	}
	return out
}

// adminConfig writes an admin config for one test (see harness.Env.WriteAdminConfig).
func adminConfig(t *testing.T, e *harness.Env, extra string) string {
	t.Helper()
	name := strings.NewReplacer("/", "-").Replace(t.Name()) + ".toml"
	path, err := e.WriteAdminConfig(name, extra)
	if err != nil {
		t.Fatal(err)
	}
	return path
}
