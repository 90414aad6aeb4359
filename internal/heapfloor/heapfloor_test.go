package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		floor, live, scan uint64
		want              int
	}{
		{32 * mib, 0, 0, 800},                    // only the runtime's minimum heap: 4 MiB × 8
		{32 * mib, 1 * mib, 1 * mib, 800},        // capped by the minimum heap, not 3,100
		{32 * mib, 3 * mib, 3 * mib, 800},        // the minimum heap again: 3 + 3 × 9.66 ≈ 32 would be 966
		{32 * mib, 8 * mib, 8 * mib, 300},        // 8 + 8 × 3 = 32
		{32 * mib, 4 * mib, 7 * mib, 400},        // stacks and globals scanned too: 4 + 7 × 4 = 32
		{32 * mib, 4 * mib, 24 * mib, 116},       // stacks far above the heap: 4 + 24 × 1.16 ≈ 32
		{32 * mib, 16 * mib, 16 * mib, 100},      // the default's goal is the floor already
		{32 * mib, 8 * mib, 40 * mib, 100},       // and past it
		{32 * mib, 200 * mib, 210 * mib, 100},    // a large live heap: Go's default
		{2 * mib, 1 * mib, 1 * mib, 100},         // a floor under the runtime's minimum heap
		{64 * mib, 4 * mib, 4 * mib, 1500},       // 4 + 4 × 15 = 64
		{64 * mib, 63 * mib, 63 * mib, 100},      // never below the default
		{MaxFloor, 1 * mib, 1 * mib, 26214400},   // the largest floor: the minimum heap caps it
		{MaxFloor, 512 * mib, 512 * mib, 204700}, // (1 TiB − 512 MiB) / 512 MiB
	} {
		if got := Percent(tc.floor, tc.live, tc.scan); got != tc.want {
			t.Errorf("Percent(%d MiB, %d MiB, %d MiB) = %d, want %d", tc.floor/mib, tc.live/mib, tc.scan/mib, got, tc.want)
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

// gogc is GOGC as the runtime has it now.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitGOGC collects until GOGC is what want says (the tuner runs on the
// finalizer goroutine after a collection), or fails after 5 s.
func waitGOGC(t *testing.T, what string, want func(int) bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !want(gogc()); {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d: want %s", gogc(), what)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStart: with a floor the collector runs far less often over the same
// garbage (the test's live heap is a few hundred KiB), and stop sets GOGC
// back.
func TestStart(t *testing.T) {
	const garbage = 512 << 20
	prev := debug.SetGCPercent(150)
	defer debug.SetGCPercent(prev)
	without := cycles(garbage) // GOGC=150: a goal of 6 MiB at least

	stop := Start(128 << 20)
	with := cycles(garbage)
	stop()
	if got := gogc(); got != 150 {
		t.Errorf("GOGC after stop = %d, want 150 as before Start", got)
	}
	t.Logf("collections over %d MiB of garbage: %d without a floor, %d with one of 128 MiB", garbage>>20, without, with)
	if with == 0 || with*4 > without {
		t.Errorf("%d collections with the floor against %d without: want at least 4 times fewer", with, without)
	}
}

// TestStartFollowsTheHeap: after each collection GOGC follows what is live
// — the default while 96 MiB are held against a floor of 64 MiB, higher
// once they are let go — and after stop it is left as set.
func TestStartFollowsTheHeap(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	held := make([][]byte, 96)
	for i := range held {
		held[i] = make([]byte, 1<<20)
		for j := range held[i] {
			held[i][j] = byte(j) // resident, and counted live
		}
	}
	stop := Start(64 << 20)
	defer stop()
	waitGOGC(t, "100 while 96 MiB are live against a floor of 64 MiB", func(p int) bool { return p == DefaultPercent })
	runtime.KeepAlive(held)
	held = nil
	waitGOGC(t, "above 100 once the heap is let go", func(p int) bool { return p > DefaultPercent })

	stop()
	debug.SetGCPercent(150)
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := gogc(); got != 150 {
		t.Errorf("GOGC %d after stop and collections: want 150 as set, the tuner stopped", got)
	}
}

func TestStartZero(t *testing.T) {
	prev := debug.SetGCPercent(120)
	defer debug.SetGCPercent(prev)
	stop := Start(0)
	runtime.GC()
	stop()
	if got := gogc(); got != 120 {
		t.Errorf("Start(0) changed GOGC to %d", got)
	}
}
