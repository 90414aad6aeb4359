package host

import "github.com/tetratelabs/wazero/experimental"

// limitedAllocator gives each instance a linear memory that may not grow past
// limit bytes: memory.grow beyond it returns -1 in the guest, which the guest's
// allocator reports as out of memory. The host is never at risk.
type limitedAllocator struct{ limit uint64 }

func (a limitedAllocator) Allocate(capacity, max uint64) experimental.LinearMemory {
	return newLinearMemory(capacity, min(max, a.limit))
}
