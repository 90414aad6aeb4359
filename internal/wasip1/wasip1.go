// Package wasip1 implements the descriptor functions of WASI preview 1
// (wasi_snapshot_preview1: fd_*, path_*, poll_oneoff and sock_*) over
// wazero's experimental sys.FS and sys.File, with a descriptor table of its
// own per run: rights kept per descriptor and checked, fd_renumber onto
// any descriptor, preopens that can be closed and replaced, and the
// lookup flags of path_link and path_filestat_set_times honoured. The
// other functions (args, environment, clocks, random, proc_exit) stay
// wazero's; Export replaces only these in a host module builder that
// wazero's wasi_snapshot_preview1 exporter filled.
//
// The definition is the preview 1 witx
// (WebAssembly/WASI phases/snapshot/witx/wasi_snapshot_preview1.witx), and
// the test is WebAssembly/wasi-testsuite (tests/wasitestsuite_test.go).
package wasip1

import (
	"context"
	"encoding/binary"
	"strconv"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// errno is a WASI errno.
type errno uint16

// The WASI errno values this package answers.
const (
	errnoSuccess     errno = 0
	errno2big        errno = 1
	errnoAcces       errno = 2
	errnoAgain       errno = 6
	errnoBadf        errno = 8
	errnoExist       errno = 20
	errnoFault       errno = 21
	errnoIntr        errno = 27
	errnoInval       errno = 28
	errnoIo          errno = 29
	errnoIsdir       errno = 31
	errnoLoop        errno = 32
	errnoMfile       errno = 33
	errnoNametoolong errno = 37
	errnoNoent       errno = 44
	errnoNosys       errno = 52
	errnoNotdir      errno = 54
	errnoNotempty    errno = 55
	errnoNotsock     errno = 57
	errnoNotsup      errno = 58
	errnoOverflow    errno = 61
	errnoPerm        errno = 63
	errnoRange       errno = 68
	errnoRofs        errno = 69
	errnoSpipe       errno = 70
	errnoXdev        errno = 75
	errnoNotcapable  errno = 76
)

// fromSys is the WASI errno of a file system's error.
func fromSys(e experimentalsys.Errno) errno {
	switch e {
	case 0:
		return errnoSuccess
	case experimentalsys.EACCES:
		return errnoAcces
	case experimentalsys.EAGAIN:
		return errnoAgain
	case experimentalsys.EBADF:
		return errnoBadf
	case experimentalsys.EEXIST:
		return errnoExist
	case experimentalsys.EFAULT:
		return errnoFault
	case experimentalsys.EINTR:
		return errnoIntr
	case experimentalsys.EINVAL:
		return errnoInval
	case experimentalsys.EISDIR:
		return errnoIsdir
	case experimentalsys.ELOOP:
		return errnoLoop
	case experimentalsys.ENAMETOOLONG:
		return errnoNametoolong
	case experimentalsys.ENOENT:
		return errnoNoent
	case experimentalsys.ENOSYS:
		return errnoNosys
	case experimentalsys.ENOTDIR:
		return errnoNotdir
	case experimentalsys.ERANGE:
		return errnoRange
	case experimentalsys.ENOTEMPTY:
		return errnoNotempty
	case experimentalsys.ENOTSOCK:
		return errnoNotsock
	case experimentalsys.ENOTSUP:
		return errnoNotsup
	case experimentalsys.EPERM:
		return errnoPerm
	case experimentalsys.EROFS:
		return errnoRofs
	default:
		return errnoIo
	}
}

// Filetypes.
const (
	filetypeUnknown         uint8 = 0
	filetypeBlockDevice     uint8 = 1
	filetypeCharacterDevice uint8 = 2
	filetypeDirectory       uint8 = 3
	filetypeRegularFile     uint8 = 4
	filetypeSocketStream    uint8 = 6
	filetypeSymbolicLink    uint8 = 7
)

// fdflags.
const (
	fdflagAppend   = 1 << 0
	fdflagDsync    = 1 << 1
	fdflagNonblock = 1 << 2
	fdflagRsync    = 1 << 3
	fdflagSync     = 1 << 4
)

// Rights.
const (
	rightFdDatasync = 1 << iota
	rightFdRead
	rightFdSeek
	rightFdFdstatSetFlags
	rightFdSync
	rightFdTell
	rightFdWrite
	rightFdAdvise
	rightFdAllocate
	rightPathCreateDirectory
	rightPathCreateFile
	rightPathLinkSource
	rightPathLinkTarget
	rightPathOpen
	rightFdReaddir
	rightPathReadlink
	rightPathRenameSource
	rightPathRenameTarget
	rightPathFilestatGet
	rightPathFilestatSetSize
	rightPathFilestatSetTimes
	rightFdFilestatGet
	rightFdFilestatSetSize
	rightFdFilestatSetTimes
	rightPathSymlink
	rightPathRemoveDirectory
	rightPathUnlinkFile
	rightPollFdReadwrite
	rightSockShutdown
	rightSockAccept

	// rightsFileBase are the rights a regular file may have.
	rightsFileBase = rightFdDatasync | rightFdRead | rightFdSeek | rightFdFdstatSetFlags | rightFdSync |
		rightFdTell | rightFdWrite | rightFdAdvise | rightFdAllocate | rightFdFilestatGet |
		rightFdFilestatSetSize | rightFdFilestatSetTimes | rightPollFdReadwrite
	// rightsDirBase are the rights a directory may have.
	rightsDirBase = rightFdFdstatSetFlags | rightFdSync | rightFdAdvise | rightPathCreateDirectory |
		rightPathCreateFile | rightPathLinkSource | rightPathLinkTarget | rightPathOpen | rightFdReaddir |
		rightPathReadlink | rightPathRenameSource | rightPathRenameTarget | rightPathFilestatGet |
		rightPathFilestatSetSize | rightPathFilestatSetTimes | rightFdFilestatGet | rightFdFilestatSetTimes |
		rightPathSymlink | rightPathRemoveDirectory | rightPathUnlinkFile | rightPollFdReadwrite
	// The standard streams' rights, as wasmtime gives a terminal's.
	rightsStdin  = rightFdRead | rightFdFdstatSetFlags | rightFdWrite | rightFdFilestatGet | rightPollFdReadwrite
	rightsStdout = rightsStdin
)

// Host is what the functions need of the embedder.
type Host struct {
	// Table gives the descriptor table of the run making the call; nil
	// answers EBADF to every descriptor.
	Table func(ctx context.Context) *Table
	// Wait, when set, gives the context a call that may block
	// (poll_oneoff's clock and stdin waits) waits in: it should end at the
	// run's deadline. Default: the call's own context.
	Wait func(ctx context.Context) context.Context
	// Walltime gives the time for the timestamps set to "now", in
	// nanoseconds since the epoch. Default: time.Now.
	Walltime func() int64
}

var le = binary.LittleEndian

const i32, i64 = api.ValueTypeI32, api.ValueTypeI64

// fn is a function of this package: its parameters in p, its errno
// returned.
type fn func(ctx context.Context, c call, p []uint64) errno

// call is what a function is given of its call.
type call struct {
	t    *Table
	mem  api.Memory
	host *Host
}

// Export replaces the descriptor functions in b, a builder of the
// wasi_snapshot_preview1 host module, by this package's.
func Export(b wazero.HostModuleBuilder, h *Host) {
	for _, f := range functions {
		export(b, h, f.name, f.fn, f.params, f.names...)
	}
}

func export(b wazero.HostModuleBuilder, h *Host, name string, f fn, params []api.ValueType, names ...string) {
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			c := call{t: h.Table(ctx), mem: mod.Memory(), host: h}
			if c.t == nil {
				stack[0] = uint64(errnoBadf)
				return
			}
			stack[0] = uint64(f(ctx, c, stack))
		}), params, []api.ValueType{i32}).
		WithParameterNames(names...).
		Export(name)
}

