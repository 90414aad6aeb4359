package host

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// mountFS is a preopened host directory as guests see it: every path is
// resolved beneath it by an os.Root, which follows a symbolic link only
// while it stays inside (openat with O_NOFOLLOW, component by component,
// or openat2 with RESOLVE_BENEATH). A guest may create links, to any
// relative target: "esc -> ../../etc" is made, and opening through it
// fails with EPERM, as does a path with ".." above the mount. A read-only
// mount refuses every change with EROFS, through a path or a descriptor.
type mountFS struct {
	experimentalsys.UnimplementedFS
	root     *os.Root
	readOnly bool
}

// newMountFS opens dir for guests, until close.
func newMountFS(dir string, readOnly bool) (*mountFS, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &mountFS{root: root, readOnly: readOnly}, nil
}

func (m *mountFS) close() { m.root.Close() }

func (m *mountFS) String() string { return m.root.Name() }

// rel is path as the root takes it: relative to the mount (wazero gives
// paths beneath a mount at "/" a leading slash), "." for the mount itself.
func rel(p string) string {
	if p = strings.TrimLeft(p, "/"); p == "" {
		return "."
	}
	return p
}

// errno is err as the guest sees it; a path that would leave the mount is
// EPERM (os.Root's error for it is not a system one).
func errno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	var se syscall.Errno
	if !errors.As(err, &se) {
		leaf := err
		for u := errors.Unwrap(leaf); u != nil; u = errors.Unwrap(leaf) {
			leaf = u
		}
		if leaf.Error() == "path escapes from parent" {
			return experimentalsys.EPERM
		}
	}
	return experimentalsys.UnwrapOSError(err)
}

const writeFlags = experimentalsys.O_RDWR | experimentalsys.O_WRONLY | experimentalsys.O_APPEND |
	experimentalsys.O_CREAT | experimentalsys.O_EXCL | experimentalsys.O_TRUNC

func (m *mountFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if m.readOnly && flag&writeFlags != 0 {
		return nil, experimentalsys.EROFS
	}
	p = rel(p)
	// os.Root follows a final link even when asked not to: refuse it here
	// (a link swapped in after this look is still resolved beneath the
	// mount).
	if flag&experimentalsys.O_NOFOLLOW != 0 && flag&(experimentalsys.O_CREAT|experimentalsys.O_EXCL) != experimentalsys.O_CREAT|experimentalsys.O_EXCL {
		if fi, err := m.root.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, experimentalsys.ELOOP
		}
	}
	f, err := m.root.OpenFile(p, osOpenFlag(flag), perm)
	if err != nil {
		return nil, errno(err)
	}
	return openMountFile(f, flag, perm, m.readOnly)
}

