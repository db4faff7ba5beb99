package seccomp

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// cache keeps validated admin profiles: validating every syscall name for
// two architectures is worth doing once per file version, not per container.
var cache = struct {
	sync.Mutex
	m map[string]cached
}{m: map[string]cached{}}

type cached struct {
	mtime time.Time
	size  int64
	l     *Loaded
}

// Load returns the profile called name: the built-in default, or
// DIR/NAME.json from the admin's seccomp directory. The caller has checked
// that name is a plain word (no path separators). Unconfined is not a
// profile: callers handle it.
func Load(name, dir string) (*Loaded, error) {
	if name == DefaultName {
		return Default()
	}
	if dir == "" {
		return nil, &Error{Source: name, Rule: -1, Msg: "no such seccomp profile (no admin profiles directory is configured)"}
	}
	path := filepath.Join(dir, name+".json")
	st, err := os.Stat(path)
	if err != nil {
		return nil, &Error{Source: path, Rule: -1, Msg: fmt.Sprintf("no such seccomp profile %q: %v", name, err)}
	}
	cache.Lock()
	c, ok := cache.m[path]
	cache.Unlock()
	if ok && c.mtime.Equal(st.ModTime()) && c.size == st.Size() {
		return c.l, nil
	}
	if st.Size() > maxFileSize {
		return nil, &Error{Source: path, Rule: -1, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Source: path, Rule: -1, Msg: err.Error()}
	}
	l, err := Parse(name, path, data)
	if err != nil {
		return nil, err
	}
	cache.Lock()
	cache.m[path] = cached{mtime: st.ModTime(), size: st.Size(), l: l}
	cache.Unlock()
	return l, nil
}
