package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"

	introspection "github.com/containerd/containerd/api/services/introspection/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"palisade.dev/palisade/libshim/arch"
)

// fakeContainerd answers introspection's Plugins like containerd, once
// release is closed: with its root below /srv/ctd (or below root when
// set), or with fail.
type fakeContainerd struct {
	introspection.UnimplementedIntrospectionServer
	release chan struct{}
	asked   chan struct{}
	calls   atomic.Int32
	root    string
	fail    error
	during  func() // runs while a call is answered
	srv     *grpc.Server
}

func (f *fakeContainerd) Plugins(context.Context, *introspection.PluginsRequest) (*introspection.PluginsResponse, error) {
	f.calls.Add(1)
	select {
	case f.asked <- struct{}{}:
	default:
	}
	<-f.release
	if f.during != nil {
		f.during()
	}
	if f.fail != nil {
		return nil, f.fail
	}
	base := "/srv/ctd"
	if f.root != "" {
		base = f.root
	}
	return &introspection.PluginsResponse{Plugins: []*introspection.Plugin{
		{Type: "io.containerd.snapshotter.v1", ID: "overlayfs", Exports: map[string]string{"root": base + "/root/io.containerd.snapshotter.v1.overlayfs"}},
		{Type: "io.containerd.content.v1", ID: "content", Exports: map[string]string{"root": base + "/root/io.containerd.content.v1.content"}},
		{Type: "io.containerd.grpc.v1", ID: "cri", Exports: map[string]string{"root": base + "/cri-root/"}},
	}}, nil
}

func serveFake(t *testing.T) (string, *fakeContainerd) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	return sock, serveFakeAt(t, sock, "")
}

// serveFakeAt serves a fake containerd on a new socket at sock, whose
// layout is below root ("" = /srv/ctd).
func serveFakeAt(t *testing.T, sock, root string) *fakeContainerd {
	t.Helper()
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeContainerd{release: make(chan struct{}), asked: make(chan struct{}, 1), root: root, srv: grpc.NewServer()}
	introspection.RegisterIntrospectionServer(fake.srv, fake)
	go func() { _ = fake.srv.Serve(lis) }()
	t.Cleanup(fake.srv.Stop)
	return fake
}

var wantLayout = learned{
	Root:         "/srv/ctd/root",
	Snapshotters: []string{"/srv/ctd/root/io.containerd.snapshotter.v1.overlayfs"},
	Dirs:         []string{"/srv/ctd/root/io.containerd.snapshotter.v1.overlayfs", "/srv/ctd/root/io.containerd.content.v1.content", "/srv/ctd/cri-root"},
}

// handoffChildEnv makes the test binary play the spawned shim.
const handoffChildEnv = "PALISADE_TEST_HANDOFF_CHILD"

// TestHandoffChild is the spawned shim of TestHandoffToSpawnedShim: it
// takes the pipe it inherited and prints what it received.
func TestHandoffChild(t *testing.T) {
	address := os.Getenv(handoffChildEnv)
	if address == "" {
		t.Skip("run by TestHandoffToSpawnedShim as the spawned shim")
	}
	s := New(nil, address)
	if _, inherited := os.LookupEnv(layoutFDEnv); inherited {
		t.Error("the pipe's name stays in the shim's environment")
	}
	got, ok := receiveLayout(s.node.handoff, address)
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"ok": ok, "layout": got}); err != nil {
		t.Fatal(err)
	}
}

