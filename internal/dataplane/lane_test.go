package dataplane

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/baggage"
)

// TestLaneHealthWindow: a lane version's health counts the requests of the
// last window only, forgets what it counted under another window (a
// reload changed it), and never counts a bucket from the future.
func TestLaneHealthWindow(t *testing.T) {
	var h laneHealth
	t0 := time.Hour
	type step struct {
		at       time.Duration // after t0
		window   time.Duration
		failed   bool
		requests int // the window's, after this one
		failures int
	}
	for i, s := range []step{
		{0, 10 * time.Second, true, 1, 1},
		{time.Second, 10 * time.Second, false, 2, 1},
		{9 * time.Second, 10 * time.Second, true, 3, 2},
		{12 * time.Second, 10 * time.Second, false, 2, 1},         // the first two have left the window
		{25 * time.Second, 10 * time.Second, false, 1, 0},         // all of them have
		{26 * time.Second, 30 * time.Second, false, 1, 0},         // a new window: counted afresh
		{time.Hour, 30 * time.Second, false, 1, 0},                // an hour later
		{time.Hour + time.Second, time.Second, true, 1, 1},        // a shorter window: its buckets are other slots
		{time.Hour + 2*time.Second, 30 * time.Second, true, 1, 1}, // and back: nothing from the short window's slots
	} {
		n, f := h.record(t0+s.at, s.window, s.failed)
		if n != s.requests || f != s.failures {
			t.Fatalf("step %d (+%s, window %s): %d requests, %d failed; want %d, %d", i, s.at, s.window, n, f, s.requests, s.failures)
		}
	}
}

// TestWithLaneWithinLimits: the lane's member joins a client's baggage
// first in the header, and the header stays within W3C Baggage's limits
// (64 members, 8,192 bytes), which a client's baggage at the limits would
// otherwise push it past: peers refuse such a header whole, or keep the
// first 64 members, which might not include the lane.
func TestWithLaneWithinLimits(t *testing.T) {
	lane, err := baggage.NewMemberRaw("wasmesh-lane", "v2")
	if err != nil {
		t.Fatal(err)
	}
	members := func(n, size int) string {
		var ms []string
		for i := range n {
			ms = append(ms, fmt.Sprintf("k%02d=%s", i, strings.Repeat("v", size)))
		}
		return strings.Join(ms, ",")
	}
	for _, tc := range []struct {
		name, client string
		wantMembers  int
	}{
		{"none", "", 1},
		{"a few", "a=1,b=2", 3},
		{"64 members", members(64, 1), 64},
		{"one of 8,180 bytes", "k=" + strings.Repeat("v", 8178), 1},
		{"8,189 bytes of 26 members", members(26, 310), 26},
		{"the lane carried already", "wasmesh-lane=other,a=1", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bag, err := baggage.Parse(tc.client)
			if err != nil {
				t.Fatal(err)
			}
			got, header, err := withLane(bag, lane)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := baggage.Parse(header)
			switch {
			case err != nil:
				t.Fatalf("the header does not parse: %v", err)
			case !strings.HasPrefix(header, "wasmesh-lane=v2"):
				t.Errorf("the header does not start with the lane: %.60q", header)
			case len(header) > maxBaggageBytes || parsed.Len() > maxBaggageMembers:
				t.Errorf("the header is past the limits: %d bytes, %d members", len(header), parsed.Len())
			case parsed.Len() != tc.wantMembers || got.Len() != tc.wantMembers:
				t.Errorf("%d members in the header, %d in the baggage; want %d", parsed.Len(), got.Len(), tc.wantMembers)
			case got.Member("wasmesh-lane").Value() != "v2":
				t.Errorf("the baggage's lane: %q", got.Member("wasmesh-lane").Value())
			}
		})
	}
}

// TestRequestSize: a Request is allocated for every request; past 512
// bytes it takes the next size class, 576 (its fields are ordered to fit).
func TestRequestSize(t *testing.T) {
	if n := unsafe.Sizeof(Request{}); n > 512 {
		t.Errorf("a Request is %d bytes, over 512", n)
	}
}
