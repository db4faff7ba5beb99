package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"palisade.dev/palisade/libshim/safeopen"
)

// The start processes' cache of containerd's layout (see handoff.go for
// why it is safe): one file per containerd gRPC address, valid for one
// containerd instance as named by its socket, and for one shim binary.

// layoutCacheDir holds the cache. It is a variable only so that the
// end-to-end harness can build a shim that keeps its cache in its private
// build directory (-ldflags -X), as it does for config.dirsFile; nothing at
// run time changes it.
var layoutCacheDir = "/run/palisade/layout"

const (
	// layoutCacheVersion changes with the entry's format.
	layoutCacheVersion = 2
	// maxLayoutCacheEntry bounds an entry read from the cache: a layout
	// is a few dozen directories.
	maxLayoutCacheEntry = 256 << 10
)

// fileID is what names one file: a socket or a binary, as stat(2) sees it.
// A file that is unlinked and created again at the same path (containerd
// recreates its socket at every start) differs at least in its change time.
type fileID struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Ctime int64  `json:"ctime_ns"`
	Mtime int64  `json:"mtime_ns"`
	Size  int64  `json:"size"`
}

func statID(path string, kind uint32) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	if st.Mode&unix.S_IFMT != kind {
		return fileID{}, &safeopen.NotRegularError{Name: path, Type: safeopen.TypeName(st.Mode)}
	}
	return fileID{Dev: st.Dev, Ino: st.Ino, Ctime: st.Ctim.Nano(), Mtime: st.Mtim.Nano(), Size: st.Size}, nil
}

// procID names one process for the life of the node: its PID and its
// start time (in clock ticks since boot), which a reused PID does not
// share.
type procID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start_ticks"`
}

// parentID names the start process's parent: the containerd that runs it.
func parentID() (procID, error) {
	ppid := os.Getppid()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(ppid) + "/stat")
	if err != nil {
		return procID{}, err
	}
	// the fields after the command, which may hold spaces and ')', start
	// after its last ')'; the start time is the stat's 22nd field
	i := bytes.LastIndexByte(data, ')')
	if fields := strings.Fields(string(data[i+1:])); i >= 0 && len(fields) >= 20 {
		if start, err := strconv.ParseUint(fields[19], 10, 64); err == nil {
			return procID{PID: ppid, Start: start}, nil
		}
	}
	return procID{}, fmt.Errorf("/proc/%d/stat: no start time", ppid)
}

// instance names the containerd a start process would ask, without
// connecting to it: its gRPC address and the socket there (stat follows a
// symlink, as connect does), its TTRPC address as containerd passed it,
// the containerd process that started this start process, and the shim
// binary that derives the layout from containerd's answer (an upgraded
// shim may derive it differently). The process matters because the
// socket alone does not name a containerd while one starts: a killed
// containerd leaves its socket behind, and the next one starts shims (its
// restart monitor, at plugin init) before it replaces that socket with its
// own, so the old socket, and the old containerd's entry, would match.
type instance struct {
	Address    string `json:"address"`
	TTRPC      string `json:"ttrpc"`
	Socket     fileID `json:"socket"`
	Containerd procID `json:"containerd"`
	Shim       fileID `json:"shim"`
}

func identify(address, ttrpc string) (instance, error) {
	sock, err := statID(address, unix.S_IFSOCK)
	if err != nil {
		return instance{}, err
	}
	parent, err := parentID()
	if err != nil {
		return instance{}, err
	}
	exe, err := statID("/proc/self/exe", unix.S_IFREG)
	if err != nil {
		return instance{}, err
	}
	return instance{Address: address, TTRPC: ttrpc, Socket: sock, Containerd: parent, Shim: exe}, nil
}

// layoutEntry is one file of the cache.
type layoutEntry struct {
	Version  int      `json:"version"`
	Instance instance `json:"instance"`
	Layout   learned  `json:"layout"`
}

// layoutCacheName is the file of address's entry.
func layoutCacheName(address string) string {
	sum := sha256.Sum256([]byte(address))
	return hex.EncodeToString(sum[:]) + ".json"
}

// readLayoutCache returns the layout cached in dir for exactly the
// instance id.
func readLayoutCache(dir string, id instance) (learned, error) {
	dfd, err := safeopen.PrivateDir(dir)
	if err != nil {
		return learned{}, err
	}
	defer func() { _ = unix.Close(dfd) }()
	data, err := safeopen.ReadPrivate(dfd, layoutCacheName(id.Address), maxLayoutCacheEntry)
	if err != nil {
		return learned{}, err
	}
	var e layoutEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return learned{}, err
	}
	if e.Version != layoutCacheVersion || e.Instance != id || e.Layout.Address != id.Address {
		return learned{}, errStaleLayout
	}
	return e.Layout, nil
}

var errStaleLayout = errors.New("the cached layout is another containerd's")

// writeLayoutCache records in dir the layout got from the instance id.
func writeLayoutCache(dir string, id instance, got learned) error {
	data, err := json.Marshal(layoutEntry{Version: layoutCacheVersion, Instance: id, Layout: got})
	if err != nil {
		return err
	}
	dfd, err := safeopen.PrivateDir(dir)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(dfd) }()
	return safeopen.WritePrivate(dfd, layoutCacheName(id.Address), data)
}

// cachedLayout is askContainerd(ctx, address) for a start process, through
// the cache in dir ("" = none): an entry for the instance now behind
// address is the answer; else containerd is asked and, when the same
// instance is still behind address after the call, its answer recorded.
// The cache never makes a start fail: anything wrong with it (no
// directory, not root's alone, a symlink, an entry that does not decode or
// names another instance) is a miss.
func cachedLayout(ctx context.Context, dir, address, ttrpc string) (learned, error) {
	id, idErr := identify(address, ttrpc)
	if idErr == nil && dir != "" {
		if got, err := readLayoutCache(dir, id); err == nil {
			return got, nil
		}
	}
	got, err := askContainerd(ctx, address)
	if err != nil || idErr != nil || dir == "" {
		return got, err
	}
	if after, err := identify(address, ttrpc); err == nil && after == id {
		_ = writeLayoutCache(dir, id, got)
	}
	return got, nil
}
