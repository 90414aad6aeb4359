package clock

import "time"

// Alarm is a reusable timer for a watch kept over many short runs (a
// guest call that must stop at its caller's deadline): Set makes it go off
// within a time, leaving it alone when it goes off sooner already, and
// nothing stops it when a run ends; its function, finding no run to
// watch, does not set it again. A run shorter than the alarm's period so
// changes no timer at all. Resetting a timer at every run's start and
// stopping it at its end marks a timer in the runtime's heap modified, and
// the runtime then walks its whole heap at the modified time, every
// connection's deadline with it: with 10,000 connections, 2 µs a request.
//
// An Alarm is used under its owner's lock: Set, Fired and Stop do not run
// at once. Init gives it its function, before the first Set.
type Alarm struct {
	f  func()
	t  *time.Timer
	at time.Duration // Mono when it goes off; 0: not set
}

// Init gives the alarm the function it calls when it goes off (on a
// goroutine of its own, as time.AfterFunc's).
func (a *Alarm) Init(f func()) { a.f = f }

// Set makes the alarm go off within d after now (a Mono reading), unless
// it is set to go off by then already.
func (a *Alarm) Set(now, d time.Duration) {
	at := max(now+d, 1)
	if a.at != 0 && a.at <= at {
		return
	}
	if a.t == nil {
		if a.f == nil {
			panic("clock: Alarm.Set before Init")
		}
		a.t = time.AfterFunc(d, a.f)
	} else {
		a.t.Reset(d)
	}
	a.at = at
}

// Fired records that the alarm went off; its function calls it first,
// under the owner's lock, before setting it again if a run still needs it.
func (a *Alarm) Fired() { a.at = 0 }

// Stop unsets the alarm.
func (a *Alarm) Stop() {
	if a.t != nil {
		a.t.Stop()
	}
	a.at = 0
}
