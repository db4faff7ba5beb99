package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"palisade.dev/palisade/testing/harness"
)

// layoutEntry is what the e2e tests read of a start process's cache entry
// (libshim/service/layoutcache.go).
type layoutEntry struct {
	Instance struct {
		Address string `json:"address"`
		Socket  struct {
			Dev   uint64 `json:"dev"`
			Ino   uint64 `json:"ino"`
			Ctime int64  `json:"ctime_ns"`
		} `json:"socket"`
	} `json:"instance"`
	Layout struct {
		Root string   `json:"root"`
		Dirs []string `json:"dirs"`
	} `json:"layout"`
}

// layoutCacheEntry returns the cache entry about the environment's
// containerd and the inode of its file.
func layoutCacheEntry(t *testing.T, e *harness.Env) (layoutEntry, uint64) {
	t.Helper()
	dir := e.Build().LayoutCacheDir
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("no layout cache after container starts: %v", err)
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var got layoutEntry
		if json.Unmarshal(data, &got) != nil || got.Instance.Address != e.Address {
			continue
		}
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, st.Mode())
		}
		return got, st.Sys().(*syscall.Stat_t).Ino
	}
	t.Fatalf("no layout cache entry in %s names %s", dir, e.Address)
	return layoutEntry{}, 0
}

// checkLayoutEntry checks that the entry names the socket now at the
// environment's address and holds its containerd's root.
func checkLayoutEntry(t *testing.T, e *harness.Env, got layoutEntry) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(e.Address, &st); err != nil {
		t.Fatal(err)
	}
	s := got.Instance.Socket
	if s.Dev != st.Dev || s.Ino != st.Ino || s.Ctime != st.Ctim.Nano() {
		t.Errorf("the cache entry names socket %+v, the socket at %s is dev %d ino %d ctime %d", s, e.Address, st.Dev, st.Ino, st.Ctim.Nano())
	}
	if root := filepath.Join(e.Dir, "root"); got.Layout.Root != root {
		t.Errorf("the cached containerd root is %q, want %q", got.Layout.Root, root)
	}
}

// refusesRootBind checks that a bind of containerd's root is refused: the
// layout a shim got (from the cache) protects it.
func refusesRootBind(t *testing.T, e *harness.Env) {
	t.Helper()
	root := filepath.Join(e.Dir, "root")
	id := containerID(t, "bindroot")
	r := e.Run(id, []string{"--mount", "type=bind,src=" + root + ",dst=/x,options=rbind:rw"}, "/bin/ls", "/x")
	if r.Err == nil || !strings.Contains(r.Stderr, "bind mount of "+root+" at /x is not allowed") || !strings.Contains(r.Stderr, "containerd's root directory") {
		t.Errorf("bind of containerd's root: %v\n%s", r.Err, r.Stderr)
	}
	assertClean(t, e, id)
}

// The start processes learn the real containerd's layout once and keep it:
// after container starts the cache holds this containerd's root for its
// current socket, later starts are served from it (the entry is not
// rewritten) and still refuse a bind of containerd's root; after a
// containerd restart the entry is replaced by one for the new socket.
func TestLayoutCacheOfTheRealContainerd(t *testing.T) {
	e := needEnv(t)
	if r := e.Run(containerID(t, "warm"), nil, "/bin/true"); r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	got, ino := layoutCacheEntry(t, e)
	checkLayoutEntry(t, e, got)
	refusesRootBind(t, e)
	if r := e.Run(containerID(t, "again"), nil, "/bin/true"); r.Err != nil {
		t.Fatalf("run: %v", r)
	}
	if _, now := layoutCacheEntry(t, e); now != ino {
		t.Error("the entry was rewritten by a start under the same containerd: the cache was not used")
	}

	if err := e.StopContainerd(); err != nil {
		t.Fatal(err)
	}
	if err := e.StartContainerd(); err != nil {
		t.Fatal(err)
	}
	if r := e.Run(containerID(t, "restarted"), nil, "/bin/true"); r.Err != nil {
		t.Fatalf("run after containerd's restart: %v", r)
	}
	after, now := layoutCacheEntry(t, e)
	if now == ino {
		t.Error("the entry was not replaced after containerd's restart")
	}
	checkLayoutEntry(t, e, after)
	refusesRootBind(t, e)
}
