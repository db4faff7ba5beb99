package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"palisade.dev/palisade/testing/harness"
)

// A client of containerd's API that sends runc's own options to palisade
// (what containerd does itself for user-namespace pods) cannot choose the
// runtime binary, its state root or a checkpoint path: the task is refused
// naming the options and the runtime, the client's binary never runs, and
// nothing is left behind. IoUid/IoGid alone are accepted.
func TestRuncOptionsCannotChooseBinary(t *testing.T) {
	e := needEnv(t)
	c, ctx := client(t, e)
	img, err := c.GetImage(ctx, e.Image())
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	fake := filepath.Join(t.TempDir(), "fake-runc")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\ntouch "+marker+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts *runcoptions.Options
		want string
	}{
		{"binary", &runcoptions.Options{BinaryName: fake, IoUid: 1000}, "runc runtime options BinaryName are not accepted by io.containerd.palisade.v2"},
		{"root", &runcoptions.Options{Root: t.TempDir()}, "runc runtime options Root are not accepted"},
		{"criu", &runcoptions.Options{CriuImagePath: t.TempDir(), NoPivotRoot: true}, "runc runtime options NoPivotRoot, CriuImagePath are not accepted"},
		{"io", &runcoptions.Options{IoUid: 1000, IoGid: 1000}, ""},
	} {
		id := containerID(t, tc.name)
		ctr, err := c.NewContainer(ctx, id, containerd.WithRuntime(harness.Runtime, tc.opts), containerd.WithNewSnapshot(id, img),
			containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("/bin/true")))
		if err != nil {
			t.Fatal(err)
		}
		task, err := ctr.NewTask(ctx, cio.NullIO)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "":
			_, _ = task.Delete(ctx, containerd.WithProcessKill)
		case err == nil:
			_, _ = task.Delete(ctx, containerd.WithProcessKill)
			t.Errorf("%s: a task with runc options %v was created", tc.name, tc.opts)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%s: the client's runc binary ran", tc.name)
		}
		_ = ctr.Delete(ctx, containerd.WithSnapshotCleanup)
		assertClean(t, e, id)
	}
}
