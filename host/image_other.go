//go:build !linux

package host

import "time"

// Without memfd and a page map, an image is a byte slice and a reset copies
// all of it back.

type image struct{ view []byte }

func newImage(content []byte) (*image, error) { return &image{view: content}, nil }

func (img *image) size() uint64 { return uint64(len(img.view)) }
func (img *image) ref()         {}
func (img *image) unref()       {}
func (img *image) close()       {}

func (img *image) trim(time.Time) {}

func (img *image) spares() int { return 0 }

type cowMemory struct {
	img     *image
	buf     []byte
	size    uint64
	ceiling uint64
}

func newCowMemory(img *image, ceiling uint64) (*cowMemory, error) {
	m := &cowMemory{img: img, buf: append([]byte(nil), img.view...), ceiling: max(ceiling, img.size())}
	return m, nil
}

func (m *cowMemory) Reallocate(size uint64) []byte {
	if size > m.ceiling {
		return nil
	}
	if size > uint64(len(m.buf)) {
		m.buf = append(m.buf, make([]byte, size-uint64(len(m.buf)))...)
	}
	m.size = size
	return m.buf[:size]
}

func (m *cowMemory) rebase(img *image) error {
	m.img = img
	return nil
}

func (m *cowMemory) Free() { m.buf = nil }

func (m *cowMemory) reset() {
	n := copy(m.buf, m.img.view)
	clear(m.buf[n:])
}

func (m *cowMemory) resetAt(int64, bool) { m.reset() }

// pageFaults is not counted off Linux: false.
func pageFaults() (int64, bool) { return 0, false }
