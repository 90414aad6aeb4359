package host

import (
	"io/fs"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
)

// mountFS is a preopened host directory as guests see it. Guests may not
// create symbolic links: wazero's directory mount follows links, so a guest
// able to write "esc -> ../../etc" could then read or write outside its
// mount. Links the host put there are followed (that is the operator's
// choice). A read-only mount refuses every change with EROFS.
type mountFS struct {
	experimentalsys.FS
	readOnly bool
}

func newMountFS(dir string, readOnly bool) experimentalsys.FS {
	return &mountFS{FS: sysfs.DirFS(dir), readOnly: readOnly}
}

const writeFlags = experimentalsys.O_RDWR | experimentalsys.O_WRONLY | experimentalsys.O_APPEND |
	experimentalsys.O_CREAT | experimentalsys.O_EXCL | experimentalsys.O_TRUNC

func (m *mountFS) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if m.readOnly && flag&writeFlags != 0 {
		return nil, experimentalsys.EROFS
	}
	return m.FS.OpenFile(path, flag, perm)
}

func (m *mountFS) Symlink(oldPath, linkName string) experimentalsys.Errno {
	if m.readOnly {
		return experimentalsys.EROFS
	}
	return experimentalsys.EPERM
}

func (m *mountFS) Mkdir(path string, perm fs.FileMode) experimentalsys.Errno {
	return m.refuse(func() experimentalsys.Errno { return m.FS.Mkdir(path, perm) })
}

func (m *mountFS) Chmod(path string, perm fs.FileMode) experimentalsys.Errno {
	return m.refuse(func() experimentalsys.Errno { return m.FS.Chmod(path, perm) })
}

func (m *mountFS) Rename(from, to string) experimentalsys.Errno {
	return m.refuse(func() experimentalsys.Errno { return m.FS.Rename(from, to) })
}

func (m *mountFS) Rmdir(path string) experimentalsys.Errno {
	return m.refuse(func() experimentalsys.Errno { return m.FS.Rmdir(path) })
}

func (m *mountFS) Unlink(path string) experimentalsys.Errno {
	return m.refuse(func() experimentalsys.Errno { return m.FS.Unlink(path) })
}

func (m *mountFS) Link(oldPath, newPath string) experimentalsys.Errno {
	return m.refuse(func() experimentalsys.Errno { return m.FS.Link(oldPath, newPath) })
}

func (m *mountFS) Utimens(path string, atim, mtim int64) experimentalsys.Errno {
	return m.refuse(func() experimentalsys.Errno { return m.FS.Utimens(path, atim, mtim) })
}

func (m *mountFS) refuse(op func() experimentalsys.Errno) experimentalsys.Errno {
	if m.readOnly {
		return experimentalsys.EROFS
	}
	return op()
}
