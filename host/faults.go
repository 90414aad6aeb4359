package host

import (
	"sync"
	"sync/atomic"
)

// A reset instance's memory is copied back from what the page map last
// said was written, without asking again, when the process has taken no
// page fault since (cowMemory.reset). Reading the fault count (getrusage,
// which sums every thread's) is about a microsecond, the largest part of a
// reset of a small module. One reading serves every instance whose run
// ended before it began: an instance put back idle takes a faultMark, and
// is reset when it is next taken (faultsSince), with the last reading if
// that began after its mark, else with a new one. Under load, instances
// put back while one request waits to be served share the next reading.

// faultReadings numbers the readings in the order they begin (begun), and
// keeps the last one taken.
var faultReadings struct {
	begun atomic.Uint64
	last  atomic.Uint64 // seq, for lastFaultReading

	mu      sync.Mutex
	seq     uint64 // the begun number of the last reading; 0 for none
	faults  int64
	counted bool
}

// faultMark marks the present: a reading that begins after it, and so
// sees every fault taken before it, has a greater number.
func faultMark() uint64 { return faultReadings.begun.Load() }

// lastFaultReading is the number of the last reading taken: it serves the
// marks below it.
func lastFaultReading() uint64 { return faultReadings.last.Load() }

// faultsSince returns the process's page faults (pageFaults), read after
// mark was taken. A reading another goroutine took is used only when its
// number says it began after the mark: its increment of begun is ordered
// after the mark's load (both atomic), so its getrusage runs after the
// run the mark follows ended, and sees every fault that run took (the
// kernel counts a fault before the faulting thread goes on).
func faultsSince(mark uint64) (int64, bool) {
	r := &faultReadings
	r.mu.Lock()
	if r.seq > mark {
		faults, counted := r.faults, r.counted
		r.mu.Unlock()
		return faults, counted
	}
	r.mu.Unlock()
	seq := r.begun.Add(1) // before the reading: whatever it sees, it began after mark
	faults, counted := pageFaults()
	r.mu.Lock()
	if seq > r.seq {
		r.seq, r.faults, r.counted = seq, faults, counted
		r.last.Store(seq)
	}
	r.mu.Unlock()
	return faults, counted
}
