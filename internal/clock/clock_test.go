package clock

import (
	"strings"
	"testing"
	"time"
)

// TestNow: Now's times carry a monotonic reading, so that they
// order and subtract with time.Now's as time.Now's own do.
func TestNow(t *testing.T) {
	for range 1000 {
		a := Now()
		b := time.Now()
		c := Now()
		if b.Before(a) || c.Before(b) || c.Before(a) {
			t.Fatalf("out of order: %v, time.Now %v, %v", a, b, c)
		}
		if !strings.Contains(a.String(), " m=") {
			t.Fatalf("%v has no monotonic reading", a)
		}
	}
	if d := time.Until(Now().Add(time.Second)); d <= 900*time.Millisecond || d > time.Second {
		t.Errorf("a deadline a second from monoNow is %v away", d)
	}
}

// TestMono: Mono is Now's time since the process started, and grows.
func TestMono(t *testing.T) {
	a := Mono()
	now := Now()
	b := Mono()
	if d := now.Sub(base); d < a || d > b || b < a {
		t.Errorf("Mono %v then %v, Now %v after the start", a, b, d)
	}
}
