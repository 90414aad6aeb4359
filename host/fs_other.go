//go:build !linux

package host

import (
	"os"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

const oDSYNC = 0 // O_SYNC is asked for with it, where there is no O_DSYNC

func datasync(f *os.File) experimentalsys.Errno { return errno(f.Sync()) }

// futimens is not done through a descriptor here: ENOSYS, and wazero sets
// the times through the mount (mountFS.Utimens, resolved in its os.Root)
// instead of by a host path a guest's links could redirect.
func futimens(*os.File, int64, int64) experimentalsys.Errno { return experimentalsys.ENOSYS }
