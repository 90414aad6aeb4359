package testutil

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestLoadAndWaitFor(t *testing.T) {
	var calls atomic.Int64
	stop := make(chan struct{})
	wait := Load(3, stop, func() { calls.Add(1); time.Sleep(time.Millisecond) })
	WaitFor(t, "30 calls", func() bool { return calls.Load() >= 30 })
	close(stop)
	wait()
	after := calls.Load()
	time.Sleep(20 * time.Millisecond)
	if calls.Load() != after {
		t.Fatal("Load kept calling after stop and wait")
	}
}
