package dataplane

import (
	"testing"
	"time"
)

// TestQuantile: the p99 of the requests between two snapshots is the
// bound of the bucket it falls in: within a quarter above the true value.
func TestQuantile(t *testing.T) {
	var l Latencies
	for range 1000 {
		l.Observe(time.Millisecond)
	}
	from := l.Snapshot()
	for i := range 1000 {
		d := time.Millisecond
		if i%100 == 0 { // 1% slow
			d = 80 * time.Millisecond
		}
		if i%50 == 1 { // and 2% a little slower
			d = 5 * time.Millisecond
		}
		l.Observe(d)
	}
	to := l.Snapshot()
	if got := Quantile(from, to, 0.99); got < 5*time.Millisecond || got > 5*time.Millisecond*5/4 {
		t.Errorf("p99 = %s, want 5ms to 6.25ms", got)
	}
	if got := Quantile(from, to, 0.5); got < time.Millisecond || got > time.Millisecond*5/4 {
		t.Errorf("p50 = %s, want 1ms to 1.25ms", got)
	}
	if got := Quantile(from, to, 1); got < 80*time.Millisecond || got > 100*time.Millisecond {
		t.Errorf("max = %s, want 80ms to 100ms", got)
	}
	if got := Quantile(to, to, 0.99); got != 0 {
		t.Errorf("no requests: %s", got)
	}
}

// BenchmarkLatenciesObserve is what the release controller's figures add
// to a request (a bucket found, an atomic add), to set beside
// BenchmarkServeHTTP's time per request (docs/PERFORMANCE.md).
func BenchmarkLatenciesObserve(b *testing.B) {
	var l Latencies
	b.RunParallel(func(pb *testing.PB) {
		d := 1500 * time.Microsecond
		for pb.Next() {
			l.Observe(d)
		}
	})
}
