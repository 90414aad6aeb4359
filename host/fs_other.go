//go:build !linux

package host

import (
	"os"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

const (
	oDSYNC        = 0 // O_SYNC is asked for with it, where there is no O_DSYNC
	descriptorDir = "/dev/fd"
)

func pwrite(f *os.File, buf []byte, off int64) (int, error) { return f.WriteAt(buf, off) }

// lutimes is not done here: the times of a symbolic link itself stay.
func lutimes(*os.File, string, int64, int64) error { return experimentalsys.ENOTSUP }
