//go:build !linux

package host

import "os"

const (
	oDSYNC        = 0 // O_SYNC is asked for with it, where there is no O_DSYNC
	descriptorDir = "/dev/fd"
)

func pwrite(f *os.File, buf []byte, off int64) (int, error) { return f.WriteAt(buf, off) }
