package service

import (
	"runtime/debug"
	"testing"
	"time"
)

// gcPercent reads the collector's setting.
func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

// The collector is off while any Create holds it, and back to its setting
// when the last hold is released; a release is idempotent.
func TestHoldGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(40))
	a := holdGC()
	b := holdGC()
	if p := gcPercent(); p != -1 {
		t.Fatalf("collector at %d%% while held, want off", p)
	}
	a.release()
	a.release() // idempotent: must not release b's hold
	if p := gcPercent(); p != -1 {
		t.Fatalf("collector at %d%% while one hold remains, want off", p)
	}
	b.release()
	if p := gcPercent(); p != 40 {
		t.Fatalf("collector at %d%% after the last release, want 40 (the shim's setting)", p)
	}
}

// A hold that is never released ends by itself after maxGCHold.
func TestHoldGCBounded(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(40))
	h := holdGC()
	defer h.release()
	deadline := time.Now().Add(maxGCHold + 2*time.Second)
	for gcPercent() == -1 {
		if time.Now().After(deadline) {
			t.Fatalf("the collector is still off %v after a hold began (bound %v)", maxGCHold+2*time.Second, maxGCHold)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p := gcPercent(); p != 40 {
		t.Fatalf("collector at %d%% after the bound, want 40", p)
	}
}

// Creates that overlap, each shorter than maxGCHold, do not keep the
// collector off between them for longer: a client that keeps one Create
// in flight at all times (a Create that blocks, then the next) would
// otherwise let the shim's heap grow without a collection.
func TestHoldGCBoundedAcrossOverlappingHolds(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(40))
	prev := holdGC()
	deadline := time.Now().Add(maxGCHold + 2*time.Second)
	for gcPercent() == -1 {
		if time.Now().After(deadline) {
			prev.release()
			t.Fatalf("overlapping holds kept the collector off for %v (bound %v)", maxGCHold+2*time.Second, maxGCHold)
		}
		next := holdGC() // the next Create begins before the last ends
		time.Sleep(maxGCHold / 5)
		prev.release()
		prev = next
	}
	prev.release()
	if p := gcPercent(); p != 40 {
		t.Fatalf("collector at %d%% after the bound, want 40", p)
	}
}

// After the last hold ends, freed memory goes back to the kernel once
// freeAfter has passed, unless a Create holds the collector by then.
func TestFreeAfterCreate(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(40))
	calls := make(chan struct{}, 4)
	oldFree, oldAfter := freeOSMemory, freeAfter
	freeOSMemory, freeAfter = func() { calls <- struct{}{} }, 20*time.Millisecond
	defer func() { freeOSMemory, freeAfter = oldFree, oldAfter }()

	holdGC().release()
	select {
	case <-calls:
	case <-time.After(2 * time.Second):
		t.Fatal("memory not given back after a Create")
	}

	holdGC().release()
	busy := holdGC() // a Create under way when the first one's time comes
	time.Sleep(100 * time.Millisecond)
	if len(calls) != 0 {
		t.Fatal("memory given back during a Create")
	}
	busy.release()
	select {
	case <-calls:
	case <-time.After(2 * time.Second):
		t.Fatal("memory not given back after the second Create")
	}
}

// Requests close together are followed by one give-back, after the last.
func TestFreeOncePerQuietSpell(t *testing.T) {
	calls := make(chan time.Time, 8)
	oldFree, oldAfter := freeOSMemory, freeAfter
	freeOSMemory, freeAfter = func() { calls <- time.Now() }, 100*time.Millisecond
	defer func() { freeOSMemory, freeAfter = oldFree, oldAfter }()
	var last time.Time
	for range 5 {
		scheduleFree() // as each Exec does
		last = time.Now()
		time.Sleep(30 * time.Millisecond)
	}
	select {
	case at := <-calls:
		if at.Sub(last) < freeAfter {
			t.Errorf("memory given back %v after the last request, before freeAfter", at.Sub(last))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("memory not given back")
	}
	time.Sleep(3 * freeAfter)
	if len(calls) != 0 {
		t.Errorf("%d more give-backs for one quiet spell", len(calls))
	}
}
