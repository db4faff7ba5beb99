package service

import (
	"runtime/debug"
	"sync"
	"time"
)

// Holding the collector off during palisade's part of Create.
//
// containerd's shim runs the Go collector at GOGC=40 to keep shims small,
// so a shim's heap target is a few hundred kilobytes above what is live.
// palisade's part of a Create (read, decode and harden the spec, encode
// and write it, the audit record) allocates about 0.4 MB the first time
// (caches filled) and 0.1 MB after, which starts a collection in the
// middle of it, on the container's start path: measured in-process, a
// first Create took 3.0–5.2 ms with the collection and 1.8–2.7 ms without;
// in the shim, from Create's start to runc's, 5.5 ms without the hold and
// 3.6 ms with it (medians of 66 creates each, interleaved), with no change
// in the shim's resident memory.
// Right after that part, the shim waits on runc for tens of milliseconds
// with nothing to do. So the collector is held off from the start of a
// Create until runc is started (or the Create ends), and what was
// allocated is collected while runc works. The heap may grow by what one
// Create allocates before it is collected; that is bounded by the size
// bounds on what a Create reads (the spec, the admin config, profiles),
// and a hold never outlasts maxGCHold.

// maxGCHold bounds how long the collector stays off, whatever happens to
// the Creates holding it (a Create waiting on containerd or a slow mount,
// or Creates that overlap without end): it is back on at most maxGCHold
// after it went off, and goes off again only once every hold has ended.
const maxGCHold = 250 * time.Millisecond

// gcHolds counts the Creates holding the collector off; the first saves
// the collector's setting and turns it off, and the last, or the bound,
// restores it.
var gcHolds struct {
	sync.Mutex
	n       int
	percent int
	off     bool
	timer   *time.Timer
}

// gcHold is one Create's hold; release is idempotent.
type gcHold struct {
	once sync.Once
}

// holdGC turns the collector off until the hold is released or maxGCHold
// passes.
func holdGC() *gcHold {
	gcHolds.Lock()
	defer gcHolds.Unlock()
	if gcHolds.n == 0 {
		gcHolds.percent, gcHolds.off = debug.SetGCPercent(-1), true
		gcHolds.timer = time.AfterFunc(maxGCHold, restoreGC)
	}
	gcHolds.n++
	return &gcHold{}
}

// restoreGCLocked turns the collector back on if it is off; the caller
// holds gcHolds' lock.
func restoreGCLocked() {
	if gcHolds.off {
		debug.SetGCPercent(gcHolds.percent)
		gcHolds.off = false
	}
}

// restoreGC is the bound: the collector back on while holds remain.
func restoreGC() {
	gcHolds.Lock()
	defer gcHolds.Unlock()
	restoreGCLocked()
}

// release ends the hold: the last one restores the collector's setting,
// and a collection due by then starts in the background.
func (h *gcHold) release() {
	h.once.Do(func() {
		gcHolds.Lock()
		defer gcHolds.Unlock()
		if gcHolds.n--; gcHolds.n == 0 {
			gcHolds.timer.Stop()
			restoreGCLocked()
			scheduleFree()
		}
	})
}

// freeAfter is how long after a Create or an Exec, with no other since,
// the shim gives back what it no longer uses: the garbage of the request
// (the spec as read and decoded, the profiles as parsed, the filter as
// encoded) is collected by then, but the Go runtime keeps freed pages for
// reuse and returns them to the kernel only slowly. A shim serving one
// container rarely allocates otherwise, so they would stay resident for
// its whole life: measured with one sleeping container, about 0.5 MB of
// the shim's resident memory. One collection per quiet spell: a burst of
// execs (exec probes) is not followed by one each.
var freeAfter = time.Second // a variable for the tests

// freeTimer is the pending give-back, nil before the first.
var freeTimer struct {
	sync.Mutex
	t *time.Timer
}

// scheduleFree (re)arms the give-back freeAfter from now.
func scheduleFree() {
	freeTimer.Lock()
	defer freeTimer.Unlock()
	if freeTimer.t == nil {
		freeTimer.t = time.AfterFunc(freeAfter, freeIfIdle)
		return
	}
	freeTimer.t.Reset(freeAfter)
}

// freeIfIdle collects and returns freed memory to the kernel, unless a
// Create is under way (it schedules its own when it ends).
func freeIfIdle() {
	gcHolds.Lock()
	busy := gcHolds.n > 0
	gcHolds.Unlock()
	if !busy {
		freeOSMemory()
	}
}

// freeOSMemory is debug.FreeOSMemory (a variable for the tests).
var freeOSMemory = debug.FreeOSMemory
