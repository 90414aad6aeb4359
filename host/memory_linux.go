package host

import (
	"sync"
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapMemory reserves the whole ceiling up front as one anonymous private
// mapping. Pages cost nothing until touched, come zeroed from the kernel, live
// outside the Go heap (so the garbage collector never scans or zeroes them),
// and the memory never moves when it grows.
//
// Freed mappings are kept for the next instance of the same ceiling, zeroed
// so that the next guest reads zeros, as in a fresh mapping: up to
// clearInPlace bytes by clearing them (the pages stay mapped, so the next
// guest takes no page faults), beyond by returning the pages to the kernel
// with MADV_DONTNEED. Both are cheaper than unmapping and mapping again.
type mmapMemory struct {
	buf  []byte
	used uint64
}

// spare holds freed mappings by ceiling, at most maxSpare of each.
var spare = struct {
	sync.Mutex
	m map[uint64][][]byte
}{m: map[uint64][][]byte{}}

const maxSpare = 64

// clearInPlace is the most memory a freed instance zeroes itself; beyond it
// the pages go back to the kernel.
const clearInPlace = 1 << 20

func newLinearMemory(_, ceiling uint64) experimental.LinearMemory {
	if ceiling == 0 {
		return &mmapMemory{}
	}
	spare.Lock()
	if free := spare.m[ceiling]; len(free) > 0 {
		buf := free[len(free)-1]
		spare.m[ceiling] = free[:len(free)-1]
		spare.Unlock()
		return &mmapMemory{buf: buf}
	}
	spare.Unlock()
	buf, err := syscall.Mmap(-1, 0, int(ceiling), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return &sliceMemory{ceiling: ceiling}
	}
	return &mmapMemory{buf: buf}
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	m.used = max(m.used, size)
	return m.buf[:size]
}

func (m *mmapMemory) Free() {
	buf := m.buf
	if buf == nil {
		return
	}
	m.buf = nil
	switch {
	case m.used == 0:
	case m.used <= clearInPlace:
		// Zeroing a small memory here is cheaper than dropping its pages and
		// taking a page fault on each of them in the next guest.
		clear(buf[:m.used])
	case syscall.Madvise(buf[:m.used], syscall.MADV_DONTNEED) != nil:
		_ = syscall.Munmap(buf)
		return
	}
	ceiling := uint64(len(buf))
	spare.Lock()
	if len(spare.m[ceiling]) < maxSpare {
		spare.m[ceiling] = append(spare.m[ceiling], buf)
		buf = nil
	}
	spare.Unlock()
	if buf != nil {
		_ = syscall.Munmap(buf)
	}
}
