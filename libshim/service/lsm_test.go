package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"palisade.dev/palisade/libshim/bundle"
	"palisade.dev/palisade/libshim/lsm"
)

// runcFails is a runc task service whose create fails.
type runcFails struct{ recorder }

func (r *runcFails) Create(context.Context, *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	return nil, errors.New("runc create failed")
}

func (r *recorder) Delete(context.Context, *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	return &taskAPI.DeleteResponse{}, nil
}

// On an SELinux node (simulated) the shim reserves the container's MCS pair
// at create, writes its label into the bundle, and releases the pair on
// delete and when runc fails to create the container.
func TestSELinuxPairReservedAndReleased(t *testing.T) {
	for _, fail := range []bool{false, true} {
		dir := t.TempDir()
		mcsDir := filepath.Join(dir, "mcs")
		ctx, bundleDir, cfgPath, _ := setup(t, "[runc]\nroot = \"/run/palisade-test\"\n[audit]\nfile = \"\"\n[selinux]\nstate_dir = \""+mcsDir+"\"\n")
		var inner taskAPI.TTRPCTaskService = &recorder{}
		if fail {
			inner = &runcFails{}
		}
		s := New(inner)
		env := &lsm.Env{Host: lsm.Host{SELinux: true}, Reserve: true}
		s.lsm = func() *lsm.Env { return env }
		snapshots := filepath.Join(dir, "io.containerd.snapshotter.v1.overlayfs")
		s.node = layout{known: true, snapshotters: []string{snapshots}}
		store := &lsm.MCS{Dir: mcsDir}
		if err := os.MkdirAll(snapshots+"/snapshots/1/fs", 0o700); err != nil {
			t.Fatal(err)
		}
		lower := "lowerdir=" + snapshots + "/snapshots/1/fs"
		rootfs := []*types.Mount{{Type: "overlay", Source: "overlay", Options: []string{lower, `context="system_u:object_r:container_file_t:s0:c1,c2"`}}}
		_, err := s.Create(ctx, &taskAPI.CreateTaskRequest{ID: "c1", Bundle: bundleDir, Options: options(t, cfgPath), Rootfs: rootfs})
		levels, _ := store.Levels()
		if fail {
			if err == nil || len(levels) != 0 {
				t.Fatalf("failed create: err %v, reservations %v, want none", err, levels)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		spec, err := bundle.ReadSpec(bundleDir)
		if err != nil {
			t.Fatal(err)
		}
		if l := levels["ns1/c1"]; l == "" || !strings.HasSuffix(spec.Process.SelinuxLabel, ":"+l) {
			t.Fatalf("bundle label %q, reservations %v", spec.Process.SelinuxLabel, levels)
		}
		if want := []string{lower, fmt.Sprintf("context=%q", spec.Linux.MountLabel)}; !slices.Equal(rootfs[0].Options, want) {
			t.Errorf("rootfs mount options %q, want %q", rootfs[0].Options, want)
		}
		// An exec process runs under the container's label.
		proc, _ := json.Marshal(&specs.Process{Args: []string{"/bin/sh"}})
		if _, err := s.Exec(ctx, &taskAPI.ExecProcessRequest{ID: "c1", ExecID: "e1", Spec: &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process", Value: proc}}); err != nil {
			t.Fatal(err)
		}
		var got specs.Process
		if err := json.Unmarshal(inner.(*recorder).execed.Spec.GetValue(), &got); err != nil || got.SelinuxLabel != spec.Process.SelinuxLabel {
			t.Errorf("exec process label %q (%v), want the container's %q", got.SelinuxLabel, err, spec.Process.SelinuxLabel)
		}
		if _, err := s.Delete(ctx, &taskAPI.DeleteRequest{ID: "c1"}); err != nil {
			t.Fatal(err)
		}
		if levels, _ := store.Levels(); len(levels) != 0 {
			t.Fatalf("after delete the store holds %v", levels)
		}
		if _, err := os.Stat(filepath.Join(mcsDir, "mcs.json")); err != nil {
			t.Fatal(err)
		}
	}
}
