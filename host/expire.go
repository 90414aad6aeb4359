package host

import "time"

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
