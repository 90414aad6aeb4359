package wasip1

import (
	"context"
	"io/fs"
	"math"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

func fdAdvise(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.getRights(uint32(p[0]), rightFdAdvise)
	if en != 0 {
		return en
	}
	if advice := uint32(p[3]); advice > 5 { // normal, sequential, random, willneed, dontneed, noreuse
		return errnoInval
	}
	if e.ftype == filetypeDirectory {
		return errnoBadf
	}
	return 0 // advice only
}

func fdAllocate(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.getRights(uint32(p[0]), rightFdAllocate)
	if en != 0 {
		return en
	}
	off, n := int64(p[1]), int64(p[2])
	if off < 0 || n <= 0 || off > math.MaxInt64-n {
		return errnoInval
	}
	if e.ftype == filetypeDirectory {
		return errnoBadf
	}
	st, serr := e.file.Stat()
	if serr != 0 {
		return fromSys(serr)
	}
	if st.Size >= off+n {
		return 0
	}
	return fromSys(e.file.Truncate(off + n))
}

func fdClose(_ context.Context, c call, p []uint64) errno {
	return c.t.close(uint32(p[0]))
}

func fdDatasync(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.getRights(uint32(p[0]), rightFdDatasync)
	if en != 0 {
		return en
	}
	return fromSys(e.file.Datasync())
}

func fdSync(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.getRights(uint32(p[0]), rightFdSync)
	if en != 0 {
		return en
	}
	return fromSys(e.file.Sync())
}

// fdflags is what fd_fdstat_get says of e's flags.
func (e *entry) fdflags() uint16 {
	f := e.fdflag
	if e.file.IsAppend() {
		f |= fdflagAppend
	}
	if pf, ok := e.file.(experimentalsys.PollableFile); ok && pf.IsNonblock() {
		f |= fdflagNonblock
	}
	return f
}

func fdFdstatGet(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.get(uint32(p[0]))
	if en != 0 {
		return en
	}
	b, en := c.read(uint32(p[1]), 24)
	if en != 0 {
		return en
	}
	clear(b)
	b[0] = e.ftype
	le.PutUint16(b[2:], e.fdflags())
	le.PutUint64(b[8:], e.base)
	le.PutUint64(b[16:], e.inh)
	return 0
}

func fdFdstatSetFlags(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.getRights(uint32(p[0]), rightFdFdstatSetFlags)
	if en != 0 {
		return en
	}
	flags := uint16(p[1])
	if uint32(p[1]) > math.MaxUint16 || flags&^(fdflagAppend|fdflagDsync|fdflagNonblock|fdflagRsync|fdflagSync) != 0 {
		return errnoInval
	}
	if e.stdio {
		// The host's streams are not the guest's to reconfigure.
		if flags&^fdflagNonblock != 0 {
			return errnoNotsup
		}
		return 0
	}
	if e.ftype != filetypeDirectory {
		if errno := e.file.SetAppend(flags&fdflagAppend != 0); errno != 0 {
			return fromSys(errno)
		}
		if pf, ok := e.file.(experimentalsys.PollableFile); ok {
			if errno := pf.SetNonblock(flags&fdflagNonblock != 0); errno != 0 {
				return fromSys(errno)
			}
		}
	}
	// Synchronised writes are not changed once a file is open (Linux's
	// fcntl ignores O_SYNC and O_DSYNC too): kept as they were.
	return 0
}

func fdFdstatSetRights(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.get(uint32(p[0]))
	if en != 0 {
		return en
	}
	base, inh := p[1], p[2]
	if base&^e.base != 0 || inh&^e.inh != 0 {
		return errnoNotcapable // rights are only ever dropped
	}
	e.base, e.inh = base, inh
	return 0
}

func fdFilestatGet(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.getRights(uint32(p[0]), rightFdFilestatGet)
	if en != 0 {
		return en
	}
	st, serr := e.file.Stat()
	if serr != 0 {
		return fromSys(serr)
	}
	ft := filetype(st.Mode)
	if e.stdio {
		ft = e.ftype
	}
	return c.filestat(uint32(p[1]), &st, ft)
}

// filestat writes st as a WASI filestat at off.
func (c call) filestat(off uint32, st *sys.Stat_t, ft uint8) errno {
	b, en := c.read(off, 64)
	if en != 0 {
		return en
	}
	clear(b)
	le.PutUint64(b[0:], st.Dev)
	le.PutUint64(b[8:], st.Ino)
	b[16] = ft
	le.PutUint64(b[24:], st.Nlink)
	le.PutUint64(b[32:], uint64(st.Size))
	le.PutUint64(b[40:], uint64(st.Atim))
	le.PutUint64(b[48:], uint64(st.Mtim))
	le.PutUint64(b[56:], uint64(st.Ctim))
	return 0
}

// filetype is the WASI filetype of a file mode.
func filetype(m fs.FileMode) uint8 {
	switch {
	case m.IsRegular():
		return filetypeRegularFile
	case m&fs.ModeDir != 0:
		return filetypeDirectory
	case m&fs.ModeSymlink != 0:
		return filetypeSymbolicLink
	case m&fs.ModeCharDevice != 0:
		return filetypeCharacterDevice
	case m&fs.ModeDevice != 0:
		return filetypeBlockDevice
	case m&fs.ModeSocket != 0:
		return filetypeSocketStream
	}
	return filetypeUnknown
}

func fdFilestatSetSize(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.getRights(uint32(p[0]), rightFdFilestatSetSize)
	if en != 0 {
		return en
	}
	if int64(p[1]) < 0 {
		return errnoInval
	}
	if e.ftype == filetypeDirectory {
		return errnoBadf
	}
	return fromSys(e.file.Truncate(int64(p[1])))
}

// fstflags.
const (
	fstAtim    = 1 << 0
	fstAtimNow = 1 << 1
	fstMtim    = 1 << 2
	fstMtimNow = 1 << 3
)

// times are the access and modification times fstflags ask for, with
// experimentalsys.UTIME_OMIT for one left as it is.
func (c call) times(atim, mtim int64, flags uint64) (int64, int64, errno) {
	if flags&^(fstAtim|fstAtimNow|fstMtim|fstMtimNow) != 0 ||
		flags&(fstAtim|fstAtimNow) == fstAtim|fstAtimNow || flags&(fstMtim|fstMtimNow) == fstMtim|fstMtimNow {
		return 0, 0, errnoInval
	}
	now := func() int64 {
		if c.host.Walltime != nil {
			return c.host.Walltime()
		}
		return time.Now().UnixNano()
	}
	a, m := experimentalsys.UTIME_OMIT, experimentalsys.UTIME_OMIT
	switch {
	case flags&fstAtimNow != 0:
		a = now()
	case flags&fstAtim != 0:
		a = atim
	}
	switch {
	case flags&fstMtimNow != 0:
		m = now()
	case flags&fstMtim != 0:
		m = mtim
	}
	return a, m, 0
}

func fdFilestatSetTimes(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.getRights(uint32(p[0]), rightFdFilestatSetTimes)
	if en != 0 {
		return en
	}
	a, m, en := c.times(int64(p[1]), int64(p[2]), uint64(uint32(p[3])))
	if en != 0 {
		return en
	}
	return fromSys(e.file.Utimens(a, m))
}

// maxIovecs bounds an iovec array, as IOV_MAX does readv(2)'s.
const maxIovecs = 1024

// iovecs calls f with each buffer of the iovec array at iovs (count
// entries) until f says to stop, and returns the bytes f took in all.
func (c call) iovecs(iovs, count uint32, f func(b []byte) (n int, more bool, en errno)) (uint32, errno) {
	if count > maxIovecs {
		return 0, errnoInval
	}
	vecs, en := c.read(iovs, count*8)
	if en != 0 {
		return 0, en
	}
	var total uint32
	for i := uint32(0); i < count; i++ {
		off, n := le.Uint32(vecs[i*8:]), le.Uint32(vecs[i*8+4:])
		b, en := c.read(off, n)
		if en != 0 {
			return 0, en
		}
		got, more, en := f(b)
		total += uint32(got)
		if en != 0 {
			if total > 0 {
				return total, 0 // what went through is reported; the error comes next time
			}
			return 0, en
		}
		if !more || got < len(b) {
			break
		}
	}
	return total, 0
}

func fdRead(_ context.Context, c call, p []uint64) errno { return c.transfer(p, false, false) }

func fdWrite(_ context.Context, c call, p []uint64) errno { return c.transfer(p, true, false) }

func fdPread(_ context.Context, c call, p []uint64) errno { return c.transfer(p, false, true) }

func fdPwrite(_ context.Context, c call, p []uint64) errno { return c.transfer(p, true, true) }

// transfer is fd_read, or fd_write when write is set; with at, fd_pread
// or fd_pwrite: at an offset, which the file's own does not move.
func (c call) transfer(p []uint64, write, at bool) errno {
	need, onDir := uint64(rightFdRead), errnoIsdir
	if write {
		need, onDir = rightFdWrite, errnoBadf
	}
	result, off := uint32(p[3]), int64(0)
	if at {
		if e, en := c.t.get(uint32(p[0])); en == 0 && e.stdio {
			return errnoSpipe
		}
		need |= rightFdSeek
		result, off = uint32(p[4]), int64(p[3])
		if off < 0 {
			return errnoInval
		}
	}
	e, en := c.t.getRights(uint32(p[0]), need)
	if en != 0 {
		return en
	}
	if e.ftype == filetypeDirectory {
		return onDir
	}
	n, en := c.iovecs(uint32(p[1]), uint32(p[2]), func(b []byte) (int, bool, errno) {
		var n int
		var serr experimentalsys.Errno
		switch {
		case write && len(b) == 0:
			return 0, true, 0
		case write && at:
			n, serr = e.file.Pwrite(b, off)
		case write:
			n, serr = e.file.Write(b)
		case at:
			n, serr = e.file.Pread(b, off)
		default:
			n, serr = e.file.Read(b)
		}
		off += int64(n)
		// A stream (stdin, a device) answers a read with what it has:
		// the next buffer would wait for more, as readv(2) does not.
		more := write || at || e.ftype == filetypeRegularFile || n == 0
		return n, more, fromSys(serr)
	})
	if en != 0 {
		return en
	}
	return c.u32(result, n)
}

func fdPrestatGet(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.get(uint32(p[0]))
	if en != 0 {
		return en
	}
	if e.guest == "" {
		return errnoBadf
	}
	b, en := c.read(uint32(p[1]), 8)
	if en != 0 {
		return en
	}
	clear(b) // tag 0: a directory
	le.PutUint32(b[4:], uint32(len(e.guest)))
	return 0
}

func fdPrestatDirName(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.get(uint32(p[0]))
	if en != 0 {
		return en
	}
	if e.guest == "" {
		return errnoBadf
	}
	if uint32(p[2]) < uint32(len(e.guest)) {
		return errnoNametoolong
	}
	b, en := c.read(uint32(p[1]), uint32(len(e.guest)))
	if en != 0 {
		return en
	}
	copy(b, e.guest)
	return 0
}

func fdRenumber(_ context.Context, c call, p []uint64) errno {
	return c.t.renumber(uint32(p[0]), uint32(p[1]))
}

func fdSeek(_ context.Context, c call, p []uint64) errno {
	off, whence := int64(p[1]), uint32(p[2])
	need := uint64(rightFdSeek)
	if off == 0 && whence == 1 {
		need = rightFdTell // only asks where it is
	}
	if e, en := c.t.get(uint32(p[0])); en == 0 && e.stdio {
		return errnoSpipe
	}
	e, en := c.t.getRights(uint32(p[0]), need)
	if en != 0 {
		return en
	}
	if whence > 2 {
		return errnoInval
	}
	if e.ftype == filetypeDirectory {
		return errnoBadf
	}
	pos, serr := e.file.Seek(off, int(whence))
	if serr != 0 {
		return fromSys(serr)
	}
	return c.u64(uint32(p[3]), uint64(pos))
}

func fdTell(_ context.Context, c call, p []uint64) errno {
	if e, en := c.t.get(uint32(p[0])); en == 0 && e.stdio {
		return errnoSpipe
	}
	e, en := c.t.getRights(uint32(p[0]), rightFdTell)
	if en != 0 {
		return en
	}
	if e.ftype == filetypeDirectory {
		return errnoBadf
	}
	pos, serr := e.file.Seek(0, 1)
	if serr != 0 {
		return fromSys(serr)
	}
	return c.u64(uint32(p[1]), uint64(pos))
}

// direntSize is a dirent's size without its name.
const direntSize = 24

func fdReaddir(_ context.Context, c call, p []uint64) errno {
	e, en := c.t.getRights(uint32(p[0]), rightFdReaddir)
	if en != 0 {
		return en
	}
	if e.ftype != filetypeDirectory {
		return errnoNotdir
	}
	buf, size, cookie := uint32(p[1]), uint32(p[2]), p[3]
	out, en := c.read(buf, size)
	if en != 0 {
		return en
	}
	// As many entries as the buffer can hold (each takes more than a
	// header), from the cookie on; the last one cut short if it does not
	// fit (bufused == buf_len tells the guest to read again with a
	// bigger buffer).
	want := uint64(size/direntSize) + 1
	if en := e.window(cookie, want); en != 0 {
		return en
	}
	used := uint32(0)
	for i := cookie; i < e.dirStart+uint64(len(e.dirents)) && used < size; i++ {
		d := e.dirents[i-e.dirStart]
		var ent [direntSize]byte
		le.PutUint64(ent[0:], i+1)
		le.PutUint64(ent[8:], d.Ino)
		le.PutUint32(ent[16:], uint32(len(d.Name)))
		ent[20] = filetype(d.Type)
		used += uint32(copy(out[used:], ent[:]))
		used += uint32(copy(out[used:], d.Name))
	}
	return c.u32(uint32(p[4]), used)
}

// maxDirWindow bounds the entries a directory descriptor holds at once.
const maxDirWindow = 4096

// window makes e.dirents hold directory e's entries cookie to cookie+n
// (fewer at its end): "." and ".." first, then what the file lists, read
// as far as needed. Cookie 0, or one before the window, lists the directory again
// from its start; entries before the cookie are let go, so a descriptor
// holds at most maxDirWindow of them whatever the directory's size.
func (e *entry) window(cookie, n uint64) errno {
	n = min(n, maxDirWindow)
	if e.dirents == nil || cookie == 0 || cookie < e.dirStart {
		if _, serr := e.file.Seek(0, 0); serr != 0 && serr != experimentalsys.ENOSYS {
			return fromSys(serr)
		}
		ino, _ := e.file.Ino()
		e.dirents = append(e.dirents[:0], experimentalsys.Dirent{Name: ".", Type: fs.ModeDir, Ino: ino}, experimentalsys.Dirent{Name: "..", Type: fs.ModeDir})
		e.dirStart, e.dirEOF = 0, false
	}
	e.forget(cookie)
	for !e.dirEOF && e.dirStart+uint64(len(e.dirents)) < cookie+n {
		ds, serr := e.file.Readdir(int(min(cookie+n-e.dirStart-uint64(len(e.dirents)), maxDirWindow)))
		if serr != 0 {
			return fromSys(serr)
		}
		if len(ds) == 0 {
			e.dirEOF = true
		}
		e.dirents = append(e.dirents, ds...)
		e.forget(cookie)
	}
	return 0
}

// forget lets go of the entries before cookie.
func (e *entry) forget(cookie uint64) {
	if drop := min(cookie-e.dirStart, uint64(len(e.dirents))); drop > 0 {
		e.dirents = append(e.dirents[:0], e.dirents[drop:]...)
		e.dirStart += drop
	}
}
