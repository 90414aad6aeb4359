package wasip2

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/component"
)

// Dir is a host directory preopened for a component (wasi:filesystem's
// preopens), under the same policy as preview 1's mounts: nothing outside
// it can be reached (paths are resolved in an os.Root, so neither ".."
// nor a symbolic link leads out: a component may make links, to relative
// targets), and a read-only one refuses every change (read-only).
type Dir struct {
	// Path is where the component sees it ("/data").
	Path     string
	Root     *os.Root
	ReadOnly bool
}

// descriptor is a wasi:filesystem descriptor: a preopened directory, or a
// file or directory opened under one.
type descriptor struct {
	dir   *Dir
	path  string   // in dir.Root: "." for the preopen
	file  *os.File // nil for a directory until it is read
	isDir bool
	write bool // opened for writing (descriptor-flags.write)
}

// entryStream is a directory-entry-stream: the entries, read at once.
type entryStream struct {
	entries []fs.DirEntry
}

// File system error codes: wasi:filesystem/types' error-code cases.
const (
	fsAccess       = 0
	fsBadFD        = 3
	fsExist        = 7
	fsInvalid      = 12
	fsIO           = 13
	fsIsDirectory  = 14
	fsLoop         = 15
	fsNameTooLong  = 18
	fsNoEntry      = 20
	fsNoSpace      = 23
	fsNotDirectory = 24
	fsNotEmpty     = 25
	fsNotPermitted = 31
	fsReadOnly     = 33
	fsCrossDevice  = 36
)

// descriptor-type cases.
const (
	typeUnknown   = 0
	typeDirectory = 3
	typeSymlink   = 5
	typeRegular   = 6
)

// descriptor-flags bits, open-flags bits.
const (
	flagRead            = 1 << 0
	flagWrite           = 1 << 1
	flagMutateDirectory = 1 << 5
	openCreate          = 1 << 0
	openDirectory       = 1 << 1
	openExclusive       = 1 << 2
	openTruncate        = 1 << 3
)

// fsErr is a result's error case of err's error-code.
func fsErr(err error) cabi.VariantValue {
	return cabi.VariantValue{Case: 1, Value: cabi.VariantValue{Case: fsCode(err)}}
}

func fsCode(err error) uint32 {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		if c, ok := errnoCodes[errno]; ok {
			return c
		}
	case errors.Is(err, fs.ErrNotExist):
		return fsNoEntry
	case errors.Is(err, fs.ErrExist):
		return fsExist
	case errors.Is(err, fs.ErrPermission):
		return fsAccess
	case strings.Contains(err.Error(), "path escapes"): // os.Root's
		return fsNotPermitted
	}
	return fsIO
}

var errnoCodes = map[syscall.Errno]uint32{
	syscall.ENOENT: fsNoEntry, syscall.EEXIST: fsExist, syscall.EACCES: fsAccess, syscall.EPERM: fsNotPermitted,
	syscall.ENOTDIR: fsNotDirectory, syscall.EISDIR: fsIsDirectory, syscall.ENOTEMPTY: fsNotEmpty,
	syscall.ELOOP: fsLoop, syscall.ENAMETOOLONG: fsNameTooLong, syscall.EXDEV: fsCrossDevice,
	syscall.EINVAL: fsInvalid, syscall.EBADF: fsBadFD, syscall.EROFS: fsReadOnly, syscall.ENOSPC: fsNoSpace,
}

var errReadOnly = syscall.EROFS

// at is the path p names relative to directory d, in d's root.
func (d *descriptor) at(p string) (string, error) {
	if !d.isDir {
		return "", syscall.ENOTDIR
	}
	if path.IsAbs(p) {
		return "", syscall.EPERM
	}
	return path.Join(d.path, p), nil
}

// mutate checks that d's directory may be changed.
func (d *descriptor) mutate() error {
	if d.dir.ReadOnly {
		return errReadOnly
	}
	return nil
}

func (d *descriptor) open() (*os.File, error) {
	if d.file == nil {
		f, err := d.dir.Root.Open(d.path)
		if err != nil {
			return nil, err
		}
		d.file = f
	}
	return d.file, nil
}

func fileType(m fs.FileMode) uint32 {
	switch {
	case m.IsDir():
		return typeDirectory
	case m&fs.ModeSymlink != 0:
		return typeSymlink
	case m.IsRegular():
		return typeRegular
	}
	return typeUnknown
}

