package host

import (
	"sync"
	"time"

	"github.com/wasmesh/wasmesh/internal/clock"
)

// expire removes from *list, in place, the items whose time (as since says)
// is before cutoff, and returns them.
func expire[T any](list *[]T, cutoff time.Time, since func(T) time.Time) (old []T) {
	kept := (*list)[:0]
	for _, v := range *list {
		if since(v).Before(cutoff) {
			old = append(old, v)
		} else {
			kept = append(kept, v)
		}
	}
	clear((*list)[len(kept):])
	*list = kept
	return old
}

// idleSet holds the idle instances of a pool for reuse, the most recently
// put back last, each with the faultMark taken as it was put back: an
// instance is reset when it is taken (faults.go). Safe for concurrent use.
type idleSet[T any] struct {
	mu    sync.Mutex
	items []idleItem[T]
}

type idleItem[T any] struct {
	v     T
	since time.Time // when it was put back
	mark  uint64    // faultMark then
}

// take removes and returns an idle item and its faultMark, false when
// none is idle: the most recently put back of those that the last fault
// reading (lastFaultReading) began after, whose reset it serves, else the
// most recently put back. Items are in the order of their marks.
func (s *idleSet[T]) take() (v T, mark uint64, ok bool) {
	last := lastFaultReading()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.items)
	if n == 0 {
		return v, 0, false
	}
	i := n - 1
	for i >= 0 && s.items[i].mark >= last {
		i--
	}
	if i < 0 {
		i = n - 1
	}
	it := s.items[i]
	copy(s.items[i:], s.items[i+1:])
	s.items[n-1] = idleItem[T]{}
	s.items = s.items[:n-1]
	return it.v, it.mark, true
}

// put keeps v, reporting false (v not kept) when max are idle already.
func (s *idleSet[T]) put(v T, max int) bool {
	now := clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.items) >= max {
		return false
	}
	s.items = append(s.items, idleItem[T]{v, now, faultMark()})
	return true
}

// expire removes and returns those put back before cutoff.
func (s *idleSet[T]) expire(cutoff time.Time) []T {
	s.mu.Lock()
	old := expire(&s.items, cutoff, func(it idleItem[T]) time.Time { return it.since })
	s.mu.Unlock()
	return values(old)
}

// drain removes and returns them all.
func (s *idleSet[T]) drain() []T {
	s.mu.Lock()
	all := s.items
	s.items = nil
	s.mu.Unlock()
	return values(all)
}

func values[T any](items []idleItem[T]) []T {
	out := make([]T, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out
}

// len is how many are idle.
func (s *idleSet[T]) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}
