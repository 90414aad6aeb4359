package host

import (
	"os"
	"strconv"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
)

// descriptors is the directory that names the process's open descriptors
// ("/proc/self/fd/N"): a file the mount resolved is opened again through
// it, by wazero's own file type, so that the guest's file is wazero's
// (seek, directory listing, O_APPEND changes) on the file the os.Root
// found, with no path resolved again on the host.
var descriptors = sysfs.DirFS(descriptorDir)

// mountFile is a file or directory opened beneath a mountFS: wazero's
// file over it, and the descriptor the mount opened, which its name in
// descriptorDir needs for as long as the file is open (wazero opens it
// again by that name when O_APPEND changes or a listing starts over).
type mountFile struct {
	experimentalsys.File
	held     *os.File
	readOnly bool
}

// openMountFile gives the guest f, opened by the mount with flag: wazero's
// file on the same file, taking f's ownership.
func openMountFile(f *os.File, flag experimentalsys.Oflag, perm os.FileMode, readOnly bool) (experimentalsys.File, experimentalsys.Errno) {
	// Done already by the mount's open (and O_NOFOLLOW would refuse the
	// descriptor's own name, a link).
	flag &^= experimentalsys.O_CREAT | experimentalsys.O_EXCL | experimentalsys.O_TRUNC | experimentalsys.O_NOFOLLOW
	wf, e := descriptors.OpenFile(strconv.Itoa(int(f.Fd())), flag, perm)
	if e != 0 {
		f.Close()
		return nil, e
	}
	return &mountFile{File: wf, held: f, readOnly: readOnly}, 0
}

// Utimens sets the file's times, unless its mount is read-only (EROFS: a
// descriptor opened to read could set them otherwise).
func (f *mountFile) Utimens(atim, mtim int64) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	return f.File.Utimens(atim, mtim)
}

// Pwrite writes at off, even to a file opened to append (wazero's file
// writes with os.File.WriteAt, which refuses those; pwrite(2) on Linux then
// appends, as WASI hosts built on it do).
func (f *mountFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	if isDir, _ := f.IsDir(); isDir {
		return 0, experimentalsys.EISDIR
	}
	n, err := pwrite(f.held, buf, off)
	return max(n, 0), errno(err)
}

func (f *mountFile) Close() experimentalsys.Errno {
	e := f.File.Close()
	f.held.Close()
	return e
}
