package host

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
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
	img := testImage(t, imgPages)
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
				m.reset()
				checkImage(t, "reset", buf, img)
				if scan && noPagemapScan.Load() {
					t.Skip("the kernel refused PAGEMAP_SCAN (before Linux 6.7): the page map was read instead")
				}
			})
		}
	}
}

// TestCowMemoryResetAfterReset: a reset that finds the process has taken no
// page fault since the page map was last read copies back the pages found
// written then, without reading it again; any write to a page that was not
// yet written since the memory was made is a fault, so it reads the page
// map again (the kernel's own writes too: into the memory by read(2), and
// by get_user_pages, whose faults Linux counts since 5.9). Each step writes
// somewhere, resets, and checks every byte.
func TestCowMemoryResetAfterReset(t *testing.T) {
	const imgPages, small, big = 4, 8, 16 // OS pages: the image, then two memory sizes
	img := testImage(t, imgPages)
	m, err := newCowMemory(img, big*osPage)
	if err != nil {
		t.Fatal(err)
	}
	defer m.unmap()
	if _, ok := pageFaults(); !ok {
		t.Skip("getrusage refused: every reset reads the page map")
	}
	check := func(step string) {
		t.Helper()
		checkImage(t, step, m.buf[:big*osPage], img)
	}
	// faultElsewhere takes a page fault outside the memory, as the Go heap
	// growing would.
	faultElsewhere := func() {
		other, err := unix.Mmap(-1, 0, osPage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			t.Fatal(err)
		}
		other[0] = 1
		_ = unix.Munmap(other)
	}
	buf := m.Reallocate(small * osPage)
	buf[1*osPage] = 0xee // in the image
	buf[6*osPage] = 0xee // past it
	m.reset()
	check("first writes")

	// The same pages again: writing them takes no fault (counted on this
	// test's own thread, which nothing else runs on; not under the race
	// detector, whose shadow memory faults), and a reset that finds
	// the process's count where its last look left it copies back without
	// looking. (With the process's real count, a fault anywhere in the test
	// process, another test's or the garbage collector's, makes one look
	// again: those resets are checked for their bytes only.)
	runtime.LockOSThread()
	looks := m.looks
	for i := range 20 {
		before := threadFaults(t)
		buf[1*osPage+9] = 0xdd
		buf[6*osPage+9] = 0xdd
		if after := threadFaults(t); after != before && !raceEnabled {
			t.Errorf("writing pages written before took %d page faults", after-before)
		}
		if i%2 == 0 {
			m.resetAt(m.faults, true)
		} else {
			m.reset()
			looks = m.looks // a real count: looked or not, the bytes are checked
		}
		check("the same pages again")
		if i%2 == 0 && m.looks != looks {
			t.Errorf("a reset with no fault since the last look read the page map")
			looks = m.looks
		}
	}
	runtime.UnlockOSThread()

	// A goroutine on a thread of its own writes for the step "from another
	// thread", the test's goroutine being locked to its own.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	writeFrom, written := make(chan int), make(chan struct{})
	defer close(writeFrom)
	go func() {
		runtime.LockOSThread()
		for off := range writeFrom {
			buf[off] = 0xcc
			written <- struct{}{}
		}
	}()
	steps := []struct {
		name  string
		write func()
	}{
		{"a page not written before", func() { buf[2*osPage] = 0xcc }},
		{"a page only read before", func() { _ = buf[3*osPage]; m.reset(); buf[3*osPage] = 0xcc }},
		{"from another thread", func() { writeFrom <- 5*osPage + 1; <-written }},
		{"by the kernel, read(2) into the memory", func() {
			var p [2]int
			if err := unix.Pipe(p[:]); err != nil {
				t.Fatal(err)
			}
			defer unix.Close(p[0])
			defer unix.Close(p[1])
			_, _ = unix.Write(p[1], bytes.Repeat([]byte{0xcc}, 100))
			if n, err := unix.Read(p[0], buf[7*osPage:7*osPage+100]); n != 100 || err != nil {
				t.Fatalf("read(2) = %d, %v", n, err)
			}
		}},
		{"by the kernel's get_user_pages (process_vm_writev to itself)", func() {
			src := bytes.Repeat([]byte{0xcc}, 64)
			local := []unix.Iovec{{Base: &src[0], Len: uint64(len(src))}}
			remote := []unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(&buf[4*osPage])), Len: len(src)}}
			if n, err := unix.ProcessVMWritev(os.Getpid(), local, remote, 0); n != len(src) || err != nil {
				t.Logf("process_vm_writev = %d, %v: the step writes nothing", n, err)
			}
		}},
		{"past the memory's size, after it grew", func() {
			buf = m.Reallocate(big * osPage)
			buf[12*osPage] = 0xcc
		}},
		// The grown memory's pages stay its own: a reset after a fault
		// elsewhere must still look past the current size, or a later
		// growth could write them again unnoticed.
		{"shrunk back, a fault elsewhere", func() {
			buf = m.Reallocate(small * osPage)
			faultElsewhere()
		}},
		{"grown again, the page written before", func() {
			buf = m.Reallocate(big * osPage)
			buf[12*osPage+1] = 0xcc
		}},
	}
	for _, st := range steps {
		st.write()
		m.reset()
		check(st.name)
	}
}

