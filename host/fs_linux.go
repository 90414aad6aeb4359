package host

import (
	"os"
	"syscall"
	"unsafe"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"golang.org/x/sys/unix"
)

const oDSYNC = syscall.O_DSYNC

func datasync(f *os.File) experimentalsys.Errno {
	return errno(unix.Fdatasync(int(f.Fd())))
}

// futimens sets f's times (utimensat with a NULL path: the file itself),
// experimentalsys.UTIME_OMIT leaving one as it is.
func futimens(f *os.File, atim, mtim int64) experimentalsys.Errno {
	ts := [2]unix.Timespec{utimespec(atim), utimespec(mtim)}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return errno(e)
	}
	return 0
}

func utimespec(ns int64) unix.Timespec {
	if ns == experimentalsys.UTIME_OMIT {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(ns)
}
