//go:build !race

package http1

import "testing"

// TestWatchAllocs: starting and stopping a request's watch allocates
// nothing (the watch set's alarm keeps its function; a method value passed
// on each Set would be an allocation a request).
func TestWatchAllocs(t *testing.T) {
	c := &conn{s: &Server{}}
	c.startWatch() // the set's first entry and its alarm
	c.stopWatch()
	if a := testing.AllocsPerRun(1000, func() {
		c.startWatch()
		c.stopWatch()
	}); a != 0 {
		t.Errorf("%v allocations a request's watch, want 0", a)
	}
	c.s.watches.mu.Lock()
	c.s.watches.alarm.Stop()
	c.s.watches.mu.Unlock()
}