type function struct {
	name   string
	fn     fn
	params []api.ValueType
	names  []string
}

// functions are the functions Export replaces, in the witx's order.
var functions = []function{
	{"fd_advise", fdAdvise, []api.ValueType{i32, i64, i64, i32}, []string{"fd", "offset", "len", "advice"}},
	{"fd_allocate", fdAllocate, []api.ValueType{i32, i64, i64}, []string{"fd", "offset", "len"}},
	{"fd_close", fdClose, []api.ValueType{i32}, []string{"fd"}},
	{"fd_datasync", fdDatasync, []api.ValueType{i32}, []string{"fd"}},
	{"fd_fdstat_get", fdFdstatGet, []api.ValueType{i32, i32}, []string{"fd", "result.stat"}},
	{"fd_fdstat_set_flags", fdFdstatSetFlags, []api.ValueType{i32, i32}, []string{"fd", "flags"}},
	{"fd_fdstat_set_rights", fdFdstatSetRights, []api.ValueType{i32, i64, i64}, []string{"fd", "fs_rights_base", "fs_rights_inheriting"}},
	{"fd_filestat_get", fdFilestatGet, []api.ValueType{i32, i32}, []string{"fd", "result.buf"}},
	{"fd_filestat_set_size", fdFilestatSetSize, []api.ValueType{i32, i64}, []string{"fd", "size"}},
	{"fd_filestat_set_times", fdFilestatSetTimes, []api.ValueType{i32, i64, i64, i32}, []string{"fd", "atim", "mtim", "fst_flags"}},
	{"fd_pread", fdPread, []api.ValueType{i32, i32, i32, i64, i32}, []string{"fd", "iovs", "iovs_len", "offset", "result.nread"}},
	{"fd_prestat_get", fdPrestatGet, []api.ValueType{i32, i32}, []string{"fd", "result.prestat"}},
	{"fd_prestat_dir_name", fdPrestatDirName, []api.ValueType{i32, i32, i32}, []string{"fd", "path", "path_len"}},
	{"fd_pwrite", fdPwrite, []api.ValueType{i32, i32, i32, i64, i32}, []string{"fd", "iovs", "iovs_len", "offset", "result.nwritten"}},
	{"fd_read", fdRead, []api.ValueType{i32, i32, i32, i32}, []string{"fd", "iovs", "iovs_len", "result.nread"}},
	{"fd_readdir", fdReaddir, []api.ValueType{i32, i32, i32, i64, i32}, []string{"fd", "buf", "buf_len", "cookie", "result.bufused"}},
	{"fd_renumber", fdRenumber, []api.ValueType{i32, i32}, []string{"fd", "to"}},
	{"fd_seek", fdSeek, []api.ValueType{i32, i64, i32, i32}, []string{"fd", "offset", "whence", "result.newoffset"}},
	{"fd_sync", fdSync, []api.ValueType{i32}, []string{"fd"}},
	{"fd_tell", fdTell, []api.ValueType{i32, i32}, []string{"fd", "result.offset"}},
	{"fd_write", fdWrite, []api.ValueType{i32, i32, i32, i32}, []string{"fd", "iovs", "iovs_len", "result.nwritten"}},
	{"path_create_directory", pathCreateDirectory, []api.ValueType{i32, i32, i32}, []string{"fd", "path", "path_len"}},
	{"path_filestat_get", pathFilestatGet, []api.ValueType{i32, i32, i32, i32, i32}, []string{"fd", "flags", "path", "path_len", "result.buf"}},
	{"path_filestat_set_times", pathFilestatSetTimes, []api.ValueType{i32, i32, i32, i32, i64, i64, i32}, []string{"fd", "flags", "path", "path_len", "atim", "mtim", "fst_flags"}},
	{"path_link", pathLink, []api.ValueType{i32, i32, i32, i32, i32, i32, i32}, []string{"old_fd", "old_flags", "old_path", "old_path_len", "new_fd", "new_path", "new_path_len"}},
	{"path_open", pathOpen, []api.ValueType{i32, i32, i32, i32, i32, i64, i64, i32, i32}, []string{"fd", "dirflags", "path", "path_len", "oflags", "fs_rights_base", "fs_rights_inheriting", "fdflags", "result.opened_fd"}},
	{"path_readlink", pathReadlink, []api.ValueType{i32, i32, i32, i32, i32, i32}, []string{"fd", "path", "path_len", "buf", "buf_len", "result.bufused"}},
	{"path_remove_directory", pathRemoveDirectory, []api.ValueType{i32, i32, i32}, []string{"fd", "path", "path_len"}},
	{"path_rename", pathRename, []api.ValueType{i32, i32, i32, i32, i32, i32}, []string{"fd", "old_path", "old_path_len", "new_fd", "new_path", "new_path_len"}},
	{"path_symlink", pathSymlink, []api.ValueType{i32, i32, i32, i32, i32}, []string{"old_path", "old_path_len", "fd", "new_path", "new_path_len"}},
	{"path_unlink_file", pathUnlinkFile, []api.ValueType{i32, i32, i32}, []string{"fd", "path", "path_len"}},
	{"poll_oneoff", pollOneoff, []api.ValueType{i32, i32, i32, i32}, []string{"in", "out", "nsubscriptions", "result.nevents"}},
	{"sock_accept", sockAccept, []api.ValueType{i32, i32, i32}, []string{"fd", "flags", "result.fd"}},
	{"sock_recv", sockRecv, []api.ValueType{i32, i32, i32, i32, i32, i32}, []string{"fd", "ri_data", "ri_data_len", "ri_flags", "result.ro_datalen", "result.ro_flags"}},
	{"sock_send", sockSend, []api.ValueType{i32, i32, i32, i32, i32}, []string{"fd", "si_data", "si_data_len", "si_flags", "result.so_datalen"}},
	{"sock_shutdown", sockShutdown, []api.ValueType{i32, i32}, []string{"fd", "how"}},
}

