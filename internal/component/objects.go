package component

// objectTable keeps an instance's host objects by rep. Reps count up from
// 1 and are not reused until the table is emptied, so a stale rep finds
// nothing rather than another object. The first reps index a slice (a
// request makes a handful of objects, and a map's insert and delete cost
// more than the rest of a small host call); later ones, of an instance
// that makes many in one call, a map, so that what is kept stays in
// proportion to the objects alive.
type objectTable struct {
	low  []any          // reps 1 to len(low)
	high map[uint32]any // reps past maxLowReps
	next uint32         // the last rep given
	live int
}

// maxLowReps is how many reps the slice holds (a 32 KiB slice at most).
const maxLowReps = 2048

// add keeps v and returns its rep.
func (t *objectTable) add(v any) uint32 {
	t.next++
	t.live++
	if t.next <= maxLowReps {
		t.low = append(t.low, v)
		return t.next
	}
	if t.high == nil {
		t.high = map[uint32]any{}
	}
	t.high[t.next] = v
	return t.next
}

// get returns the object of rep, nil if none.
func (t *objectTable) get(rep uint32) any {
	if rep-1 < uint32(len(t.low)) { // rep 0 wraps around: none
		return t.low[rep-1]
	}
	if rep > maxLowReps {
		return t.high[rep]
	}
	return nil
}

// drop forgets the object of rep.
func (t *objectTable) drop(rep uint32) {
	if rep-1 < uint32(len(t.low)) {
		if t.low[rep-1] != nil {
			t.low[rep-1] = nil
			t.live--
		}
		return
	}
	if _, ok := t.high[rep]; ok && rep > maxLowReps {
		delete(t.high, rep)
		t.live--
	}
}

// reset forgets all objects; reps start from 1 again.
func (t *objectTable) reset() {
	clear(t.low)
	t.low = t.low[:0]
	t.high = nil // a map cleared keeps its room, as large as it ever was
	t.next, t.live = 0, 0
}
