package component

import "testing"

// TestObjectTable: reps count up from 1 past the slice into the map, a
// dropped rep finds nothing (and is not given again), the live count
// follows adds and drops, and reset starts again from 1.
func TestObjectTable(t *testing.T) {
	var tab objectTable
	const n = maxLowReps + 100
	for i := 1; i <= n; i++ {
		if rep := tab.add(i); rep != uint32(i) {
			t.Fatalf("add %d: rep %d", i, rep)
		}
	}
	for _, rep := range []uint32{1, 2, maxLowReps, maxLowReps + 1, n} {
		if got := tab.get(rep); got != int(rep) {
			t.Errorf("get(%d) = %v", rep, got)
		}
	}
	for _, rep := range []uint32{0, n + 1, 1 << 31} {
		if got := tab.get(rep); got != nil {
			t.Errorf("get(%d) = %v, want nil", rep, got)
		}
	}
	tab.drop(2)
	tab.drop(2) // twice: counted once
	tab.drop(maxLowReps + 1)
	tab.drop(n + 5) // never given
	if tab.get(2) != nil || tab.get(maxLowReps+1) != nil || tab.live != n-2 {
		t.Errorf("after drops: get(2) %v, get(%d) %v, live %d (want %d)", tab.get(2), maxLowReps+1, tab.get(maxLowReps+1), tab.live, n-2)
	}
	if rep := tab.add("next"); rep != n+1 {
		t.Errorf("a rep after drops: %d, want %d (reps are not reused)", rep, n+1)
	}
	tab.reset()
	if tab.live != 0 || tab.get(1) != nil || tab.get(maxLowReps+1) != nil {
		t.Errorf("after reset: live %d, get(1) %v", tab.live, tab.get(1))
	}
	if rep := tab.add("first"); rep != 1 || tab.get(1) != "first" {
		t.Errorf("after reset, add gave rep %d", rep)
	}
}
