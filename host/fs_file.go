package host

import (
	"io"
	"io/fs"
	"os"
	"syscall"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// mountFile is a file or directory opened beneath a mountFS, with the
// semantics of wazero's own files: a directory is read again from its
// start after a seek to 0, and changing O_APPEND reopens the file (through
// the mount, so still beneath it) at the same offset.
type mountFile struct {
	mount *mountFS
	path  string
	flag  experimentalsys.Oflag
	perm  fs.FileMode
	file  *os.File
	// reopenDir says the next Readdir starts over (a new open, or a seek
	// to 0).
	reopenDir bool
	closed    bool
	// st are the file's device, inode and type, once known.
	st *sys.Stat_t
}

func (f *mountFile) stat() (*sys.Stat_t, experimentalsys.Errno) {
	if f.st == nil {
		if _, e := f.Stat(); e != 0 {
			return nil, e
		}
	}
	return f.st, 0
}

func (f *mountFile) Dev() (uint64, experimentalsys.Errno) {
	st, e := f.stat()
	if e != 0 {
		return 0, e
	}
	return st.Dev, 0
}

func (f *mountFile) Ino() (sys.Inode, experimentalsys.Errno) {
	st, e := f.stat()
	if e != 0 {
		return 0, e
	}
	return st.Ino, 0
}

func (f *mountFile) IsDir() (bool, experimentalsys.Errno) {
	st, e := f.stat()
	if e != 0 {
		return false, e
	}
	return st.Mode.IsDir(), 0
}

func (f *mountFile) IsAppend() bool { return f.flag&experimentalsys.O_APPEND != 0 }

func (f *mountFile) SetAppend(enable bool) experimentalsys.Errno {
	if enable {
		f.flag |= experimentalsys.O_APPEND
	} else {
		f.flag &^= experimentalsys.O_APPEND
	}
	return f.fault(f.reopen())
}

// reopen opens the file again with f.flag, at the same offset, refusing a
// different file now at its path (ENOENT).
func (f *mountFile) reopen() experimentalsys.Errno {
	isDir, e := f.IsDir()
	if e != 0 {
		return e
	}
	var offset int64
	if !isDir {
		var err error
		if offset, err = f.file.Seek(0, io.SeekCurrent); err != nil {
			return errno(err)
		}
	}
	nf, err := f.mount.root.OpenFile(f.path, osOpenFlag(f.flag&^(experimentalsys.O_CREAT|experimentalsys.O_TRUNC|experimentalsys.O_EXCL)), f.perm)
	if err != nil {
		return errno(err)
	}
	old, err1 := f.file.Stat()
	now, err2 := nf.Stat()
	switch {
	case err1 != nil || err2 != nil:
		nf.Close()
		return errno(err1) | errno(err2)
	case !os.SameFile(old, now):
		nf.Close()
		return experimentalsys.ENOENT
	}
	if !isDir {
		if _, err := nf.Seek(offset, io.SeekStart); err != nil {
			nf.Close()
			return errno(err)
		}
	}
	f.file.Close()
	f.file = nf
	return 0
}

func (f *mountFile) IsNonblock() bool { return f.flag&experimentalsys.O_NONBLOCK != 0 }

func (f *mountFile) SetNonblock(enable bool) experimentalsys.Errno {
	if enable {
		f.flag |= experimentalsys.O_NONBLOCK
	} else {
		f.flag &^= experimentalsys.O_NONBLOCK
	}
	return f.fault(errno(syscall.SetNonblock(int(f.file.Fd()), enable)))
}

func (f *mountFile) Stat() (sys.Stat_t, experimentalsys.Errno) {
	if f.closed {
		return sys.Stat_t{}, experimentalsys.EBADF
	}
	fi, err := f.file.Stat()
	if err != nil {
		return sys.Stat_t{}, experimentalsys.EBADF
	}
	st := sys.NewStat_t(fi)
	f.st = &st
	return st, 0
}

func (f *mountFile) Read(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.file.Read(buf)
	if err == io.EOF {
		err = nil
	}
	return n, f.fault(errno(err))
}

func (f *mountFile) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.file.ReadAt(buf, off)
	if err == io.EOF {
		err = nil
	}
	return n, f.fault(errno(err))
}

func (f *mountFile) Seek(offset int64, whence int) (int64, experimentalsys.Errno) {
	if isDir, _ := f.IsDir(); isDir {
		if offset == 0 && whence == io.SeekStart {
			f.reopenDir = true
			return 0, 0
		}
		return 0, experimentalsys.EISDIR
	}
	n, err := f.file.Seek(offset, whence)
	return n, f.fault(errno(err))
}

func (f *mountFile) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	if f.closed {
		return nil, experimentalsys.EBADF
	}
	if isDir, e := f.IsDir(); e != 0 || !isDir {
		return nil, experimentalsys.EBADF
	}
	if f.reopenDir {
		f.reopenDir = false
		if e := f.reopen(); e != 0 {
			return nil, f.fault(e)
		}
	}
	entries, err := f.file.ReadDir(n)
	if err == io.EOF {
		err = nil
	}
	if err != nil {
		return nil, f.fault(errno(err))
	}
	out := make([]experimentalsys.Dirent, 0, len(entries))
	for _, d := range entries {
		fi, err := d.Info()
		if err != nil { // gone since it was listed
			continue
		}
		out = append(out, experimentalsys.Dirent{Name: d.Name(), Ino: sys.NewStat_t(fi).Ino, Type: d.Type()})
	}
	return out, 0
}

func (f *mountFile) Write(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.file.Write(buf)
	return n, f.fault(errno(err))
}

// Pwrite writes at off, even to a file opened to append (os.File's
// WriteAt refuses those; pwrite(2) on Linux then appends, as WASI hosts
// built on it do).
func (f *mountFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	n, err := syscall.Pwrite(int(f.file.Fd()), buf, off)
	return max(n, 0), f.fault(errno(err))
}

func (f *mountFile) Truncate(size int64) experimentalsys.Errno {
	if size < 0 {
		return experimentalsys.EINVAL
	}
	return f.fault(errno(f.file.Truncate(size)))
}

func (f *mountFile) Sync() experimentalsys.Errno { return f.fault(errno(f.file.Sync())) }

func (f *mountFile) Datasync() experimentalsys.Errno { return f.fault(datasync(f.file)) }

// Utimens sets the file's times, unless its mount is read-only (EROFS: a
// descriptor opened to read could set them otherwise).
func (f *mountFile) Utimens(atim, mtim int64) experimentalsys.Errno {
	switch {
	case f.closed:
		return experimentalsys.EBADF
	case f.mount.readOnly:
		return experimentalsys.EROFS
	}
	return f.fault(futimens(f.file, atim, mtim))
}

func (f *mountFile) Close() experimentalsys.Errno {
	if f.closed {
		return 0
	}
	f.closed = true
	return errno(f.file.Close())
}

// fault is e as a file operation's error, as wazero's own files answer:
// EBADF once closed, EISDIR on a directory.
func (f *mountFile) fault(e experimentalsys.Errno) experimentalsys.Errno {
	switch {
	case e == 0:
		return 0
	case f.closed:
		return experimentalsys.EBADF
	}
	if isDir, se := f.IsDir(); se != 0 {
		return se
	} else if isDir {
		return experimentalsys.EISDIR
	}
	return e
}
