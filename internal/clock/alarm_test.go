package clock

import (
	"sync"
	"testing"
	"time"
)

// owned is an alarm under its owner's lock, counting how often it went
// off.
type owned struct {
	mu    sync.Mutex
	a     Alarm
	fires chan struct{}
}

func newOwned() *owned {
	o := &owned{fires: make(chan struct{}, 100)}
	o.a.Init(o.fire)
	return o
}

func (o *owned) set(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.a.Set(Mono(), d)
}

func (o *owned) fire() {
	o.mu.Lock()
	o.a.Fired()
	o.mu.Unlock()
	o.fires <- struct{}{}
}

// wait says whether the alarm went off within d.
func (o *owned) wait(d time.Duration) bool {
	select {
	case <-o.fires:
		return true
	case <-time.After(d):
		return false
	}
}

// TestAlarm: Set keeps an alarm that goes off sooner, moves one that would
// go off later, and sets one that went off again.
func TestAlarm(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []time.Duration
	}{
		{"later set keeps the sooner time", []time.Duration{20 * time.Millisecond, time.Hour}},
		{"sooner set moves it", []time.Duration{time.Hour, 20 * time.Millisecond}},
		{"a set after the first keeps it", []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOwned()
			for _, d := range tc.sets {
				o.set(d)
			}
			if !o.wait(10 * time.Second) {
				t.Fatalf("sets %v: no alarm in 10 s", tc.sets)
			}
			if o.wait(100 * time.Millisecond) {
				t.Fatalf("sets %v: the alarm went off twice", tc.sets)
			}
			o.set(10 * time.Millisecond) // went off: set again
			if !o.wait(10 * time.Second) {
				t.Fatal("set after it went off: no alarm in 10 s")
			}
			o.mu.Lock()
			o.a.Stop()
			o.mu.Unlock()
		})
	}
}

// TestAlarmNotPushedBack: runs that each set the alarm for their period,
// one after another, do not keep pushing it back (as a timer reset by each
// would be): it goes off a period after the first.
func TestAlarmNotPushedBack(t *testing.T) {
	o := newOwned()
	const period = 30 * time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		o.set(period)
		select {
		case <-o.fires:
			return
		case <-time.After(period / 10):
		}
	}
	t.Fatalf("set every %v for 10 s: it never went off", period/10)
}

// TestAlarmStop: a stopped alarm does not go off, and can be set again.
func TestAlarmStop(t *testing.T) {
	o := newOwned()
	o.set(time.Second) // stopped well before it would go off
	o.mu.Lock()
	o.a.Stop()
	o.mu.Unlock()
	if o.wait(1500 * time.Millisecond) {
		t.Fatal("a stopped alarm went off")
	}
	o.set(10 * time.Millisecond)
	if !o.wait(10 * time.Second) {
		t.Fatal("set after Stop: no alarm in 10 s")
	}
}
