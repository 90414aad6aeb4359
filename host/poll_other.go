//go:build !unix

package host

import (
	"context"
	"time"
)

// Poll finds the file ready: a read of it waits for its data (within the
// run's deadline).
func (c *ctxReader) Poll(context.Context, time.Duration) bool { return true }
