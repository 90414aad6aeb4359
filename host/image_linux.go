package host

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A memory image is a module's linear memory as instantiation leaves it,
// kept in a memfd. Each reusable instance maps it copy-on-write
// (MAP_PRIVATE), so an instance starts with the image at no copying cost and
// the pages it writes become private copies. The kernel's page map says
// which pages those are (present, and no longer the file's), and a reset
// copies just those back from the image (or clears them, where the image
// has zeros: a stack, a heap not yet used): a request costs what it
// dirtied, not the size of the memory. Asking the kernel costs more than
// the copying (a system call and a walk of the page tables, 2 µs for the
// Rust hello's 32 pages); it is skipped when the process took no page
// fault since the last time it was asked, as reset explains.

const osPage = 4096

type image struct {
	fd   int
	view []byte // read-only shared mapping of the memfd: the pristine bytes
	// zero has bit p%64 of word p/64 set when page p is all zeros, which a
	// reset clears rather than copies (half the time: no page to read).
	zero []uint64
	refs atomic.Int32

	// spare are memories of closed instances, reset, for the next ones.
	mu     sync.Mutex
	spare  []*cowMemory
	closed bool
}

// maxSpareMemories is how many reset memories an image keeps.
const maxSpareMemories = 64

func newImage(content []byte) (*image, error) {
	if len(content) == 0 {
		img := &image{fd: -1}
		img.refs.Store(1)
		return img, nil
	}
	fd, err := unix.MemfdCreate("wasmesh-image", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memory image: memfd_create: %w", err)
	}
	fail := func(what string, err error) (*image, error) {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("memory image of %d bytes: %s: %w", len(content), what, err)
	}
	if err := unix.Ftruncate(fd, int64(len(content))); err != nil {
		return fail("ftruncate", err)
	}
	// Runs of zero pages are left holes: they read as zeros and take no
	// memory (a component's memory is mostly zeros past its heap).
	zero := make([]uint64, (len(content)/osPage+63)/64)
	for off := 0; off < len(content); {
		for off < len(content) && zeroPage(content[off:min(off+osPage, len(content))]) {
			if p := off / osPage; off+osPage <= len(content) {
				zero[p/64] |= 1 << (p % 64)
			}
			off += osPage
		}
		end := off
		for end < len(content) && !zeroPage(content[end:min(end+osPage, len(content))]) {
			end += osPage
		}
		end = min(end, len(content))
		for off < end {
			n, err := unix.Pwrite(fd, content[off:end], int64(off))
			if err != nil {
				return fail("write", err)
			}
			off += n
		}
	}
	view, err := unix.Mmap(fd, 0, len(content), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	img := &image{fd: fd, view: view, zero: zero}
	img.refs.Store(1)
	return img, nil
}

// zeroAt says page p of the image is all zeros.
func (img *image) zeroAt(p int) bool { return img.zero[p/64]&(1<<(p%64)) != 0 }

// zeroPage says b (at most a page) is all zeros.
func zeroPage(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

var zeros [osPage]byte

func (img *image) size() uint64 { return uint64(len(img.view)) }

func (img *image) ref() { img.refs.Add(1) }

// spares is how many reset memories the image keeps.
func (img *image) spares() int {
	img.mu.Lock()
	defer img.mu.Unlock()
	return len(img.spare)
}

// trim unmaps the spare memories freed before cutoff.
func (img *image) trim(cutoff time.Time) {
	img.mu.Lock()
	old := expire(&img.spare, cutoff, func(m *cowMemory) time.Time { return m.freedAt })
	img.mu.Unlock()
	for _, m := range old {
		m.unmap()
	}
}

// close unmaps the spare memories and drops the owner's reference.
func (img *image) close() {
	img.mu.Lock()
	spare := img.spare
	img.spare, img.closed = nil, true
	img.mu.Unlock()
	for _, m := range spare {
		m.unmap()
	}
	img.unref()
}

// unref releases one reference; the last closes the memfd.
func (img *image) unref() {
	if img.refs.Add(-1) != 0 || img.fd < 0 {
		return
	}
	_ = unix.Munmap(img.view)
	_ = unix.Close(img.fd)
}

// cowMemory is a reusable instance's linear memory: the whole ceiling
// reserved, its first image.size() bytes mapped privately from the image,
// the rest anonymous.
type cowMemory struct {
	buf  []byte
	img  *image
	size uint64 // the guest's current memory size
	high uint64 // the largest it has been: pages past size may be written
	// pm is the page map entries of the image's pages, and regions the
	// written ranges PAGEMAP_SCAN returns: buffers reused by reset.
	pm      []byte
	regions []pageRegion
	// written are the page runs the last look at the page map found
	// written, and faults the process's page fault count just before it;
	// known says they can be trusted (see reset).
	written []pageRun
	faults  int64
	known   bool
	looks   int // how many times reset read the page map, for tests
	// freedAt is when it became a spare; freed says it is one, so that a
	// second Free cannot put it among the spares twice.
	freedAt time.Time
	freed   bool
	// rebased says the memory was mapped onto its image after
	// instantiation (rebase): freed, it is unmapped, not kept as a spare,
	// since such instances start instantiation from zeros.
	rebased bool
}

func newCowMemory(img *image, ceiling uint64) (*cowMemory, error) {
	ceiling = max(ceiling, img.size())
	img.mu.Lock()
	for i := len(img.spare) - 1; i >= 0; i-- {
		if m := img.spare[i]; uint64(len(m.buf)) == ceiling {
			img.spare = append(img.spare[:i], img.spare[i+1:]...)
			img.mu.Unlock()
			m.freed = false
			return m, nil
		}
	}
	img.mu.Unlock()
	buf, err := unix.Mmap(-1, 0, int(ceiling), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("reserve %d bytes of memory: %w", ceiling, err)
	}
	// With transparent huge pages on "always", one write would make 512
	// pages dirty for the next reset to copy back.
	_ = unix.Madvise(buf, unix.MADV_NOHUGEPAGE)
	if n := img.size(); n > 0 {
		_, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(unsafe.Pointer(&buf[0])), uintptr(n),
			unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED, uintptr(img.fd), 0)
		if errno != 0 {
			_ = unix.Munmap(buf)
			return nil, fmt.Errorf("map the memory image: %w", errno)
		}
	}
	img.ref()
	return &cowMemory{buf: buf, img: img}, nil
}

// rebase makes img the memory's image, mapping it copy-on-write over the
// memory's first img.size() bytes, which must hold img's content already:
// the pages the memory had written there become the image's again.
func (m *cowMemory) rebase(img *image) error {
	n := img.size()
	if n > uint64(len(m.buf)) {
		return fmt.Errorf("an image of %d bytes does not fit a memory of %d", n, len(m.buf))
	}
	if n > 0 {
		_, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(unsafe.Pointer(&m.buf[0])), uintptr(n),
			unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED, uintptr(img.fd), 0)
		if errno != 0 {
			return fmt.Errorf("map the memory image: %w", errno)
		}
	}
	img.ref()
	m.img.unref()
	m.img = img
	m.written, m.known = m.written[:0], false
	m.rebased = true
	return nil
}

