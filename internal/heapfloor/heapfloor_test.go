package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		floor, live uint64
		want        int
	}{
		{32 * mib, 0, 800},           // only the runtime's minimum heap: 4 MiB × 8
		{32 * mib, 1 * mib, 800},     // capped by the minimum heap, not 3,100
		{32 * mib, 3 * mib, 800},     // the minimum heap again: 3 + 3 × 9.66 ≈ 32 would be 966
		{32 * mib, 8 * mib, 300},     // 8 + 8 × 3 = 32
		{32 * mib, 16 * mib, 100},    // the default's goal is the floor already
		{32 * mib, 200 * mib, 100},   // a large live heap: Go's default
		{2 * mib, 1 * mib, 100},      // a floor under the runtime's minimum heap
		{64 * mib, 4 * mib, 1500},    // 4 + 4 × 15 = 64
		{64 * mib, 63 * mib, 100},    // never below the default
		{1 << 40, 1 * mib, 26214400}, // a 1 TiB floor: the minimum heap caps it still
		{1 << 40, 512 * mib, 204700}, // a 1 TiB floor: its own arithmetic
	} {
		if got := Percent(tc.floor, tc.live); got != tc.want {
			t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", tc.floor/mib, tc.live/mib, got, tc.want)
		}
	}
}

var sink []byte

// cycles counts the collections while n bytes of garbage are allocated.
func cycles(n int) uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	runtime.GC()
	metrics.Read(s)
	before := s[0].Value.Uint64()
	for range n / 4096 {
		sink = make([]byte, 4096)
	}
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// TestStart: with a floor the collector runs far less often over the same
// garbage (the test's live heap is a few hundred KiB), and stop sets GOGC
// back.
func TestStart(t *testing.T) {
	const garbage = 512 << 20
	prev := debug.SetGCPercent(150)
	defer debug.SetGCPercent(prev)
	without := cycles(garbage) // GOGC=150: one every 10 MiB or so

	stop := Start(128 << 20)
	with := cycles(garbage)
	stop()
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("GOGC after stop = %d, want 150 as before Start", got)
	}
	t.Logf("collections over %d MiB of garbage: %d without a floor, %d with one of 128 MiB", garbage>>20, without, with)
	if with == 0 || with*4 > without {
		t.Errorf("%d collections with the floor against %d without: want at least 4 times fewer", with, without)
	}
	if again := cycles(garbage); again*2 < without {
		t.Errorf("%d collections after stop against %d before Start: the floor is still there", again, without)
	}
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("GOGC after collections past stop = %d, want 150: the tuner went on", got)
	}
}

func TestStartZero(t *testing.T) {
	prev := debug.SetGCPercent(120)
	defer debug.SetGCPercent(prev)
	stop := Start(0)
	runtime.GC()
	stop()
	if got := debug.SetGCPercent(120); got != 120 {
		t.Errorf("Start(0) changed GOGC to %d", got)
	}
}