func (m *mountFS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := m.root.Lstat(rel(p))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (m *mountFS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := m.root.Stat(rel(p))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (m *mountFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	return m.change(func() experimentalsys.Errno {
		e := errno(m.root.Mkdir(rel(p), perm))
		if e == experimentalsys.ENOTDIR {
			e = experimentalsys.ENOENT
		}
		return e
	})
}

func (m *mountFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	return m.change(func() experimentalsys.Errno { return errno(m.root.Chmod(rel(p), perm)) })
}

// Rename renames as rename(2) does: a directory may replace an empty
// directory (os.Root's Rename refuses any, as os.Rename does, with EEXIST:
// then the empty target is removed and the rename made again, the target
// made again if that fails).
func (m *mountFS) Rename(from, to string) experimentalsys.Errno {
	return m.change(func() experimentalsys.Errno {
		from, to := rel(from), rel(to)
		if from == to {
			return 0
		}
		err := m.root.Rename(from, to)
		if e := errno(err); e != experimentalsys.EEXIST {
			return e
		}
		tfi, terr := m.root.Lstat(to)
		ffi, ferr := m.root.Lstat(from)
		switch {
		case terr != nil || ferr != nil || !tfi.IsDir():
			return errno(err)
		case !ffi.IsDir():
			return experimentalsys.EISDIR
		case strings.HasPrefix(path.Clean(to)+"/", path.Clean(from)+"/"):
			return experimentalsys.EINVAL // into itself
		}
		if err := m.root.Remove(to); err != nil { // only if empty
			if e := errno(err); e != experimentalsys.EEXIST && e != experimentalsys.ENOTEMPTY {
				return e
			}
			return experimentalsys.ENOTEMPTY
		}
		if err := m.root.Rename(from, to); err != nil {
			_ = m.root.Mkdir(to, tfi.Mode().Perm())
			return errno(err)
		}
		return 0
	})
}

// Rmdir removes a directory, and only a directory (os.Root's Remove takes
// either).
func (m *mountFS) Rmdir(p string) experimentalsys.Errno {
	return m.change(func() experimentalsys.Errno {
		fi, err := m.root.Lstat(rel(p))
		if err != nil {
			return errno(err)
		}
		if !fi.IsDir() {
			return experimentalsys.ENOTDIR
		}
		return errno(m.root.Remove(rel(p)))
	})
}

// Unlink removes anything but a directory (EISDIR, as Linux says).
func (m *mountFS) Unlink(p string) experimentalsys.Errno {
	return m.change(func() experimentalsys.Errno {
		fi, err := m.root.Lstat(rel(p))
		if err != nil {
			return errno(err)
		}
		if fi.IsDir() {
			return experimentalsys.EISDIR
		}
		return errno(m.root.Remove(rel(p)))
	})
}

func (m *mountFS) Link(oldPath, newPath string) experimentalsys.Errno {
	return m.change(func() experimentalsys.Errno { return errno(m.root.Link(rel(oldPath), rel(newPath))) })
}

// Symlink makes a link to any relative target: resolving it later is what
// stays beneath the mount. An absolute target is refused (EPERM): no guest path
// is absolute on the host.
func (m *mountFS) Symlink(target, link string) experimentalsys.Errno {
	return m.change(func() experimentalsys.Errno {
		if path.IsAbs(target) {
			return experimentalsys.EPERM
		}
		return errno(m.root.Symlink(target, rel(link)))
	})
}

func (m *mountFS) Readlink(p string) (string, experimentalsys.Errno) {
	dst, err := m.root.Readlink(rel(p))
	return dst, errno(err)
}

// Utimens sets the times of what p names (a link is followed);
// experimentalsys.UTIME_OMIT leaves one as it is.
func (m *mountFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	return m.change(func() experimentalsys.Errno {
		return errno(m.root.Chtimes(rel(p), utime(atim), utime(mtim)))
	})
}

// Lutimens sets the times of p itself, a symbolic link not followed
// (wasip1.Lutimenser: path_filestat_set_times without SYMLINK_FOLLOW).
func (m *mountFS) Lutimens(p string, atim, mtim int64) experimentalsys.Errno {
	return m.change(func() experimentalsys.Errno {
		dir, base := path.Split(rel(p))
		if base == "" || base == "." || base == ".." {
			return errno(m.root.Chtimes(rel(p), utime(atim), utime(mtim))) // a directory
		}
		if dir == "" {
			dir = "."
		}
		d, err := m.root.Open(dir)
		if err != nil {
			return errno(err)
		}
		defer d.Close()
		return errno(lutimes(d, base, atim, mtim))
	})
}

// utime is a time for Chtimes, whose zero time leaves the file's as it is.
func utime(ns int64) time.Time {
	if ns == experimentalsys.UTIME_OMIT {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (m *mountFS) change(op func() experimentalsys.Errno) experimentalsys.Errno {
	if m.readOnly {
		return experimentalsys.EROFS
	}
	return op()
}

// osOpenFlag is flag as os.OpenFile takes it.
func osOpenFlag(flag experimentalsys.Oflag) int {
	var out int
	switch flag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY) {
	case experimentalsys.O_RDWR:
		out = os.O_RDWR
	case experimentalsys.O_WRONLY:
		out = os.O_WRONLY
	}
	for _, f := range []struct {
		sys experimentalsys.Oflag
		os  int
	}{
		{experimentalsys.O_APPEND, os.O_APPEND},
		{experimentalsys.O_CREAT, os.O_CREATE},
		{experimentalsys.O_EXCL, os.O_EXCL},
		{experimentalsys.O_SYNC, os.O_SYNC},
		{experimentalsys.O_TRUNC, os.O_TRUNC},
		{experimentalsys.O_DIRECTORY, syscall.O_DIRECTORY},
		{experimentalsys.O_NOFOLLOW, syscall.O_NOFOLLOW},
		{experimentalsys.O_NONBLOCK, syscall.O_NONBLOCK},
		{experimentalsys.O_DSYNC, oDSYNC},
	} {
		if flag&f.sys != 0 {
			out |= f.os
		}
	}
	return out
}
