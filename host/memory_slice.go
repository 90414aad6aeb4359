package host

// sliceMemory is a linear memory on the Go heap, used where mmap is not.
type sliceMemory struct {
	ceiling uint64
	buf     []byte
}

func (m *sliceMemory) Reallocate(size uint64) []byte {
	if size > m.ceiling {
		return nil
	}
	if size > uint64(cap(m.buf)) {
		grown := make([]byte, size, max(size, min(2*uint64(cap(m.buf)), m.ceiling)))
		copy(grown, m.buf)
		m.buf = grown
	}
	m.buf = m.buf[:size]
	return m.buf
}

func (m *sliceMemory) Free() { m.buf = nil }