// testImage is an image of pages OS pages: every third page all zeros,
// the others with no two bytes in a row alike.
func testImage(t testing.TB, pages int) *image {
	t.Helper()
	content := make([]byte, pages*osPage)
	for i := range content {
		if i/osPage%3 != 1 { // every third page all zeros, which a reset clears
			content[i] = byte(i*7 + 1)
		}
	}
	img, err := newImage(content)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(img.close)
	return img
}

// checkImage fails unless buf is img's content, zeros past it.
func checkImage(t *testing.T, step string, buf []byte, img *image) {
	t.Helper()
	for i, b := range buf {
		want := byte(0)
		if i < len(img.view) {
			want = img.view[i]
		}
		if b != want {
			t.Fatalf("%s: byte %d (page %d) = %d after reset, want %d", step, i, i/osPage, b, want)
		}
	}
}

// threadFaults is the page faults the calling thread has taken.
func threadFaults(t *testing.T) int64 {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt + ru.Majflt
}

// TestImageZeroPages: the image knows which of its pages are all zeros
// (a reset clears those rather than copying them).
func TestImageZeroPages(t *testing.T) {
	const pages = 130 // three words of the bitmap
	img := testImage(t, pages)
	for p := range pages {
		if want := zeroPage(img.view[p*osPage : (p+1)*osPage]); img.zeroAt(p) != want {
			t.Errorf("page %d: zeroAt %v, want %v", p, img.zeroAt(p), want)
		}
	}
}

// TestSharedFaultReading: memories put back idle one after another are
// reset with one reading of the fault count when it began after each was
// put back (faultsSince), and each is the image again: one whose last run
// wrote a page it had not written before (a fault before its mark) looks
// at the page map again though the reading was taken for another; a
// reading that began before a memory's mark is never used for it.
func TestSharedFaultReading(t *testing.T) {
	if _, ok := pageFaults(); !ok {
		t.Skip("getrusage refused: every reset reads the page map")
	}
	const pages = 8
	img := testImage(t, 4)
	mems := make([]*cowMemory, 3)
	bufs := make([][]byte, len(mems))
	for i := range mems {
		m, err := newCowMemory(img, pages*osPage)
		if err != nil {
			t.Fatal(err)
		}
		defer m.unmap()
		mems[i], bufs[i] = m, m.Reallocate(pages*osPage)
	}
	readings := func() uint64 { return faultReadings.begun.Load() }
	for round, written := range [][]int{ // the page each memory's run writes
		{1, 1, 1}, // new to each: a fault each
		{1, 1, 1}, // none new
		{1, 5, 1}, // new to the second
		{6, 1, 1}, // new to the first
		{1, 1, 7}, // new to the last
		{2, 2, 2}, // new to each
		{2, 2, 2}, // none new
		{3, 1, 1}, // new to the first
		{1, 1, 1}, // none new
		{1, 1, 0}, // new to the last
		{4, 4, 4}, // new to each, past the image
		{4, 4, 4}, // none new
		{6, 6, 6}, // new to the second and the last
		{7, 7, 7}, // new to the first and the second
	} {
		var marks [3]uint64
		for i, p := range written {
			bufs[i][p*osPage+round] = 0xcc // the run's write
			marks[i] = faultMark()         // put back idle
		}
		before := readings()
		for i := len(mems) - 1; i >= 0; i-- { // taken newest first, as idleSet.take does
			mems[i].resetAt(faultsSince(marks[i]))
			checkImage(t, fmt.Sprintf("round %d, memory %d", round, i), bufs[i], img)
		}
		if n := readings() - before; n != 1 {
			t.Errorf("round %d: %d readings for three memories put back before the first, want 1", round, n)
		}
	}

	// A reading that began before a memory was put back does not serve it:
	// its run may have written a new page since.
	mark := faultMark()
	faultsSince(mark)        // a reading after mark: the last
	bufs[0][5*osPage] = 0xee // a page the first memory never wrote: a fault
	before := readings()
	mems[0].resetAt(faultsSince(faultMark()))
	if readings() == before {
		t.Error("a reading that began before the mark served it")
	}
	checkImage(t, "written after the last reading", bufs[0], img)
}
