//go:build race

package host

// raceEnabled: the race detector writes shadow memory of its own for every
// write a test makes, and its page faults are the test thread's too.
const raceEnabled = true
