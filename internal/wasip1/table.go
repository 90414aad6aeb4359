package wasip1

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// Table is the descriptors of one run of a guest: its standard streams
// (0, 1, 2), its preopened directories (3 on), and what it opens. A Table
// is used by one run at a time: its guest's calls are sequential.
type Table struct {
	entries []*entry // by descriptor; nil: free
	// maxFiles bounds the descriptors a run holds at once (EMFILE beyond).
	maxFiles int
	// The standard streams' entries and files, made once for every run.
	stdio    [3]entry
	in       stdin
	out, err stdout
}

// entry is an open descriptor.
type entry struct {
	file   experimentalsys.File
	ftype  uint8
	fs     experimentalsys.FS // a directory's file system, for the path_ functions
	name   string             // a directory's path within fs ("." for a preopen's root)
	guest  string             // a preopen's guest path ("" for any other descriptor)
	stdio  bool               // a standard stream, which poll_oneoff finds ready
	base   uint64             // the rights of the descriptor
	inh    uint64             // the rights of what is opened through it
	fdflag uint16             // fdflags the file system does not keep (SYNC, DSYNC, RSYNC)
	// dirents are entries of a directory's listing ("." and ".." first)
	// from cookie dirStart on, as fd_readdir last needed them; dirEOF says
	// the listing has no more.
	dirents  []experimentalsys.Dirent
	dirStart uint64
	dirEOF   bool
}

// DefaultMaxFiles is a Table's bound on open descriptors, unless NewTable
// is given another. (A file of a mount holds two of the host's.)
const DefaultMaxFiles = 256

// NewTable makes a table with the standard streams: stdin reads from in
// (nil: at its end), stdout and stderr write to out and errOut (nil:
// discarded). maxFiles bounds the descriptors open at once (0:
// DefaultMaxFiles).
func NewTable(in io.Reader, out, errOut io.Writer, maxFiles int) *Table {
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	t := &Table{maxFiles: maxFiles}
	t.Reset(in, out, errOut)
	return t
}

// Reset makes t as NewTable made it, for another run: every descriptor but
// the standard streams closed, and those given in, out and errOut.
func (t *Table) Reset(in io.Reader, out, errOut io.Writer) {
	t.Close()
	t.in, t.out, t.err = stdin{r: in}, stdout{w: out}, stdout{w: errOut}
	t.stdio = [3]entry{
		{file: &t.in, ftype: filetypeCharacterDevice, stdio: true, base: rightsStdin},
		{file: &t.out, ftype: filetypeCharacterDevice, stdio: true, base: rightsStdout},
		{file: &t.err, ftype: filetypeCharacterDevice, stdio: true, base: rightsStdout},
	}
	t.entries = append(t.entries[:0], &t.stdio[0], &t.stdio[1], &t.stdio[2])
}

// Preopen adds the root of fsys as a preopened directory the guest knows
// as guestPath, at the next free descriptor.
func (t *Table) Preopen(fsys experimentalsys.FS, guestPath string) error {
	f, en := fsys.OpenFile(".", experimentalsys.O_RDONLY|experimentalsys.O_DIRECTORY, 0)
	if en != 0 {
		return fmt.Errorf("preopen %s: %w", guestPath, en)
	}
	if _, en := t.add(&entry{file: f, ftype: filetypeDirectory, fs: fsys, name: ".", guest: guestPath, base: rightsDirBase, inh: rightsDirBase | rightsFileBase}); en != 0 {
		_ = f.Close()
		return fmt.Errorf("preopen %s: %s", guestPath, en)
	}
	return nil
}

// Close closes every descriptor but the standard streams, whose readers
// and writers are the caller's.
func (t *Table) Close() {
	for fd, e := range t.entries {
		if e != nil && !e.stdio {
			_ = e.file.Close()
		}
		t.entries[fd] = nil
	}
	t.entries = t.entries[:0]
}

func (t *Table) get(fd uint32) (*entry, errno) {
	if int(fd) >= len(t.entries) || t.entries[fd] == nil {
		return nil, errnoBadf
	}
	return t.entries[fd], 0
}

