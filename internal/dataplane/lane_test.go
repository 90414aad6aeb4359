package dataplane

import (
	"testing"
	"time"
)

// TestLaneHealthWindow: a lane version's health counts the requests of the
// last window only, forgets what it counted under another window (a
// reload changed it), and never counts a bucket from the future.
func TestLaneHealthWindow(t *testing.T) {
	var h laneHealth
	t0 := time.Hour
	type step struct {
		at       time.Duration // after t0
		window   time.Duration
		failed   bool
		requests int // the window's, after this one
		failures int
	}
	for i, s := range []step{
		{0, 10 * time.Second, true, 1, 1},
		{time.Second, 10 * time.Second, false, 2, 1},
		{9 * time.Second, 10 * time.Second, true, 3, 2},
		{12 * time.Second, 10 * time.Second, false, 2, 1},         // the first two have left the window
		{25 * time.Second, 10 * time.Second, false, 1, 0},         // all of them have
		{26 * time.Second, 30 * time.Second, false, 1, 0},         // a new window: counted afresh
		{time.Hour, 30 * time.Second, false, 1, 0},                // an hour later
		{time.Hour + time.Second, time.Second, true, 1, 1},        // a shorter window: its buckets are other slots
		{time.Hour + 2*time.Second, 30 * time.Second, true, 1, 1}, // and back: nothing from the short window's slots
	} {
		n, f := h.record(t0+s.at, s.window, s.failed)
		if n != s.requests || f != s.failures {
			t.Fatalf("step %d (+%s, window %s): %d requests, %d failed; want %d, %d", i, s.at, s.window, n, f, s.requests, s.failures)
		}
	}
}
