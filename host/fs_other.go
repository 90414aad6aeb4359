//go:build !linux

package host

import (
	"os"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

const oDSYNC = 0 // O_SYNC is asked for with it, where there is no O_DSYNC

func datasync(f *os.File) experimentalsys.Errno { return errno(f.Sync()) }

// futimens sets f's times through its name (os.Chtimes: a zero time, for
// experimentalsys.UTIME_OMIT, leaves one as it is).
func futimens(f *os.File, atim, mtim int64) experimentalsys.Errno {
	return errno(os.Chtimes(f.Name(), utime(atim), utime(mtim)))
}

var _ = time.Time{}
