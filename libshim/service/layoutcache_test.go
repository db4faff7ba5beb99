package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"palisade.dev/palisade/testing/require"
)

// layoutAt is what a fake containerd whose layout is below base answers,
// asked at address.
func layoutAt(base, address string) learned {
	return learned{
		Address:      address,
		Root:         base + "/root",
		Snapshotters: []string{base + "/root/io.containerd.snapshotter.v1.overlayfs"},
		Dirs:         []string{base + "/root/io.containerd.snapshotter.v1.overlayfs", base + "/root/io.containerd.content.v1.content", base + "/cri-root"},
	}
}

// mustLayout runs cachedLayout and checks its answer.
func mustLayout(t *testing.T, dir, sock string, want learned) {
	t.Helper()
	got, err := cachedLayout(context.Background(), dir, sock, sock+".ttrpc")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("layout %+v, want %+v", got, want)
	}
}

func entryPath(dir, address string) string { return filepath.Join(dir, layoutCacheName(address)) }

// A start process asks containerd once per containerd instance: the first
// start records its answer (a 0600 file in a 0700 directory it creates),
// later starts at the same unchanged socket take it from there.
func TestLayoutCacheHitForTheSameSocket(t *testing.T) {
	sock, fake := serveFake(t)
	close(fake.release)
	dir := filepath.Join(t.TempDir(), "palisade", "layout")
	mustLayout(t, dir, sock, layoutAt("/srv/ctd", sock))
	if n := fake.calls.Load(); n != 1 {
		t.Fatalf("containerd asked %d times on a cold cache, want 1", n)
	}
	for path, mode := range map[string]os.FileMode{dir: os.ModeDir | 0o700, entryPath(dir, sock): 0o600} {
		st, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != mode {
			t.Errorf("%s has mode %v, want %v", path, st.Mode(), mode)
		}
	}
	for range 3 {
		mustLayout(t, dir, sock, layoutAt("/srv/ctd", sock))
	}
	if n := fake.calls.Load(); n != 1 {
		t.Errorf("containerd asked %d times, want once: the cache was not used", n)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 1 {
		t.Errorf("the cache holds %d files, want 1 (no temporary files left)", len(left))
	}
}

// A containerd restarted at the same address (its socket unlinked and made
// anew) is asked again: the previous instance's entry is never served,
// and the new answer replaces it.
func TestLayoutCacheMissAfterContainerdRestart(t *testing.T) {
	sock, first := serveFake(t)
	close(first.release)
	dir := filepath.Join(t.TempDir(), "layout")
	mustLayout(t, dir, sock, layoutAt("/srv/ctd", sock))
	before, err := identify(sock, sock+".ttrpc")
	if err != nil {
		t.Fatal(err)
	}
	first.srv.Stop() // closes the listener, which unlinks the socket
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket outlived its listener: %v", err)
	}
	// a containerd start takes far longer than a tick of a coarse file
	// clock; make sure of it here, so the new socket's change time differs
	// even on a kernel without fine-grained timestamps
	time.Sleep(20 * time.Millisecond)
	second := serveFakeAt(t, sock, "/srv/restarted")
	close(second.release)
	after, err := identify(sock, sock+".ttrpc")
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Fatalf("the recreated socket has the identity of the old one: %+v", after)
	}
	if got, err := readLayoutCache(dir, after); err == nil {
		t.Fatalf("the old instance's entry is served for the new one: %+v", got)
	}
	mustLayout(t, dir, sock, layoutAt("/srv/restarted", sock))
	mustLayout(t, dir, sock, layoutAt("/srv/restarted", sock))
	if n := second.calls.Load(); n != 1 {
		t.Errorf("the restarted containerd was asked %d times, want 1", n)
	}
}

// Another address is another containerd: it is asked, and an entry that
// names another address is not served for it even under its file name.
func TestLayoutCacheMissForAnotherAddress(t *testing.T) {
	sockA, a := serveFake(t)
	close(a.release)
	sockB := filepath.Join(t.TempDir(), "containerd.sock")
	b := serveFakeAt(t, sockB, "/srv/other")
	close(b.release)
	dir := filepath.Join(t.TempDir(), "layout")
	mustLayout(t, dir, sockA, layoutAt("/srv/ctd", sockA))
	data, err := os.ReadFile(entryPath(dir, sockA))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(entryPath(dir, sockB), data, 0o600); err != nil {
		t.Fatal(err)
	}
	mustLayout(t, dir, sockB, layoutAt("/srv/other", sockB))
	mustLayout(t, dir, sockA, layoutAt("/srv/ctd", sockA))
	mustLayout(t, dir, sockB, layoutAt("/srv/other", sockB))
	if na, nb := a.calls.Load(), b.calls.Load(); na != 1 || nb != 1 {
		t.Errorf("containerds asked %d and %d times, want once each", na, nb)
	}
}