// A shim spawned by the start process receives containerd's layout as the
// start process learned it, without asking containerd itself; the start
// process waits for its answer only when a shim holds the pipe.
func TestHandoffToSpawnedShim(t *testing.T) {
	address, fake := serveFake(t)
	h := startHandoff(context.Background(), "unix://"+address, "", "")
	if h == nil {
		t.Fatal("no handoff")
	}
	if v := os.Getenv(layoutFDEnv); v == "" {
		t.Fatal("the pipe is not named for the spawned shim")
	}
	child := exec.Command(os.Args[0], "-test.run", "^TestHandoffChild$", "-test.v")
	child.Env = append(os.Environ(), handoffChildEnv+"="+address) // as the stock start does: its own environment
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	child.Stdout = out
	if err := child.Start(); errors.Is(err, unix.ENOEXEC) {
		// under qemu-user (make test-arm64) this binary is foreign to the
		// kernel: run the child through the emulator too
		emulated := exec.Command(arch.Native().QEMU, append([]string{os.Args[0]}, child.Args[1:]...)...)
		emulated.Env, emulated.Stdout, emulated.ExtraFiles = child.Env, child.Stdout, child.ExtraFiles
		child = emulated
		err = child.Start()
		if err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	close(fake.release)
	h.finish()
	if err := child.Wait(); err != nil {
		data, _ := os.ReadFile(out.Name())
		t.Fatalf("spawned shim: %v\n%s", err, data)
	}
	if _, set := os.LookupEnv(layoutFDEnv); set {
		t.Error("the start process keeps the pipe's name in its environment")
	}
	data, _ := os.ReadFile(out.Name())
	var got struct {
		OK     bool    `json:"ok"`
		Layout learned `json:"layout"`
	}
	start := bytes.IndexByte(data, '{')
	if start < 0 {
		t.Fatalf("the spawned shim printed no answer: %s", data)
	}
	if err := json.NewDecoder(bytes.NewReader(data[start:])).Decode(&got); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	want := wantLayout
	want.Address = address
	if !got.OK || !reflect.DeepEqual(got.Layout, want) {
		t.Errorf("the spawned shim received %+v (ok %v), want %+v", got.Layout, got.OK, want)
	}
}

// A start that spawns no shim (its group's shim runs already) does not
// wait for containerd's answer.
func TestHandoffWithoutShimWaitsForNothing(t *testing.T) {
	address, fake := serveFake(t)
	h := startHandoff(context.Background(), address, "", "")
	if h == nil {
		t.Fatal("no handoff")
	}
	<-fake.asked
	h.finish() // containerd has not answered: this returns only if it does not wait
	close(fake.release)
	<-h.done
}

// The shim's end refuses whatever is not a pipe from its start process:
// no descriptor, one below the reserved range, a file, an answer about
// another containerd, one that does not decode, or none at all.
func TestHandoffRefusesWhatIsNotOne(t *testing.T) {
	file, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	high, err := unix.FcntlInt(file.Fd(), unix.F_DUPFD_CLOEXEC, layoutFDMin)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(high)
	for _, v := range []string{"", "x", "3", strconv.Itoa(high), "100000"} {
		t.Setenv(layoutFDEnv, v)
		if f := takeHandoff(); f != nil {
			t.Errorf("%s=%q taken as a pipe", layoutFDEnv, v)
		}
		if _, set := os.LookupEnv(layoutFDEnv); set {
			t.Errorf("%s=%q left in the environment", layoutFDEnv, v)
		}
	}
	good, _ := json.Marshal(learned{Address: "/run/containerd/containerd.sock", Root: "/var/lib/containerd"})
	for name, c := range map[string]struct {
		data  []byte
		close bool
	}{
		"another containerd's": {data: good, close: true},
		"not JSON":             {data: []byte("{"), close: true},
		"empty":                {close: true},
		"never written":        {},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(c.data)
		if c.close {
			_ = w.Close()
		}
		if got, ok := receiveLayout(r, "/run/other/containerd.sock"); ok {
			t.Errorf("%s answer accepted: %+v", name, got)
		}
		_ = w.Close()
	}
	r, w, _ := os.Pipe()
	_, _ = w.Write(good)
	_ = w.Close()
	if got, ok := receiveLayout(r, "/run/containerd/containerd.sock"); !ok || got.Root != "/var/lib/containerd" {
		t.Errorf("a good answer was refused: %+v", got)
	}
}

// Without an answer from the start process the shim asks containerd
// itself.
func TestLearnAsksWithoutHandoff(t *testing.T) {
	address, fake := serveFake(t)
	close(fake.release)
	r, w, _ := os.Pipe()
	_ = w.Close() // the start process died before answering
	l := layout{handoff: r}
	root, snaps, dirs, err := l.learn(context.Background(), []string{address})
	if err != nil || root != wantLayout.Root || !reflect.DeepEqual(snaps, wantLayout.Snapshotters) || !reflect.DeepEqual(dirs, wantLayout.Dirs) {
		t.Errorf("learn = %q %v %v %v", root, snaps, dirs, err)
	}
}
