package component

import (
	"context"
	"sync"
	"time"

	"github.com/wasmesh/wasmesh/internal/clock"
)

// checkEvery is how often a call of a Stoppable instance looks at its
// context, besides at its deadline: a caller gone is noticed this late at
// most.
const checkEvery = 10 * time.Millisecond

// watch stops the call under way when its context is done, by setting the
// instance's stop globals: its alarm, reused from call to call and left
// set when a call ends (clock.Alarm), goes off at the context's deadline
// and every checkEvery before it. Setting it allocates nothing
// (context.AfterFunc would, several times).
type watch struct {
	mu       sync.Mutex
	alarm    clock.Alarm
	ctx      context.Context // of the call watched; nil: none
	deadline time.Time       // ctx's; zero: none
}

// arm watches ctx for the call about to be made, and reports whether it
// did: false when a call is already watched (a call made while another is
// under way is stopped with it).
func (inst *Instance) arm(ctx context.Context) bool {
	w := &inst.watch
	w.mu.Lock()
	if w.ctx != nil {
		w.mu.Unlock()
		return false
	}
	w.ctx = ctx
	w.deadline, _ = ctx.Deadline()
	if d := inst.deadline; !d.IsZero() && (w.deadline.IsZero() || d.Before(w.deadline)) {
		w.deadline = d
	}
	w.alarm.Set(clock.Mono(), w.next())
	w.mu.Unlock()
	return true
}

// disarm ends the watch that arm began. Once it returns, no stop global is
// set by it (one being set is waited for): the instance may be reset.
func (inst *Instance) disarm() {
	w := &inst.watch
	w.mu.Lock()
	w.ctx = nil
	w.mu.Unlock()
}

// next is how long the alarm waits for its next look.
func (w *watch) next() time.Duration {
	if w.deadline.IsZero() {
		return checkEvery
	}
	return min(checkEvery, time.Until(w.deadline))
}

// check, on the alarm, stops the call watched when its context is done or
// its deadline passed, else looks again later.
func (inst *Instance) check() {
	w := &inst.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	w.alarm.Fired()
	switch {
	case w.ctx == nil:
	case w.ctx.Err() != nil || !w.deadline.IsZero() && !time.Now().Before(w.deadline):
		inst.stop()
		w.ctx = nil // once
	default:
		w.alarm.Set(clock.Mono(), w.next())
	}
}
