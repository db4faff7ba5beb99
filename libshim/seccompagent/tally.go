package seccompagent

import (
	"sort"
	"sync"
	"time"

	"palisade.dev/palisade/libshim/audit"
)

// Bounds on what one container can make the shim keep: the workload decides
// how many distinct calls and paths it shows the listener.
const (
	maxSyscalls = 512  // more than any architecture has
	maxExecs    = 128  // distinct programs outside the list
	maxPathLen  = 1024 // longer paths are recorded cut short, with "…"
)

type execKey struct{ path, resolved string }

type entry struct {
	count       uint64
	first, last time.Time
}

// tally counts what was seen since the last report, within fixed bounds.
type tally struct {
	mu       sync.Mutex
	syscalls map[[2]string]*entry // name, arch
	execs    map[execKey]*entry
	dropped  uint64
}

func newTally() *tally {
	return &tally{syscalls: map[[2]string]*entry{}, execs: map[execKey]*entry{}}
}

func (t *tally) syscall(name, arch string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !count(t.syscalls, [2]string{name, arch}, maxSyscalls, now) {
		t.dropped++
	}
}

func (t *tally) exec(path, resolved string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !count(t.execs, execKey{clip(path), clip(resolved)}, maxExecs, now) {
		t.dropped++
	}
}

// count counts k in m, unless m is full (false).
func count[K comparable](m map[K]*entry, k K, limit int, now time.Time) bool {
	if e := m[k]; e != nil {
		e.count, e.last = e.count+1, now
		return true
	}
	if len(m) >= limit {
		return false
	}
	m[k] = &entry{count: 1, first: now, last: now}
	return true
}

func clip(s string) string {
	if len(s) <= maxPathLen {
		return s
	}
	return s[:maxPathLen] + "…"
}

// Report is what a container did in alert mode that its profile would have
// denied, since the previous report.
type Report struct {
	Syscalls    []audit.SyscallSeen
	Executables []audit.ExecSeen
	Dropped     uint64
}

// Empty says whether there is nothing to record.
func (r Report) Empty() bool {
	return len(r.Syscalls) == 0 && len(r.Executables) == 0 && r.Dropped == 0
}

// take returns what was counted and starts afresh.
func (t *tally) take() Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	var r Report
	for k, e := range t.syscalls {
		r.Syscalls = append(r.Syscalls, audit.SyscallSeen{Name: k[0], Arch: k[1], Count: e.count, First: e.first, Last: e.last})
	}
	for k, e := range t.execs {
		r.Executables = append(r.Executables, audit.ExecSeen{Path: k.path, Resolved: k.resolved, Count: e.count, First: e.first, Last: e.last})
	}
	r.Dropped = t.dropped
	t.syscalls, t.execs, t.dropped = map[[2]string]*entry{}, map[execKey]*entry{}, 0
	sort.Slice(r.Syscalls, func(i, j int) bool {
		if r.Syscalls[i].Name != r.Syscalls[j].Name {
			return r.Syscalls[i].Name < r.Syscalls[j].Name
		}
		return r.Syscalls[i].Arch < r.Syscalls[j].Arch
	})
	sort.Slice(r.Executables, func(i, j int) bool { return r.Executables[i].Path < r.Executables[j].Path })
	return r
}
