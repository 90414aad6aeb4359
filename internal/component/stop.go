package component

import (
	"context"
	"sync"
	"time"
)

// checkEvery is how often a call of a Stoppable instance looks at its
// context, besides at its deadline: a caller gone is noticed this late at
// most.
const checkEvery = 10 * time.Millisecond

// watch stops the call under way when its context is done, by setting the
// instance's stop globals: its one timer, reused from call to call, fires
// at the context's deadline and every checkEvery before it. Arming it per
// call allocates nothing (context.AfterFunc would, several times).
type watch struct {
	mu       sync.Mutex
	timer    *time.Timer
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
	if w.timer == nil {
		w.timer = time.AfterFunc(time.Hour, inst.check)
	}
	w.timer.Reset(w.next())
	w.mu.Unlock()
	return true
}

// disarm ends the watch that arm began. Once it returns, no stop global is
// set by it (one being set is waited for): the instance may be reset.
func (inst *Instance) disarm() {
	w := &inst.watch
	w.mu.Lock()
	w.ctx = nil
	w.timer.Stop()
	w.mu.Unlock()
}

// next is how long the timer waits for its next look.
func (w *watch) next() time.Duration {
	if w.deadline.IsZero() {
		return checkEvery
	}
	return min(checkEvery, time.Until(w.deadline))
}

// check, on the timer, stops the call watched when its context is done or
// its deadline passed, else looks again later.
func (inst *Instance) check() {
	w := &inst.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.ctx == nil:
	case w.ctx.Err() != nil || !w.deadline.IsZero() && !time.Now().Before(w.deadline):
		inst.stop()
		w.ctx = nil // once
	default:
		w.timer.Reset(w.next())
	}
}
