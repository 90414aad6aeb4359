package wasip1

import (
	"context"
	"io/fs"
	"math"
	"path"
	"strings"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// lookupSymlinkFollow is the lookupflags bit that follows a last symbolic
// link.
const lookupSymlinkFollow = 1

// oflags.
const (
	oflagCreat     = 1 << 0
	oflagDirectory = 1 << 1
	oflagExcl      = 1 << 2
	oflagTrunc     = 1 << 3
)

// Lutimenser is a file system that can set the times of a symbolic link
// itself (path_filestat_set_times without SYMLINK_FOLLOW). One without it
// answers ENOTSUP for a link.
type Lutimenser interface {
	Lutimens(path string, atim, mtim int64) experimentalsys.Errno
}

// pathArg is the file system and path of a path_ function's directory
// descriptor and path string, the descriptor having the rights need.
func (c call) pathArg(fd uint32, need uint64, off, n uint32) (experimentalsys.FS, string, errno) {
	p, en := c.path(off, n)
	if en != 0 {
		return nil, "", en
	}
	return c.t.at(fd, need, p)
}

func pathCreateDirectory(_ context.Context, c call, p []uint64) errno {
	fsys, name, en := c.pathArg(uint32(p[0]), rightPathCreateDirectory, uint32(p[1]), uint32(p[2]))
	if en != 0 {
		return en
	}
	return fromSys(fsys.Mkdir(strings.TrimSuffix(name, "/"), 0o755))
}

func pathFilestatGet(_ context.Context, c call, p []uint64) errno {
	fsys, name, en := c.pathArg(uint32(p[0]), rightPathFilestatGet, uint32(p[2]), uint32(p[3]))
	if en != 0 {
		return en
	}
	stat := fsys.Lstat
	if uint32(p[1])&lookupSymlinkFollow != 0 {
		stat = fsys.Stat
	}
	st, serr := stat(name)
	if serr != 0 {
		return fromSys(serr)
	}
	return c.filestat(uint32(p[4]), &st, filetype(st.Mode))
}

func pathFilestatSetTimes(_ context.Context, c call, p []uint64) errno {
	fsys, name, en := c.pathArg(uint32(p[0]), rightPathFilestatSetTimes, uint32(p[2]), uint32(p[3]))
	if en != 0 {
		return en
	}
	a, m, en := c.times(int64(p[4]), int64(p[5]), uint64(uint32(p[6])))
	if en != 0 {
		return en
	}
	if uint32(p[1])&lookupSymlinkFollow == 0 {
		st, serr := fsys.Lstat(strings.TrimSuffix(name, "/"))
		if serr != 0 {
			return fromSys(serr)
		}
		if st.Mode&fs.ModeSymlink != 0 {
			l, ok := fsys.(Lutimenser)
			if !ok {
				return errnoNotsup
			}
			return fromSys(l.Lutimens(strings.TrimSuffix(name, "/"), a, m))
		}
	}
	return fromSys(fsys.Utimens(name, a, m))
}

// maxSymlinks bounds the links followed in one lookup (ELOOP beyond), as
// Linux's MAXSYMLINKS.
const maxSymlinks = 40

// follow is name with its symbolic links resolved, as far as each leads
// within fsys: a link to an absolute path, or out of fsys, is EPERM.
func follow(fsys experimentalsys.FS, name string) (string, errno) {
	for range maxSymlinks {
		st, serr := fsys.Lstat(name)
		if serr != 0 || st.Mode&fs.ModeSymlink == 0 {
			return name, 0 // what is not a link (or not there) is looked up as it is
		}
		target, serr := fsys.Readlink(name)
		if serr != 0 {
			return "", fromSys(serr)
		}
		if path.IsAbs(target) {
			return "", errnoPerm
		}
		name = path.Join(path.Dir(name), target)
		if !fs.ValidPath(name) {
			return "", errnoPerm
		}
	}
	return "", errnoLoop
}

func pathLink(_ context.Context, c call, p []uint64) errno {
	oldFS, oldName, en := c.pathArg(uint32(p[0]), rightPathLinkSource, uint32(p[2]), uint32(p[3]))
	if en != 0 {
		return en
	}
	newFS, newName, en := c.pathArg(uint32(p[4]), rightPathLinkTarget, uint32(p[5]), uint32(p[6]))
	if en != 0 {
		return en
	}
	if oldFS != newFS {
		return errnoXdev
	}
	if uint32(p[1])&lookupSymlinkFollow != 0 {
		if oldName, en = follow(oldFS, oldName); en != 0 {
			return en
		}
	}
	return fromSys(oldFS.Link(oldName, newName))
}

func pathOpen(_ context.Context, c call, p []uint64) errno {
	if uint32(p[4]) > math.MaxUint16 || uint32(p[7]) > math.MaxUint16 { // i32s: the high half of a slot is not theirs
		return errnoInval
	}
	dirflags, oflags, fdflags := uint32(p[1]), uint16(p[4]), uint16(p[7])
	need := uint64(rightPathOpen)
	if oflags&oflagCreat != 0 {
		need |= rightPathCreateFile
	}
	if oflags&oflagTrunc != 0 {
		need |= rightPathFilestatSetSize
	}
	dir, en := c.t.getRights(uint32(p[0]), need)
	if en != 0 {
		return en
	}
	fsys, name, en := c.pathArg(uint32(p[0]), need, uint32(p[2]), uint32(p[3]))
	if en != 0 {
		return en
	}
	if oflags&^(oflagCreat|oflagDirectory|oflagExcl|oflagTrunc) != 0 ||
		oflags&oflagDirectory != 0 && oflags&(oflagCreat|oflagTrunc) != 0 {
		return errnoInval
	}
	// What is opened has at most the rights its directory passes on.
	base, inh := p[5]&dir.inh, p[6]&dir.inh
	flag := openFlags(dirflags, oflags, fdflags, base)
	f, serr := fsys.OpenFile(name, flag, 0o644)
	if serr != 0 {
		return fromSys(serr)
	}
	e := &entry{file: f, fdflag: fdflags & (fdflagDsync | fdflagRsync | fdflagSync)}
	isDir, serr := f.IsDir()
	switch {
	case serr != 0:
		_ = f.Close()
		return fromSys(serr)
	case isDir:
		e.ftype, e.fs, e.name = filetypeDirectory, fsys, strings.TrimSuffix(name, "/")
		e.base, e.inh = base&rightsDirBase, inh
	case oflags&oflagDirectory != 0 || strings.HasSuffix(name, "/"):
		_ = f.Close()
		return errnoNotdir
	default:
		st, serr := f.Stat()
		if serr != 0 {
			_ = f.Close()
			return fromSys(serr)
		}
		e.ftype, e.base, e.inh = filetype(st.Mode), base&rightsFileBase, 0
	}
	fd, en := c.t.add(e)
	if en != 0 {
		_ = f.Close()
		return en
	}
	if en := c.u32(uint32(p[8]), fd); en != 0 {
		_ = c.t.close(fd)
		return en
	}
	return 0
}

// openBits are the oflags (low half) and fdflags (high half) path_open
// passes on as open flags.
var openBits = []struct {
	bit  uint32
	flag experimentalsys.Oflag
}{
	{oflagDirectory, experimentalsys.O_DIRECTORY}, {oflagCreat, experimentalsys.O_CREAT},
	{oflagExcl, experimentalsys.O_EXCL}, {oflagTrunc, experimentalsys.O_TRUNC},
	{fdflagAppend << 16, experimentalsys.O_APPEND}, {fdflagNonblock << 16, experimentalsys.O_NONBLOCK},
	{fdflagDsync << 16, experimentalsys.O_DSYNC}, {fdflagRsync << 16, experimentalsys.O_RSYNC},
	{fdflagSync << 16, experimentalsys.O_SYNC},
}

// openFlags are the flags a path_open opens with: for reading, writing or
// both as its rights say, else as its oflags need.
func openFlags(dirflags uint32, oflags, fdflags uint16, rights uint64) experimentalsys.Oflag {
	var flag experimentalsys.Oflag
	if dirflags&lookupSymlinkFollow == 0 {
		flag |= experimentalsys.O_NOFOLLOW
	}
	// O_DIRECTORY with write rights opens for writing too: EISDIR, as
	// open(2) says.
	for _, f := range openBits {
		if (uint32(oflags)|uint32(fdflags)<<16)&f.bit != 0 {
			flag |= f.flag
		}
	}
	// Written only with FD_WRITE: the other rights that change a file
	// (FD_ALLOCATE, FD_FILESTAT_SET_SIZE) fail on their own when it is not
	// open for writing, and Go's os.Open asks for them with every file.
	r, w := rights&(rightFdRead|rightFdReaddir) != 0, rights&rightFdWrite != 0
	if !r && !w && (flag&(experimentalsys.O_TRUNC|experimentalsys.O_APPEND) != 0) {
		w = true // a file truncated or appended to is written
	}
	switch {
	case r && w:
		return flag | experimentalsys.O_RDWR
	case w:
		return flag | experimentalsys.O_WRONLY
	}
	return flag | experimentalsys.O_RDONLY
}

func pathReadlink(_ context.Context, c call, p []uint64) errno {
	fsys, name, en := c.pathArg(uint32(p[0]), rightPathReadlink, uint32(p[1]), uint32(p[2]))
	if en != 0 {
		return en
	}
	target, serr := fsys.Readlink(name)
	if serr != 0 {
		return fromSys(serr)
	}
	out, en := c.read(uint32(p[3]), uint32(p[4]))
	if en != 0 {
		return en
	}
	// As readlink(2): a target longer than the buffer is cut to it.
	return c.u32(uint32(p[5]), uint32(copy(out, target)))
}

func pathRemoveDirectory(_ context.Context, c call, p []uint64) errno {
	fsys, name, en := c.pathArg(uint32(p[0]), rightPathRemoveDirectory, uint32(p[1]), uint32(p[2]))
	if en != 0 {
		return en
	}
	return fromSys(fsys.Rmdir(strings.TrimSuffix(name, "/")))
}

func pathRename(_ context.Context, c call, p []uint64) errno {
	oldFS, oldName, en := c.pathArg(uint32(p[0]), rightPathRenameSource, uint32(p[1]), uint32(p[2]))
	if en != 0 {
		return en
	}
	newFS, newName, en := c.pathArg(uint32(p[3]), rightPathRenameTarget, uint32(p[4]), uint32(p[5]))
	if en != 0 {
		return en
	}
	if oldFS != newFS {
		return errnoXdev
	}
	return fromSys(oldFS.Rename(oldName, newName))
}

func pathSymlink(_ context.Context, c call, p []uint64) errno {
	target, en := c.path(uint32(p[0]), uint32(p[1]))
	if en != 0 {
		return en
	}
	fsys, name, en := c.pathArg(uint32(p[2]), rightPathSymlink, uint32(p[3]), uint32(p[4]))
	if en != 0 {
		return en
	}
	if target == "" {
		return errnoNoent
	}
	return fromSys(fsys.Symlink(target, name))
}

func pathUnlinkFile(_ context.Context, c call, p []uint64) errno {
	fsys, name, en := c.pathArg(uint32(p[0]), rightPathUnlinkFile, uint32(p[1]), uint32(p[2]))
	if en != 0 {
		return en
	}
	return fromSys(fsys.Unlink(name))
}
