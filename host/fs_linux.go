package host

import (
	"os"
	"syscall"
)

const (
	oDSYNC        = syscall.O_DSYNC
	descriptorDir = "/proc/self/fd"
)

func pwrite(f *os.File, buf []byte, off int64) (int, error) {
	return syscall.Pwrite(int(f.Fd()), buf, off)
}
