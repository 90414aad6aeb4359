package component

import "fmt"

// handleTable is an instance's table of resource handles (CanonicalABI.md,
// the instance's handles): index 0 is never a handle; freed indices are
// reused.
type handleTable struct {
	entries []handle
	free    []uint32
}

type handle struct {
	live     bool
	own      bool
	resource int
	rep      uint32
}

// maxHandles bounds an instance's handle table.
const maxHandles = 1 << 20

// keptHandles is the most entries an emptied table keeps room for: a
// request that made a million handles does not leave an idle instance
// holding their room (16 MiB) for the next.
const keptHandles = 4096

// reset empties the table, index 0 free again.
func (t *handleTable) reset() {
	if cap(t.entries) > keptHandles {
		t.entries, t.free = nil, nil
		return
	}
	t.entries, t.free = t.entries[:0], t.free[:0]
}

func (t *handleTable) add(h handle) (uint32, error) {
	h.live = true
	if n := len(t.free); n > 0 {
		i := t.free[n-1]
		t.free = t.free[:n-1]
		t.entries[i] = h
		return i, nil
	}
	if len(t.entries) > maxHandles {
		return 0, fmt.Errorf("canonical ABI: more than %d handles", maxHandles)
	}
	if len(t.entries) == 0 {
		t.entries = append(t.entries, handle{}) // index 0
	}
	t.entries = append(t.entries, h)
	return uint32(len(t.entries) - 1), nil
}

func (t *handleTable) get(i uint32, resource int) (*handle, error) {
	if i == 0 || int(i) >= len(t.entries) || !t.entries[i].live {
		return nil, fmt.Errorf("canonical ABI: handle %d is not in the table (never made, dropped, or owned and given away: "+
			"a call that takes an own handle consumes it, as response-outparam.set does its outparam)", i)
	}
	h := &t.entries[i]
	if h.resource != resource {
		return nil, fmt.Errorf("canonical ABI: handle %d is of another resource type", i)
	}
	return h, nil
}

func (t *handleTable) remove(i uint32) {
	t.entries[i] = handle{}
	t.free = append(t.free, i)
}

// LiftOwn takes handle i out of the table: the callee owns the resource.
func (t *handleTable) LiftOwn(i uint32, resource int) (uint32, error) {
	h, err := t.get(i, resource)
	if err != nil {
		return 0, err
	}
	if !h.own {
		return 0, fmt.Errorf("canonical ABI: handle %d is borrowed, not owned", i)
	}
	rep := h.rep
	t.remove(i)
	return rep, nil
}

// LiftBorrow reads handle i for the length of a call.
func (t *handleTable) LiftBorrow(i uint32, resource int) (uint32, error) {
	h, err := t.get(i, resource)
	if err != nil {
		return 0, err
	}
	return h.rep, nil
}

// LowerOwn gives the guest a new owned handle to rep.
func (t *handleTable) LowerOwn(rep uint32, resource int) (uint32, error) {
	return t.add(handle{own: true, resource: resource, rep: rep})
}

// LowerBorrow gives the guest a borrowed handle to rep.
func (t *handleTable) LowerBorrow(rep uint32, resource int) (uint32, error) {
	return t.add(handle{resource: resource, rep: rep})
}

// rep is resource.rep: the representation behind handle i.
func (t *handleTable) rep(i uint32, resource int) (uint32, error) {
	h, err := t.get(i, resource)
	if err != nil {
		return 0, err
	}
	return h.rep, nil
}

// drop is resource.drop: handle i leaves the table; own says whether it
// owned the resource (whose destructor then runs).
func (t *handleTable) drop(i uint32, resource int) (rep uint32, own bool, err error) {
	h, err := t.get(i, resource)
	if err != nil {
		return 0, false, err
	}
	rep, own = h.rep, h.own
	t.remove(i)
	return rep, own, nil
}
