package dataplane

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLimiterDeadline: a request waiting for a slot is refused as the
// service's overload (503) when its own deadline passes first (an
// in-process call whose caller's time runs out, a service calling itself
// with max_concurrency 1), and as its client's when it is cancelled.
func TestLimiterDeadline(t *testing.T) {
	l := &limiter{max: 1, maxQueue: 10, slots: make(chan struct{}, 1)}
	release, err := l.acquire(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.acquire(ctx, time.Minute); !errors.Is(err, errOverloaded) || statusOf(err) != 503 {
		t.Errorf("deadline while queued: %v (status %d), want errOverloaded, 503", err, statusOf(err))
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := l.acquire(ctx, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("client gone while queued: %v, want context.Canceled", err)
	}
}
