//go:build race && unix

package http1

import "sync/atomic"

// ioSync orders a sysConn's writes before the reads that follow them in
// the race detector's eyes, as the syscall package's ioSync does for
// net.Conn: raw system calls are not instrumented.
var ioSync atomic.Int64

func raceRelease() { ioSync.Add(1) }
func raceAcquire() { ioSync.Load() }