// A cache entry is used only when it is exactly what a start process
// writes: a regular file of root's alone, not too large, in a directory of
// root's alone reached without symlinks, that decodes and names the
// instance. Each case plants an entry for the right instance whose layout is
// forged, spoils one thing, and checks that containerd is asked instead,
// that nothing behind a symlink is followed or overwritten, and that the
// start still gets containerd's layout.
func TestLayoutCacheIgnoresWhatIsNotPrivate(t *testing.T) {
	if os.Geteuid() != 0 {
		require.Skipf(t, "needs root: the cases chown files to another user")
	}
	sock, fake := serveFake(t)
	close(fake.release)
	id, err := identify(sock, sock+".ttrpc")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := json.Marshal(layoutEntry{Version: layoutCacheVersion, Instance: id, Layout: layoutAt("/forged", sock)})
	if err != nil {
		t.Fatal(err)
	}
	name := layoutCacheName(sock)
	for _, c := range []struct {
		name string
		// spoil prepares the cache below parent: dir is the cache directory;
		// it returns a file that must keep its content (or "")
		spoil func(t *testing.T, parent, dir string) string
	}{
		{"control: a good entry is served", nil},
		{"corrupt JSON", func(t *testing.T, _, dir string) string {
			writeEntry(t, dir, name, append(forged[:len(forged)-1:len(forged)-1], ','), 0o600)
			return ""
		}},
		{"another format version", func(t *testing.T, _, dir string) string {
			e := layoutEntry{Version: layoutCacheVersion + 1, Instance: id, Layout: layoutAt("/forged", sock)}
			data, _ := json.Marshal(e)
			writeEntry(t, dir, name, data, 0o600)
			return ""
		}},
		{"oversized", func(t *testing.T, _, dir string) string {
			writeEntry(t, dir, name, append(forged, bytes.Repeat([]byte(" "), maxLayoutCacheEntry)...), 0o600)
			return ""
		}},
		{"file owned by another user", func(t *testing.T, _, dir string) string {
			writeEntry(t, dir, name, forged, 0o600)
			chown(t, filepath.Join(dir, name))
			return ""
		}},
		{"group-writable file", func(t *testing.T, _, dir string) string {
			writeEntry(t, dir, name, forged, 0o620)
			return ""
		}},
		{"world-readable file", func(t *testing.T, _, dir string) string {
			writeEntry(t, dir, name, forged, 0o604)
			return ""
		}},
		{"file is a symlink", func(t *testing.T, parent, dir string) string {
			target := filepath.Join(parent, "target.json")
			writeEntry(t, parent, "target.json", forged, 0o600)
			mkdirPrivate(t, dir)
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
			return target
		}},
		{"file is a FIFO", func(t *testing.T, _, dir string) string {
			mkdirPrivate(t, dir)
			if err := unix.Mkfifo(filepath.Join(dir, name), 0o600); err != nil {
				t.Fatal(err)
			}
			return ""
		}},
		{"directory owned by another user", func(t *testing.T, _, dir string) string {
			writeEntry(t, dir, name, forged, 0o600)
			chown(t, dir)
			return filepath.Join(dir, name)
		}},
		{"group-writable directory", func(t *testing.T, _, dir string) string {
			writeEntry(t, dir, name, forged, 0o600)
			if err := os.Chmod(dir, 0o770); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, name)
		}},
		{"directory is a symlink", func(t *testing.T, parent, dir string) string {
			real := filepath.Join(parent, "real")
			writeEntry(t, real, name, forged, 0o600)
			if err := os.Symlink(real, dir); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(real, name)
		}},
		{"parent writable by others", func(t *testing.T, parent, dir string) string {
			writeEntry(t, dir, name, forged, 0o600)
			if err := os.Chmod(parent, 0o777); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, name)
		}},
		{"a symlink above the directory", func(t *testing.T, parent, dir string) string {
			real := filepath.Join(t.TempDir(), "real")
			writeEntry(t, filepath.Join(real, "layout"), name, forged, 0o600)
			if err := os.Remove(parent); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, parent); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(real, "layout", name)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent := filepath.Join(t.TempDir(), "palisade")
			if err := os.Mkdir(parent, 0o700); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(parent, "layout")
			keep := ""
			if c.spoil == nil {
				writeEntry(t, dir, name, forged, 0o600)
			} else {
				keep = c.spoil(t, parent, dir)
			}
			var kept []byte
			if keep != "" {
				kept, _ = os.ReadFile(keep)
			}
			asked := fake.calls.Load()
			got, err := cachedLayout(context.Background(), dir, sock, sock+".ttrpc")
			if err != nil {
				t.Fatal(err)
			}
			if c.spoil == nil {
				if !reflect.DeepEqual(got, layoutAt("/forged", sock)) || fake.calls.Load() != asked {
					t.Fatalf("a good entry was not served: %+v", got)
				}
				return
			}
			if !reflect.DeepEqual(got, layoutAt("/srv/ctd", sock)) {
				t.Errorf("the start got %+v, want containerd's layout", got)
			}
			if fake.calls.Load() != asked+1 {
				t.Error("containerd was not asked")
			}
			if keep != "" {
				if now, _ := os.ReadFile(keep); !bytes.Equal(now, kept) {
					t.Errorf("%s was written through", keep)
				}
			}
		})
	}
}

