package clock

import "time"

// Alarm is a reusable timer for a watch kept over many short runs (a
// guest call that must stop at its caller's deadline): Set makes it fire
// within d, leaving it alone when it fires sooner already, and nothing
// stops it when a run ends; its function, finding no run to watch, does
// not set it again. A run shorter than the alarm's period so changes no
// timer at all. Resetting a timer at every run's start and stopping it at
// its end marks a timer in the runtime's heap modified, and the runtime
// then walks its whole heap at the modified time, every connection's
// deadline with it: with 10,000 connections, 2 µs a request.
//
// An Alarm is used under its owner's lock: Set, Fired and Stop do not run
// at once. The zero Alarm is not set.
type Alarm struct {
	t  *time.Timer
	at time.Duration // Mono when it fires; 0: not set
}

// Set makes the alarm call f within d from now, unless it is set to fire
// by then already. f is the alarm's function from its first Set on.
func (a *Alarm) Set(d time.Duration, f func()) {
	at := max(Mono()+d, 1)
	if a.at != 0 && a.at <= at {
		return
	}
	if a.t == nil {
		a.t = time.AfterFunc(d, f)
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