func (m *cowMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	m.size = size
	m.high = max(m.high, size)
	return m.buf[:size]
}

// Free resets the memory and keeps it for the image's next instance, or
// unmaps it when the image has enough spares or is closed.
func (m *cowMemory) Free() {
	if m.buf == nil || m.freed {
		return
	}
	m.freed = true
	if m.rebased {
		m.unmap()
		return
	}
	m.reset()
	m.size = 0
	m.freedAt = time.Now()
	img := m.img
	img.mu.Lock()
	if !img.closed && len(img.spare) < maxSpareMemories {
		img.spare = append(img.spare, m)
		m = nil
	}
	img.mu.Unlock()
	if m != nil {
		m.unmap()
	}
}

func (m *cowMemory) unmap() {
	_ = unix.Munmap(m.buf)
	m.buf = nil
	m.img.unref()
}

var pagemap = sync.OnceValues(func() (*os.File, error) { return os.Open("/proc/self/pagemap") })

// Page map entry bits (Documentation/admin-guide/mm/pagemap.rst).
const (
	pmPresent = 1 << 63
	pmSwapped = 1 << 62
	pmFile    = 1 << 61 // a file page or shared anonymous: still the image's
)

// reset makes the memory equal to the image again (zeros past its end),
// copying back the pages the guest wrote.
//
// Which pages those are, the kernel's page map says: present (or swapped)
// and no longer the image's file page nor the shared zero page. Once written
// a page stays the instance's own, and the reset copies the image into it
// again, so the pages to copy back only ever grow, and they grow only by a
// page fault: a write to a page that is not yet the instance's own (not
// present, or the image's, or the zero page) is one, and the kernel counts
// it in the process's fault count whichever thread takes it, the guest's
// stores or the kernel's own (a read(2) into guest memory), as it counts
// (since Linux 5.9) the faults it takes to populate a page for
// get_user_pages, which nothing in wasmesh does to guest memory. So when the
// process has taken no page fault since the page map was last read, the
// pages it found written are all the pages written since, and reset copies
// them back without asking again. Under load a process takes a few faults a
// second (the Go heap growing), each of which makes the next reset of every
// memory read the page map again. Another process writing this one's
// memory (a debugger, process_vm_writev) is counted as its faults, not ours:
// it is not a guest, and it could read all memory anyway.
func (m *cowMemory) reset() { m.resetAt(pageFaults()) }

