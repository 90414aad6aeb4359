package host

import (
	"os"
	"syscall"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"golang.org/x/sys/unix"
)

const (
	oDSYNC        = syscall.O_DSYNC
	descriptorDir = "/proc/self/fd"
)

func pwrite(f *os.File, buf []byte, off int64) (int, error) {
	return syscall.Pwrite(int(f.Fd()), buf, off)
}

// lutimes sets the times of name in directory d, a symbolic link itself
// rather than its target; experimentalsys.UTIME_OMIT leaves one as it is.
func lutimes(d *os.File, name string, atim, mtim int64) error {
	ts := func(ns int64) unix.Timespec {
		if ns == experimentalsys.UTIME_OMIT {
			return unix.Timespec{Nsec: unix.UTIME_OMIT}
		}
		return unix.NsecToTimespec(ns)
	}
	return unix.UtimesNanoAt(int(d.Fd()), name, []unix.Timespec{ts(atim), ts(mtim)}, unix.AT_SYMLINK_NOFOLLOW)
}