// read is n bytes of the guest's memory at off (a view), or EFAULT.
func (c call) read(off, n uint32) ([]byte, errno) {
	if c.mem == nil { // a guest without memory
		return nil, errnoFault
	}
	b, ok := c.mem.Read(off, n)
	if !ok {
		return nil, errnoFault
	}
	return b, 0
}

// maxPath bounds a path's length, as wasi-libc's PATH_MAX.
const maxPath = 4096

// path is the string of n bytes at off.
func (c call) path(off, n uint32) (string, errno) {
	if n > maxPath {
		return "", errnoNametoolong
	}
	b, en := c.read(off, n)
	return string(b), en
}

func (c call) u32(off, v uint32) errno {
	if c.mem == nil || !c.mem.WriteUint32Le(off, v) {
		return errnoFault
	}
	return 0
}

func (c call) u64(off uint32, v uint64) errno {
	if c.mem == nil || !c.mem.WriteUint64Le(off, v) {
		return errnoFault
	}
	return 0
}

// String names the errno as WASI does.
func (e errno) String() string {
	if name, ok := errnoNames[e]; ok {
		return name
	}
	return "errno " + strconv.Itoa(int(e))
}

var errnoNames = map[errno]string{
	errnoSuccess: "success", errno2big: "E2BIG", errnoAcces: "EACCES", errnoAgain: "EAGAIN",
	errnoBadf: "EBADF", errnoExist: "EEXIST", errnoFault: "EFAULT", errnoIntr: "EINTR",
	errnoInval: "EINVAL", errnoIo: "EIO", errnoIsdir: "EISDIR", errnoLoop: "ELOOP",
	errnoMfile: "EMFILE", errnoNametoolong: "ENAMETOOLONG", errnoNoent: "ENOENT", errnoNosys: "ENOSYS",
	errnoNotdir: "ENOTDIR", errnoNotempty: "ENOTEMPTY", errnoNotsock: "ENOTSOCK", errnoNotsup: "ENOTSUP",
	errnoOverflow: "EOVERFLOW", errnoPerm: "EPERM", errnoRange: "ERANGE", errnoRofs: "EROFS",
	errnoSpipe: "ESPIPE", errnoXdev: "EXDEV", errnoNotcapable: "ENOTCAPABLE",
}
