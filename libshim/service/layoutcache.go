package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

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
	layoutCacheVersion = 1
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

// instance names the containerd a start process would ask, without
// connecting to it: its gRPC address and the socket there (stat follows a
// symlink, as connect does), its TTRPC address as containerd passed it,
// and the shim binary that derives the layout from containerd's answer (an
// upgraded shim may derive it differently).
type instance struct {
	Address string `json:"address"`
	TTRPC   string `json:"ttrpc"`
	Socket  fileID `json:"socket"`
	Shim    fileID `json:"shim"`
}

func identify(address, ttrpc string) (instance, error) {
	sock, err := statID(address, unix.S_IFSOCK)
	if err != nil {
		return instance{}, err
	}
	exe, err := statID("/proc/self/exe", unix.S_IFREG)
	if err != nil {
		return instance{}, err
	}
	return instance{Address: address, TTRPC: ttrpc, Socket: sock, Shim: exe}, nil
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