// writeEntry writes a file into dir (made private if missing) with mode.
func writeEntry(t *testing.T, dir, name string, data []byte, mode os.FileMode) {
	t.Helper()
	mkdirPrivate(t, dir)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func mkdirPrivate(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

// chown gives path to a user who is not root.
func chown(t *testing.T, path string) {
	t.Helper()
	if err := os.Lchown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
}

// A containerd that cannot answer leaves nothing in the cache, and the
// start process's error is askContainerd's.
func TestLayoutCacheFailedAskWritesNothing(t *testing.T) {
	sock, fake := serveFake(t)
	fake.fail = errors.New("introspection is down")
	close(fake.release)
	dir := filepath.Join(t.TempDir(), "layout")
	if got, err := cachedLayout(context.Background(), dir, sock, ""); err == nil {
		t.Fatalf("a failed ask gave %+v", got)
	}
	if _, err := os.Lstat(entryPath(dir, sock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed ask left an entry: %v", err)
	}
	// with nothing listening at all (no socket) the same
	missing := filepath.Join(t.TempDir(), "gone.sock")
	if _, err := cachedLayout(context.Background(), dir, missing, ""); err == nil {
		t.Fatal("no containerd, yet a layout")
	}
	if _, err := os.Lstat(entryPath(dir, missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed ask left an entry: %v", err)
	}
}

// An answer from a containerd whose socket was recreated while it was
// asked is handed on (it is containerd's) but not recorded: it may belong
// to either instance.
func TestLayoutCacheNotWrittenWhenTheSocketChangesDuringTheAsk(t *testing.T) {
	sock, fake := serveFake(t)
	fake.during = func() {
		time.Sleep(20 * time.Millisecond) // past a coarse clock's tick, as in the restart test
		if err := os.Remove(sock); err != nil {
			t.Error(err)
		}
		lis, err := net.Listen("unix", sock)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { _ = lis.Close() })
	}
	close(fake.release)
	dir := filepath.Join(t.TempDir(), "layout")
	mustLayout(t, dir, sock, layoutAt("/srv/ctd", sock))
	if _, err := os.Lstat(entryPath(dir, sock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an answer straddling a socket change was recorded: %v", err)
	}
}

// The start process hands a cached layout over the pipe without asking
// containerd.
func TestHandoffFromCache(t *testing.T) {
	sock, fake := serveFake(t)
	dir := filepath.Join(t.TempDir(), "layout")
	id, err := identify(sock, "ttrpc")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeLayoutCache(dir, id, layoutAt("/srv/cached", sock)); err != nil {
		t.Fatal(err)
	}
	h := startHandoff(context.Background(), "unix://"+sock, "ttrpc", dir)
	if h == nil {
		t.Fatal("no handoff")
	}
	t.Cleanup(func() { close(fake.release) })
	<-h.done // containerd never answers: only the cache can
	h.finish()
	var got learned
	if err := json.Unmarshal(h.data, &got); err != nil || !reflect.DeepEqual(got, layoutAt("/srv/cached", sock)) {
		t.Errorf("handed %s (%v), want the cached layout", h.data, err)
	}
	if n := fake.calls.Load(); n != 0 {
		t.Errorf("containerd asked %d times despite the cache", n)
	}
}

// A containerd that was killed leaves its socket behind, and the next one
// starts shims (its restart monitor, at plugin init) before it creates its
// own socket at the address: the old socket, and the old instance's
// entry, would still match. The entry also names the containerd process
// that started the start process, so one written under another containerd
// process is a miss even when the socket is unchanged.
func TestLayoutCacheMissUnderAnotherContainerdProcess(t *testing.T) {
	sock, fake := serveFake(t)
	close(fake.release)
	dir := filepath.Join(t.TempDir(), "layout")
	id, err := identify(sock, sock+".ttrpc")
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(layoutEntry{Version: layoutCacheVersion, Instance: id, Layout: layoutAt("/srv/old-root", sock)})
	if err != nil {
		t.Fatal(err)
	}
	var entry map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // the times in ns do not fit a float64
	if err := dec.Decode(&entry); err != nil {
		t.Fatal(err)
	}
	// as the killed containerd's start process wrote it: another process
	entry["instance"].(map[string]any)["containerd"] = map[string]any{"pid": os.Getppid() + 1, "start_ticks": 1}
	if data, err = json.Marshal(entry); err != nil {
		t.Fatal(err)
	}
	writeEntry(t, dir, layoutCacheName(sock), data, 0o600)
	mustLayout(t, dir, sock, layoutAt("/srv/ctd", sock))
	if n := fake.calls.Load(); n != 1 {
		t.Errorf("containerd asked %d times, want once: another containerd's entry was served", n)
	}
}
