// Package clock reads the time for measuring durations and setting
// deadlines at half time.Now's cost.
package clock

import "time"

// base is the time Now counts from.
var base = time.Now()

// Now is time.Now for measuring durations and setting deadlines, at one
// read of the monotonic clock where time.Now takes two (the wall clock and
// the monotonic one, a vDSO call each: 30-60 ns apiece on the VMs
// measured, where a request read the time a dozen times). Its times
// compare and subtract by their monotonic readings, as time.Now's do;
// their wall-clock reading is the process's start's plus the time passed
// since, which a step of the system's clock does not move: not for
// showing.
func Now() time.Time { return base.Add(Mono()) }

// Mono is the time passed since the process started, on the monotonic
// clock: for times kept as a count (buckets, deadlines in an atomic
// int64), which a step of the wall clock does not move.
func Mono() time.Duration { return time.Since(base) }

// MonoOf is Mono's reading for t, a time from Now (or time.Now).
func MonoOf(t time.Time) time.Duration { return t.Sub(base) }

// At is the time of mono, a reading of Mono: Now's at that reading.
func At(mono time.Duration) time.Time { return base.Add(mono) }
