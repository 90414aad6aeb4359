// Package heapfloor keeps the Go collector's heap goal at or above a
// floor.
//
// With GOGC=100, Go's default, the collector runs each time the heap has
// grown by as much as was live after the last collection, with the
// goroutine stacks and globals (4 MiB at least). A gateway's live heap is
// small (2–3 MB serving hellos) and it allocates about 3 KB a request, so
// under load it collected 34 times a second, its mark workers taking 5–6%
// of its CPU and, with the write barriers and assists, a request costing
// 17% more CPU than with a floor of 32 MiB (29.1 against 24.8 µs side by
// side; docs/PERFORMANCE.md, "A floor under the heap"). After each
// collection Start sets GOGC so that the next goal is about the floor, and
// back to 100 once the default's goal is the floor or more, so a large heap (10,000 connections) is collected as Go's
// default would. GOMEMLIMIT still bounds the heap: the collector runs when
// it is near the limit whatever GOGC says.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultPercent is GOGC's default, the least Start sets.
const DefaultPercent = 100

// MaxFloor is the largest floor Start takes (1 TiB): what it sets stays
// within GOGC's range.
const MaxFloor = 1 << 40

// minHeap is the heap goal of a live heap near zero at GOGC=100 (the
// runtime's defaultHeapMinimum): the runtime scales it by GOGC/100.
const minHeap = 4 << 20

// The live heap, stacks and globals the last collection found.
var samples = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Start sets GOGC after every collection from now on so that the next
// heap goal is about floor bytes (never below DefaultPercent; a floor
// above MaxFloor is MaxFloor), and returns a function that stops doing so
// and sets GOGC back to what it was. A floor of 0 does nothing.
func Start(floor uint64) (stop func()) {
	if floor == 0 {
		return func() {}
	}
	t := &tuner{floor: min(floor, MaxFloor)}
	for _, name := range samples {
		t.sample = append(t.sample, metrics.Sample{Name: name})
	}
	t.prev = debug.SetGCPercent(DefaultPercent)
	t.adjust()
	t.arm()
	return t.stop
}

// Percent is the GOGC that makes the heap goal about floor after a
// collection that found live bytes of heap live and scan bytes to scan
// (the live heap, the goroutine stacks and the globals), DefaultPercent at
// least. The runtime's goal is the larger of live + scan × GOGC/100 and
// 4 MiB × GOGC/100 (so that a heap near zero is not collected at every
// step), which caps GOGC at floor / 4 MiB × 100.
func Percent(floor, live, scan uint64) int {
	p := floor * 100 / minHeap
	if scan > 0 {
		p = min(p, (floor-min(live, floor))*100/scan)
	}
	return max(int(p), DefaultPercent)
}

type tuner struct {
	floor  uint64
	prev   int // GOGC before Start
	sample []metrics.Sample

	mu      sync.Mutex
	stopped bool
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
	var n [3]uint64 // live heap, stacks, globals
	for i, s := range t.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			n[i] = s.Value.Uint64()
		}
	}
	// Set each time, whatever else set it since: once a collection.
	debug.SetGCPercent(Percent(t.floor, n[0], n[0]+n[1]+n[2]))
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
