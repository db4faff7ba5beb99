package launch

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/harden"
	"palisade.dev/palisade/libshim/policy"
)

type fakeRuntime struct{ deleted bool }

func (f *fakeRuntime) Create(context.Context) (uint32, error) { return 4242, nil }
func (f *fakeRuntime) Delete(context.Context) error           { f.deleted = true; return nil }

// When memfd-noexec finds no container init at the PID (the init exited
// before its start), the refusal says so and how to go on, not that
// palisade-init may be the wrong program; the container is deleted. The
// helper's messages are palisade-init's (cmd/palisade-init's tests check
// it prints them).
func TestMemfdNoexecRefusalNamesTheFix(t *testing.T) {
	for _, c := range []struct{ out, fix string }{
		{"palisade-init: process 4242 is not the init of its pid namespace (it is pid 7 there), so not a container's init: vm.memfd_noexec is not set there", "the container's init exited before it started"},
		{"palisade-init: open the container's pid namespace: open /proc/4242/ns/pid: no such file or directory", "the container's init exited before it started"},
		{"palisade-init: write vm.memfd_noexec: open /proc/sys/vm/memfd_noexec: no such file or directory\npalisade-init: setting vm.memfd_noexec failed", "Linux 6.3 or later"},
		{"bash: palisade-init: cannot execute binary file", "is palisade's"},
	} {
		dir := t.TempDir()
		rt := &fakeRuntime{}
		plan := &harden.Plan{Spec: &specs.Spec{Version: specs.Version}, Decisions: harden.Decisions{ExecEnforced: true}}
		tgt := Target{Container: "ns/c1", Profile: "p", Bundle: dir, Helper: filepath.Join(dir, "palisade-init"),
			RunHelper: func(*exec.Cmd) ([]byte, error) { return []byte(c.out), errors.New("exit status 1") }}
		_, err := Launch(context.Background(), plan, tgt, rt)
		var r *policy.Refusal
		if !errors.As(err, &r) || r.Rule != "exec-allowlist" || !strings.Contains(r.Fix, c.fix) || !strings.Contains(err.Error(), "ns/c1") {
			t.Errorf("helper said %q: want a refusal with a fix about %q, got %v", c.out, c.fix, err)
		}
		if !rt.deleted {
			t.Errorf("helper said %q: the created container was not deleted", c.out)
		}
	}
}