// resetAt is reset given the process's page faults, read after the
// memory's last run ended (faultsSince: one reading serves every memory
// put back idle before it began, and a fault a reset takes itself only
// makes the next one look again).
func (m *cowMemory) resetAt(faults int64, counted bool) {
	if m.known && counted && faults == m.faults {
		for _, r := range m.written {
			m.restore(r.from, r.to)
		}
		return
	}
	m.written = m.written[:0]
	m.faults, m.known = faults, counted
	m.looks++
	pages := int(m.high / osPage) // not just size: a page past it may be written
	if pages == 0 {
		return
	}
	if !noPagemapScan.Load() {
		if m.resetScanned(pages) {
			return
		}
		noPagemapScan.Store(true) // a kernel before 6.7: the page map it is
		m.written = m.written[:0] // resetScanned restored what it recorded
	}
	if cap(m.pm) < pages*8 {
		m.pm = make([]byte, pages*8)
	}
	pmBuf := m.pm[:pages*8]
	pm, err := pagemap()
	if err == nil {
		_, err = pm.ReadAt(pmBuf, int64(uintptr(unsafe.Pointer(&m.buf[0]))/osPage*8))
	}
	if err != nil {
		m.restoreRun(0, pages)
		return
	}
	for i := 0; i < pages; {
		if !dirty(pmBuf[i*8:]) {
			i++
			continue
		}
		j := i + 1
		for j < pages && dirty(pmBuf[j*8:]) {
			j++
		}
		m.restoreRun(i, j)
		i = j
	}
}

// pageRun is pages [from, to) of a memory.
type pageRun struct{ from, to int }

// restoreRun restores pages [from, to) and records them as written.
func (m *cowMemory) restoreRun(from, to int) {
	m.restore(from, to)
	m.written = append(m.written, pageRun{from, to})
}

// pageFaults is how many page faults the process has taken, minor and
// major, all its threads together; false if the kernel would not say.
func pageFaults() (int64, bool) {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return ru.Minflt + ru.Majflt, true
}

// restore copies pages [from, to) back from the image, zeroing those past
// it and those it has all zeros.
func (m *cowMemory) restore(from, to int) {
	img := m.img
	for end := min(to, len(img.view)/osPage); from < end; {
		zero, run := img.zeroAt(from), from+1
		for run < end && img.zeroAt(run) == zero {
			run++
		}
		if zero {
			clear(m.buf[from*osPage : run*osPage])
		} else {
			copy(m.buf[from*osPage:run*osPage], img.view[from*osPage:run*osPage])
		}
		from = run
	}
	if from < to {
		clear(m.buf[from*osPage : to*osPage])
	}
}

// PAGEMAP_SCAN (Linux 6.7, Documentation/admin-guide/mm/pagemap.rst): the
// kernel walks the range and returns the runs of pages in the wanted
// categories, instead of an 8-byte entry per page for us to read. Its cost
// hardly grows with the memory's size (1.8 µs for 272 pages, 3.3 µs for
// 4,096, against 2.0 and 14.5 µs reading the page map).
const (
	pagemapScan     = 0xc0606610 // _IOWR('f', 16, struct pm_scan_arg)
	pageIsFile      = 1 << 2
	pageIsPresent   = 1 << 3
	pageIsSwapped   = 1 << 4
	pageIsPFNZero   = 1 << 5
	maxScanRegions  = 64
	pmScanArgLength = 96
)

// pmScanArg is struct pm_scan_arg.
type pmScanArg struct {
	size, flags, start, end, walkEnd, vec, vecLen, maxPages       uint64
	categoryInverted, categoryMask, categoryAnyofMask, returnMask uint64
}

// pageRegion is struct page_region.
type pageRegion struct{ start, end, categories uint64 }

// noPagemapScan is set once the kernel refuses PAGEMAP_SCAN.
var noPagemapScan atomic.Bool

// resetScanned is reset with PAGEMAP_SCAN: the pages the guest wrote are
// those present (or swapped) that are no longer the file's, nor the shared
// zero page (a read past the image). It reports false when the kernel has
// no PAGEMAP_SCAN.
func (m *cowMemory) resetScanned(pages int) bool {
	pm, err := pagemap()
	if err != nil {
		return false
	}
	if m.regions == nil {
		m.regions = make([]pageRegion, maxScanRegions)
	}
	base := uint64(uintptr(unsafe.Pointer(&m.buf[0])))
	arg := pmScanArg{
		size: pmScanArgLength, start: base, end: base + uint64(pages)*osPage,
		vec: uint64(uintptr(unsafe.Pointer(&m.regions[0]))), vecLen: maxScanRegions,
		categoryInverted: pageIsFile | pageIsPFNZero, categoryMask: pageIsFile | pageIsPFNZero,
		categoryAnyofMask: pageIsPresent | pageIsSwapped, returnMask: pageIsPresent | pageIsSwapped,
	}
	for arg.start < arg.end {
		n, _, errno := unix.Syscall(unix.SYS_IOCTL, pm.Fd(), pagemapScan, uintptr(unsafe.Pointer(&arg)))
		if errno != 0 {
			return false
		}
		for _, r := range m.regions[:n] {
			m.restoreRun(int((r.start-base)/osPage), int((r.end-base)/osPage))
		}
		if arg.walkEnd <= arg.start { // no progress: do not trust it
			return false
		}
		arg.start = arg.walkEnd // past the last region when the vector filled up
	}
	return true
}

func dirty(entry []byte) bool {
	e := binary.LittleEndian.Uint64(entry)
	return e&pmSwapped != 0 || (e&pmPresent != 0 && e&pmFile == 0)
}
