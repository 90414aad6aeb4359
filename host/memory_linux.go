package host

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapMemory reserves the whole ceiling up front as one anonymous private
// mapping. Pages cost nothing until touched, come zeroed from the kernel, live
// outside the Go heap (so the garbage collector never scans or zeroes them),
// and the memory never moves when it grows.
type mmapMemory struct{ buf []byte }

func newLinearMemory(_, ceiling uint64) experimental.LinearMemory {
	if ceiling == 0 {
		return &mmapMemory{}
	}
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
	return m.buf[:size]
}

func (m *mmapMemory) Free() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}
