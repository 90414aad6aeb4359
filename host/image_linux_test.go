package host

import "testing"

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
