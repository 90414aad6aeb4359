package dataplane

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// flushRecorder is a ResponseRecorder whose flushes are counted.
type flushRecorder struct {
	*httptest.ResponseRecorder
	mu      sync.Mutex
	flushes int
}

func (r *flushRecorder) Flush() {
	r.mu.Lock()
	r.flushes++
	r.mu.Unlock()
}

func (r *flushRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushes
}

// TestFlushTimerKept: a stream's bytes are flushed by its timer; a
// stream closed before the flush was due gives its timer back stopped and
// unbound, and the timer, bound to the next stream, flushes that one and
// never the first.
func TestFlushTimerKept(t *testing.T) {
	newStream := func() (*streamWriter, *flushRecorder) {
		rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
		n := 0
		return &streamWriter{w: rec, rc: *http.NewResponseController(rec), n: &n}, rec
	}
	first, firstRec := newStream()
	if _, err := first.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	ft := first.timer
	first.close(false) // before the flush was due: the timer is stopped and kept
	if ft.s != nil {
		t.Fatalf("a released timer still flushes %p", ft.s)
	}
	second, secondRec := newStream()
	ft.bind(second) // as newFlushTimer does with a kept timer
	second.timer = ft
	second.mu.Lock()
	second.pending = true
	second.mu.Unlock()
	ft.t.Reset(time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for secondRec.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if secondRec.count() != 1 || firstRec.count() != 0 {
		t.Errorf("flushes: the second stream %d (want 1), the closed first %d (want 0)", secondRec.count(), firstRec.count())
	}
	// A stream left open past flushDelay is flushed by its own timer.
	third, thirdRec := newStream()
	third.Write([]byte("c"))
	for deadline := time.Now().Add(5 * time.Second); thirdRec.count() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * flushDelay) // for a second flush, which would be wrong
	if thirdRec.count() != 1 {
		t.Errorf("a stream's pending bytes: %d flushes, want 1", thirdRec.count())
	}
	third.close(false)
}
