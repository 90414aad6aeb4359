package component

import (
	"strings"
	"testing"
)

// TestHandleTable: handles a guest gets wrong are errors, never another
// resource's representation.
func TestHandleTable(t *testing.T) {
	var h handleTable
	own, _ := h.LowerOwn(40, 1)
	borrow, _ := h.LowerBorrow(41, 1)
	if own == 0 || borrow == own {
		t.Fatalf("handles %d and %d", own, borrow)
	}
	if rep, err := h.LiftBorrow(own, 1); err != nil || rep != 40 {
		t.Errorf("LiftBorrow(own) = %d, %v", rep, err)
	}
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"handle 0", func() error { _, err := h.LiftOwn(0, 1); return err }, "handle 0 is not in the table"},
		{"out of range", func() error { _, err := h.LiftOwn(99, 1); return err }, "handle 99 is not in the table"},
		{"other resource type", func() error { _, err := h.LiftOwn(own, 2); return err }, "of another resource type"},
		{"own of a borrow", func() error { _, err := h.LiftOwn(borrow, 1); return err }, "borrowed, not owned"},
	} {
		if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if rep, err := h.LiftOwn(own, 1); err != nil || rep != 40 {
		t.Fatalf("LiftOwn = %d, %v", rep, err)
	}
	if _, err := h.LiftOwn(own, 1); err == nil {
		t.Error("a handle lifted as own is still in the table")
	}
	if _, own2, err := h.drop(borrow, 1); err != nil || own2 {
		t.Errorf("drop(borrow) = own %v, %v", own2, err)
	}
	if again, _ := h.LowerOwn(50, 1); again != borrow && again != own {
		t.Errorf("freed handles are not reused: got %d", again)
	}
}

// TestTablesGiveRoomBack: a reset instance does not keep the room of the
// handles and host objects a request made by the million (an idle
// instance of a 16 MiB service held 200 MB so), but keeps a small one's.
func TestTablesGiveRoomBack(t *testing.T) {
	for _, n := range []int{10, 100_000} {
		var h handleTable
		var o objectTable
		for i := range n {
			if _, err := h.LowerOwn(uint32(i+1), 1); err != nil {
				t.Fatal(err)
			}
			o.add(i)
		}
		h.reset()
		o.reset()
		if kept := cap(h.entries) > 0; kept != (n <= keptHandles) {
			t.Errorf("%d handles: after reset the table keeps room for %d", n, cap(h.entries))
		}
		if o.high != nil {
			t.Errorf("%d objects: after reset the map of the later ones is kept (%d)", n, len(o.high))
		}
		if i, err := h.LowerOwn(7, 1); err != nil || i != 1 {
			t.Errorf("%d handles: after reset the first handle is %d, %v; want 1", n, i, err)
		}
	}
}
