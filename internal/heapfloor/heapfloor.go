// Package heapfloor keeps the Go collector's heap goal at or above a
// floor.
//
// With GOGC=100, Go's default, the collector runs each time the heap has
// grown by as much as was live after the last collection (4 MiB at least).
// A gateway's live heap is small (2–5 MiB serving hellos) and it allocates
// a few KiB a request, so under load it collected 45 times a second, and
// the collections (their mark workers, write barriers and assists) took
// 13–25% of its CPU (docs/PERFORMANCE.md, "A floor under the heap"). After
// each collection Start sets GOGC so that the next goal is at least the
// floor, and back to 100 once the live heap is half the floor or more, so
// a large live heap (10,000 connections) is collected as Go's default
// would. GOMEMLIMIT still bounds the heap: the collector runs when it is
// near the limit whatever GOGC says.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultPercent is GOGC's default, the least Start sets.
const DefaultPercent = 100

// minHeap is the heap goal of a live heap near zero at GOGC=100 (the
// runtime's defaultHeapMinimum): the runtime scales it by GOGC/100.
const minHeap = 4 << 20

const liveMetric = "/gc/heap/live:bytes"

// Start sets GOGC after every collection from now on so that the next
// heap goal is at least floor bytes (never below DefaultPercent), and
// returns a function that stops doing so and sets GOGC back to what it
// was. A floor of 0 does nothing.
func Start(floor uint64) (stop func()) {
	if floor == 0 {
		return func() {}
	}
	t := &tuner{floor: floor, sample: []metrics.Sample{{Name: liveMetric}}}
	t.prev = debug.SetGCPercent(DefaultPercent)
	t.adjust()
	t.arm()
	return t.stop
}

// Percent is the GOGC that makes the heap goal about floor for a live
// heap of live bytes, DefaultPercent at least. The runtime's goal is the
// larger of live × (1 + GOGC/100) and 4 MiB × GOGC/100 (so that a heap
// near zero is not collected at every step), which caps GOGC at
// floor / 4 MiB × 100.
func Percent(floor, live uint64) int {
	p := floor * 100 / minHeap
	if live > 0 {
		p = min(p, (floor-min(live, floor))*100/live)
	}
	return max(int(p), DefaultPercent)
}

type tuner struct {
	floor  uint64
	prev   int // GOGC before Start
	sample []metrics.Sample

	mu      sync.Mutex
	stopped bool
	percent int // what the tuner set last
}

// arm has adjust run after the next collection: a finalizer runs once
// the collection that found its object unreachable is over.
func (t *tuner) arm() {
	s := new(sentinel)
	runtime.SetFinalizer(s, func(*sentinel) {
		if t.adjust() {
			t.arm()
		}
	})
}

// sentinel is big enough not to share a block of the tiny allocator with
// other objects, whose lives would delay its finalizer.
type sentinel [32]byte

// adjust sets GOGC for the live heap the last collection left; false once
// stopped.
func (t *tuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	if p := Percent(t.floor, live); p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	return true
}

func (t *tuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		debug.SetGCPercent(t.prev)
	}
}
