package host

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

// TestIdleTake: an idle set gives the most recently put back of the items
// that the last fault reading began after (its reset needs no reading of
// its own), and the most recently put back when it serves none.
func TestIdleTake(t *testing.T) {
	var s idleSet[string]
	s.put("a", 8)
	s.put("b", 8)
	faultsSince(faultMark()) // a reading after a and b were put back
	s.put("c", 8)
	for _, want := range []string{"b", "a", "c"} {
		got, mark, ok := s.take()
		if !ok || got != want {
			t.Fatalf("take = %q, %v; want %q", got, ok, want)
		}
		if covered := mark < lastFaultReading(); covered != (want != "c") {
			t.Errorf("%s: mark %d against the last reading %d", want, mark, lastFaultReading())
		}
	}
	if _, _, ok := s.take(); ok {
		t.Fatal("take of an empty set gave an item")
	}
}

// TestFaultsSinceConcurrent: readings taken and shared by many goroutines
// at once each began after the mark they were asked for.
func TestFaultsSinceConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				mark := faultMark()
				faultsSince(mark)
				if last := lastFaultReading(); last <= mark {
					t.Errorf("after faultsSince(%d) the last reading is %d", mark, last)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestCappedOutputBuffer: a buffer that collects a guest's output grows
// no larger than the output it may hold (bytes.Buffer alone doubles past
// it: a 33 MiB answer in a buffer of 64).
func TestCappedOutputBuffer(t *testing.T) {
	var b bytes.Buffer
	w := capWriter(&b, "stdout", 1000, func(error) {})
	chunk := make([]byte, 100)
	for range 10 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if b.Len() != 1000 || b.Cap() > 1000 {
		t.Fatalf("len %d, cap %d: want 1000 bytes in a buffer of at most 1000", b.Len(), b.Cap())
	}
	if _, err := w.Write(chunk[:1]); !errors.Is(err, ErrOutputLimit) || b.Cap() > 1000 {
		t.Fatalf("a write past the cap: %v, cap %d", err, b.Cap())
	}
}
