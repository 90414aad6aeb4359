package host

import (
	"fmt"
	"testing"
)

// TestCowMemoryFreeTwice: a memory freed twice is a spare once, so two new
// memories never share a buffer (which would let one instance see
// another's writes).
func TestCowMemoryFreeTwice(t *testing.T) {
	img, err := newImage(make([]byte, 2*pageSize))
	if err != nil {
		t.Fatal(err)
	}
	defer img.close()
	m, err := newCowMemory(img, 4*pageSize)
	if err != nil {
		t.Fatal(err)
	}
	m.Reallocate(2 * pageSize)[0] = 1
	m.Free()
	m.Free()
	if n := img.spares(); n != 1 {
		t.Fatalf("%d spares after two Frees of one memory, want 1", n)
	}
	a, _ := newCowMemory(img, 4*pageSize)
	b, _ := newCowMemory(img, 4*pageSize)
	if &a.buf[0] == &b.buf[0] {
		t.Fatal("two memories share one buffer")
	}
	if got := a.Reallocate(2 * pageSize)[0]; got != 0 {
		t.Fatalf("a recycled memory starts with %d, want the image's 0", got)
	}
	a.Free()
	b.Free()
}

// TestCowMemoryReset: whatever pages a run wrote (in the image or past it,
// alone or in runs, more runs than PAGEMAP_SCAN returns at once), and
// whatever it only read, reset makes the memory the image again, zeros past
// it: by PAGEMAP_SCAN and by reading the page map.
func TestCowMemoryReset(t *testing.T) {
	const imgPages, memPages = 3 * pageSize / osPage, 12 * pageSize / osPage
	content := make([]byte, imgPages*osPage)
	for i := range content {
		content[i] = byte(i*7 + 1)
	}
	img, err := newImage(content)
	if err != nil {
		t.Fatal(err)
	}
	defer img.close()
	every := func(step int) (pages []int) {
		for p := 0; p < memPages; p += step {
			pages = append(pages, p)
		}
		return pages
	}
	for _, tc := range []struct {
		name  string
		pages []int // written; the others are read
	}{
		{"none", nil},
		{"first and last", []int{0, memPages - 1}},
		{"in and past the image", []int{1, 2, imgPages - 1, imgPages, imgPages + 3}},
		{"every other page", every(2)}, // 96 runs: more than one scan returns
		{"all", every(1)},
	} {
		for _, scan := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/scan=%v", tc.name, scan), func(t *testing.T) {
				noPagemapScan.Store(!scan)
				defer noPagemapScan.Store(false)
				m, err := newCowMemory(img, memPages*osPage)
				if err != nil {
					t.Fatal(err)
				}
				defer m.unmap()
				buf := m.Reallocate(memPages * osPage)
				var sum byte
				for i := 0; i < len(buf); i += osPage {
					sum += buf[i] // read every page: reads must not count as writes
				}
				_ = sum
				for _, p := range tc.pages {
					buf[p*osPage+5] ^= 0xff
				}
				m.reset(memPages * osPage)
				for i, b := range buf {
					want := byte(0)
					if i < len(content) {
						want = content[i]
					}
					if b != want {
						t.Fatalf("byte %d (page %d) = %d after reset, want %d", i, i/osPage, b, want)
					}
				}
				if scan && noPagemapScan.Load() {
					t.Skip("the kernel refused PAGEMAP_SCAN (before Linux 6.7): the page map was read instead")
				}
			})
		}
	}
}
