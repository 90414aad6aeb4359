// Package testutil holds helpers shared by wasmesh's tests: waits that poll
// for a condition with a deadline instead of sleeping, load loops, and a
// real OCI registry (with a counting, tampering proxy) for the tests of OCI
// distribution.
package testutil

import (
	"sync"
	"testing"
	"time"
)

// WaitTimeout bounds every WaitFor.
const WaitTimeout = 15 * time.Second

// WaitFor polls cond every 10ms until it holds, failing tb after WaitTimeout
// with what it was waiting for.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	WaitWithin(tb, WaitTimeout, what, cond)
}

// WaitWithin is WaitFor with a deadline of d, for what is slow by nature
// (a peer compiling megabytes of code on a loaded machine).
func WaitWithin(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Load runs fn in n goroutines, each calling it again and again until stop
// is closed. The returned func waits for them to finish.
func Load(n int, stop <-chan struct{}, fn func()) (wait func()) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					fn()
				}
			}
		}()
	}
	return wg.Wait
}