func datetime(t time.Time) cabi.VariantValue {
	return some([]any{uint64(t.Unix()), uint32(t.Nanosecond())})
}

// stat is a descriptor-stat of fi: its type, links, size, and access,
// modification and status change times (wazero's portable Stat_t: where
// the system has no link count or times of its own, 1 and the
// modification time).
func stat(fi fs.FileInfo) []any {
	st := sys.NewStat_t(fi)
	return []any{cabi.VariantValue{Case: fileType(fi.Mode())}, st.Nlink, uint64(st.Size),
		datetime(time.Unix(0, st.Atim)), datetime(time.Unix(0, st.Mtim)), datetime(time.Unix(0, st.Ctim))}
}

// metadataHash is a metadata-hash-value of fi: its inode and device, or
// where the system has none, its modification time and size.
func metadataHash(fi fs.FileInfo) []any {
	if st := sys.NewStat_t(fi); st.Ino != 0 {
		return []any{st.Ino, st.Dev}
	}
	return []any{uint64(fi.ModTime().UnixNano()), uint64(fi.Size())}
}

// fileWriter writes a file from an offset on, or at its end (append).
type fileWriter struct {
	f      *os.File
	off    int64
	append bool
}

func (w *fileWriter) Write(b []byte) (int, error) {
	if w.append {
		fi, err := w.f.Stat()
		if err != nil {
			return 0, err
		}
		w.off = fi.Size()
	}
	n, err := w.f.WriteAt(b, w.off)
	w.off += int64(n)
	return n, err
}

