//go:build unix

package host

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// Poll reports whether the file has something to read (or its end) now,
// waiting up to timeout or until ctx is done: poll_oneoff on a terminal's
// or a pipe's stdin (wasip1.Poller). A file poll(2) refuses is ready: its
// read says why.
func (c *ctxReader) Poll(ctx context.Context, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		// In slices, so that a done ctx is seen within 50 ms.
		wait := min(time.Until(deadline), 50*time.Millisecond)
		if timeout == time.Duration(1<<63-1) {
			wait = 50 * time.Millisecond
		}
		fds := []unix.PollFd{{Fd: int32(c.r.Fd()), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(max(wait, 0)/time.Millisecond))
		switch {
		case errors.Is(err, unix.EINTR):
		case err != nil || n > 0:
			return true
		case ctx.Err() != nil || c.ctx.Err() != nil || !time.Now().Before(deadline):
			return false
		}
	}
}