// getRights is descriptor fd if it has every right of need, else
// ENOTCAPABLE.
func (t *Table) getRights(fd uint32, need uint64) (*entry, errno) {
	e, en := t.get(fd)
	if en != 0 {
		return nil, en
	}
	if e.base&need != need {
		return nil, errnoNotcapable
	}
	return e, 0
}

// add puts e at the lowest free descriptor.
func (t *Table) add(e *entry) (uint32, errno) {
	open := 0
	free := -1
	for fd, x := range t.entries {
		if x == nil {
			if free < 0 {
				free = fd
			}
		} else {
			open++
		}
	}
	if open >= t.maxFiles {
		return 0, errnoMfile
	}
	if free >= 0 {
		t.entries[free] = e
		return uint32(free), 0
	}
	t.entries = append(t.entries, e)
	return uint32(len(t.entries) - 1), 0
}

// close closes descriptor fd.
func (t *Table) close(fd uint32) errno {
	e, en := t.get(fd)
	if en != 0 {
		return en
	}
	t.entries[fd] = nil
	if e.stdio {
		return 0
	}
	return fromSys(e.file.Close())
}

// renumber moves descriptor from to to, closing what to was.
func (t *Table) renumber(from, to uint32) errno {
	e, en := t.get(from)
	if en != 0 {
		return en
	}
	if _, en := t.get(to); en != 0 {
		return en
	}
	if from == to {
		return 0
	}
	_ = t.close(to) // to is gone whatever its close says
	t.entries[to], t.entries[from] = e, nil
	return 0
}

// at is the file system and path a path_ function names: path relative to
// the directory fd, which must have the rights need. Paths that leave the
// directory are EPERM; a trailing slash is kept (it says the path must be
// a directory).
func (t *Table) at(fd uint32, need uint64, p string) (experimentalsys.FS, string, errno) {
	e, en := t.getRights(fd, need)
	if en != 0 {
		return nil, "", en
	}
	if e.fs == nil || e.ftype != filetypeDirectory {
		return nil, "", errnoNotdir
	}
	if p == "" {
		return nil, "", errnoNoent
	}
	slash := strings.HasSuffix(p, "/")
	p = path.Clean(p)
	if !fs.ValidPath(p) {
		return nil, "", errnoPerm
	}
	if slash && p != "." {
		p += "/"
	}
	if e.name != "." {
		p = e.name + "/" + p
	}
	return e.fs, p, 0
}

// The standard streams.
type (
	stdin struct {
		experimentalsys.UnimplementedFile
		r io.Reader
	}
	stdout struct {
		experimentalsys.UnimplementedFile
		w io.Writer
	}
)

// The standard streams go one way: the other answers EBADF, as a
// descriptor open for reading only (or writing only) does.
func (*stdin) Write([]byte) (int, experimentalsys.Errno) { return 0, experimentalsys.EBADF }
func (*stdout) Read([]byte) (int, experimentalsys.Errno) { return 0, experimentalsys.EBADF }

func (s *stdin) Read(p []byte) (int, experimentalsys.Errno) {
	if s.r == nil || len(p) == 0 {
		return 0, 0
	}
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && n == 0 {
		return 0, experimentalsys.EIO
	}
	return n, 0
}

func (s *stdout) Write(p []byte) (int, experimentalsys.Errno) {
	if s.w == nil {
		return len(p), 0
	}
	n, err := s.w.Write(p)
	if err != nil {
		return n, experimentalsys.EIO
	}
	return n, 0
}

func (*stdin) Stat() (sys.Stat_t, experimentalsys.Errno) {
	return sys.Stat_t{Mode: fs.ModeDevice | fs.ModeCharDevice | 0o400, Nlink: 1}, 0
}

func (*stdout) Stat() (sys.Stat_t, experimentalsys.Errno) {
	return sys.Stat_t{Mode: fs.ModeDevice | fs.ModeCharDevice | 0o200, Nlink: 1}, 0
}

func (*stdin) IsDir() (bool, experimentalsys.Errno)  { return false, 0 }
func (*stdout) IsDir() (bool, experimentalsys.Errno) { return false, 0 }
func (*stdin) Close() experimentalsys.Errno          { return 0 }
func (*stdout) Close() experimentalsys.Errno         { return 0 }