// addFilesystem adds wasi:filesystem: the preopens of the Context's Dirs,
// and the descriptor functions the preview-1 adapter and wasi-libc use.
// The others (set-times, link-at, symlink-at, locks) answer as denied.
func addFilesystem(h *component.Host) {
	const types = "wasi:filesystem/types@0.2"
	add := func(fn string, f component.HostFunc) { h.Funcs[types+"#"+fn] = f }
	// desc adds a descriptor method: fn gets the descriptor and the
	// arguments after it, and returns the result.
	desc := func(name string, fn func(inst *component.Instance, d *descriptor, args []any) any) {
		add("[method]descriptor."+name, func(_ context.Context, inst *component.Instance, args []any) (any, error) {
			d, err := object[*descriptor](inst, args[0])
			if err != nil {
				return nil, err
			}
			return fn(inst, d, args[1:]), nil
		})
	}
	h.Funcs["wasi:filesystem/preopens@0.2#get-directories"] = func(_ context.Context, inst *component.Instance, _ []any) (any, error) {
		dirs := wctx(inst).Dirs
		out := make([]any, len(dirs))
		for i := range dirs {
			out[i] = []any{inst.NewObject(&descriptor{dir: &dirs[i], path: ".", isDir: true}), dirs[i].Path}
		}
		return out, nil
	}
	h.Drops[types+"#descriptor"] = func(inst *component.Instance, rep uint32) {
		if d, ok := inst.Object(rep).(*descriptor); ok && d.file != nil {
			d.file.Close()
		}
	}
	desc("get-type", func(_ *component.Instance, d *descriptor, _ []any) any {
		if d.isDir {
			return ok(cabi.VariantValue{Case: typeDirectory})
		}
		return ok(cabi.VariantValue{Case: typeRegular})
	})
	desc("get-flags", func(_ *component.Instance, d *descriptor, _ []any) any {
		flags := uint32(flagRead)
		if d.write {
			flags |= flagWrite
		}
		if d.isDir && !d.dir.ReadOnly {
			flags |= flagMutateDirectory
		}
		return ok(flags)
	})
	desc("stat", func(_ *component.Instance, d *descriptor, _ []any) any {
		fi, err := d.dir.Root.Stat(d.path)
		if err != nil {
			return fsErr(err)
		}
		return ok(stat(fi))
	})
	statAt := func(d *descriptor, args []any) (fs.FileInfo, error) {
		p, err := d.at(args[1].(string))
		if err != nil {
			return nil, err
		}
		if args[0].(uint32)&1 != 0 { // symlink-follow
			return d.dir.Root.Stat(p)
		}
		return d.dir.Root.Lstat(p)
	}
	desc("stat-at", func(_ *component.Instance, d *descriptor, args []any) any {
		fi, err := statAt(d, args)
		if err != nil {
			return fsErr(err)
		}
		return ok(stat(fi))
	})
	desc("metadata-hash", func(_ *component.Instance, d *descriptor, _ []any) any {
		fi, err := d.dir.Root.Stat(d.path)
		if err != nil {
			return fsErr(err)
		}
		return ok(metadataHash(fi))
	})
	desc("metadata-hash-at", func(_ *component.Instance, d *descriptor, args []any) any {
		fi, err := statAt(d, args)
		if err != nil {
			return fsErr(err)
		}
		return ok(metadataHash(fi))
	})
	desc("open-at", func(inst *component.Instance, d *descriptor, args []any) any {
		p, err := d.at(args[1].(string))
		if err != nil {
			return fsErr(err)
		}
		oflags, dflags := args[2].(uint32), args[3].(uint32)
		write := dflags&flagWrite != 0 || oflags&(openCreate|openTruncate) != 0
		if write && d.dir.ReadOnly {
			return fsErr(errReadOnly)
		}
		if oflags&openDirectory != 0 {
			fi, err := d.dir.Root.Stat(p)
			switch {
			case err != nil:
				return fsErr(err)
			case !fi.IsDir():
				return fsErr(syscall.ENOTDIR)
			}
			return ok(inst.NewObject(&descriptor{dir: d.dir, path: p, isDir: true}))
		}
		flag := os.O_RDONLY
		if dflags&flagWrite != 0 {
			flag = os.O_RDWR
		}
		if oflags&openCreate != 0 {
			flag |= os.O_CREATE
		}
		if oflags&openExclusive != 0 {
			flag |= os.O_EXCL
		}
		if oflags&openTruncate != 0 {
			flag |= os.O_TRUNC
		}
		f, err := d.dir.Root.OpenFile(p, flag, 0o644)
		if err != nil {
			return fsErr(err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return fsErr(err)
		}
		if fi.IsDir() {
			if write {
				f.Close()
				return fsErr(syscall.EISDIR)
			}
			return ok(inst.NewObject(&descriptor{dir: d.dir, path: p, file: f, isDir: true}))
		}
		return ok(inst.NewObject(&descriptor{dir: d.dir, path: p, file: f, write: dflags&flagWrite != 0}))
	})
	desc("read-via-stream", func(inst *component.Instance, d *descriptor, args []any) any {
		if d.isDir {
			return fsErr(syscall.EISDIR)
		}
		return ok(inst.NewObject(&inputStream{r: io.NewSectionReader(d.file, int64(args[0].(uint64)), 1<<62)}))
	})
	writeStream := func(appending bool) func(*component.Instance, *descriptor, []any) any {
		return func(inst *component.Instance, d *descriptor, args []any) any {
			if d.isDir || !d.write {
				return fsErr(syscall.EBADF)
			}
			w := &fileWriter{f: d.file, append: appending}
			if !appending {
				w.off = int64(args[0].(uint64))
			}
			return ok(inst.NewObject(&outputStream{w: w}))
		}
	}
	desc("write-via-stream", writeStream(false))
	desc("append-via-stream", writeStream(true))
	desc("read", func(_ *component.Instance, d *descriptor, args []any) any {
		if d.isDir {
			return fsErr(syscall.EISDIR)
		}
		buf := make([]byte, min(args[0].(uint64), maxRead))
		n, err := d.file.ReadAt(buf, int64(args[1].(uint64)))
		if err != nil && !errors.Is(err, io.EOF) {
			return fsErr(err)
		}
		return ok([]any{buf[:n], errors.Is(err, io.EOF)})
	})
	desc("write", func(_ *component.Instance, d *descriptor, args []any) any {
		if d.isDir || !d.write {
			return fsErr(syscall.EBADF)
		}
		n, err := d.file.WriteAt(args[0].([]byte), int64(args[1].(uint64)))
		if err != nil {
			return fsErr(err)
		}
		return ok(uint64(n))
	})
	desc("set-size", func(_ *component.Instance, d *descriptor, args []any) any {
		if d.isDir || !d.write {
			return fsErr(syscall.EBADF)
		}
		if err := d.file.Truncate(int64(args[0].(uint64))); err != nil {
			return fsErr(err)
		}
		return ok(nil)
	})
	sync := func(_ *component.Instance, d *descriptor, _ []any) any {
		if d.file != nil && d.write {
			if err := d.file.Sync(); err != nil {
				return fsErr(err)
			}
		}
		return ok(nil)
	}
	desc("sync", sync)
	desc("sync-data", sync)
	desc("advise", func(*component.Instance, *descriptor, []any) any { return ok(nil) })
	desc("read-directory", func(inst *component.Instance, d *descriptor, _ []any) any {
		if !d.isDir {
			return fsErr(syscall.ENOTDIR)
		}
		f, err := d.open()
		if err != nil {
			return fsErr(err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fsErr(err)
		}
		entries, err := f.ReadDir(-1)
		if err != nil {
			return fsErr(err)
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		return ok(inst.NewObject(&entryStream{entries: entries}))
	})
	add("[method]directory-entry-stream.read-directory-entry", method(func(s *entryStream, _ *component.Instance, _ []any) any {
		if len(s.entries) == 0 {
			return ok(none)
		}
		e := s.entries[0]
		s.entries = s.entries[1:]
		return ok(some([]any{cabi.VariantValue{Case: fileType(e.Type())}, e.Name()}))
	}))
	// change adds a function that changes directory d at a path.
	change := func(name string, op func(d *descriptor, p string) error) {
		desc(name, func(_ *component.Instance, d *descriptor, args []any) any {
			p, err := d.at(args[0].(string))
			if err == nil {
				err = d.mutate()
			}
			if err == nil {
				err = op(d, p)
			}
			if err != nil {
				return fsErr(err)
			}
			return ok(nil)
		})
	}
	change("create-directory-at", func(d *descriptor, p string) error { return d.dir.Root.Mkdir(p, 0o755) })
	change("unlink-file-at", func(d *descriptor, p string) error {
		if fi, err := d.dir.Root.Lstat(p); err == nil && fi.IsDir() {
			return syscall.EISDIR
		}
		return d.dir.Root.Remove(p)
	})
	change("remove-directory-at", func(d *descriptor, p string) error {
		if fi, err := d.dir.Root.Lstat(p); err == nil && !fi.IsDir() {
			return syscall.ENOTDIR
		}
		return d.dir.Root.Remove(p)
	})
	desc("rename-at", func(inst *component.Instance, d *descriptor, args []any) any {
		to, err := object[*descriptor](inst, args[1])
		if err != nil {
			return fsErr(syscall.EBADF)
		}
		if to.dir != d.dir {
			return fsErr(syscall.EXDEV)
		}
		from, err := d.at(args[0].(string))
		if err == nil {
			err = d.mutate()
		}
		var dest string
		if err == nil {
			dest, err = to.at(args[2].(string))
		}
		if err == nil {
			err = d.dir.Root.Rename(from, dest)
		}
		if err != nil {
			return fsErr(err)
		}
		return ok(nil)
	})
	desc("readlink-at", func(_ *component.Instance, d *descriptor, args []any) any {
		p, err := d.at(args[0].(string))
		if err != nil {
			return fsErr(err)
		}
		target, err := d.dir.Root.Readlink(p)
		if err != nil {
			return fsErr(err)
		}
		return ok(target)
	})
	// A link to any relative target: following one out of the directory
	// fails, as resolving it is the Root's. No host path is the guest's to
	// name: an absolute target is refused.
	desc("symlink-at", func(_ *component.Instance, d *descriptor, args []any) any {
		if d.dir.ReadOnly {
			return fsErr(errReadOnly)
		}
		target := args[0].(string)
		if path.IsAbs(target) {
			return fsErr(syscall.EPERM)
		}
		p, err := d.at(args[1].(string))
		if err != nil {
			return fsErr(err)
		}
		if err := d.dir.Root.Symlink(target, p); err != nil {
			return fsErr(err)
		}
		return ok(nil)
	})
	add("[method]descriptor.is-same-object", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		a, err := object[*descriptor](inst, args[0])
		if err != nil {
			return nil, err
		}
		b, err := object[*descriptor](inst, args[1])
		if err != nil {
			return nil, err
		}
		return a.dir == b.dir && a.path == b.path, nil
	})
	h.Funcs["wasi:filesystem/types@0.2#filesystem-error-code"] = func(context.Context, *component.Instance, []any) (any, error) {
		return none, nil
	}
}
