//go:build linux && race

package http1

import "syscall"

// Under the race detector, the syscall package's Read and Write, which
// tell it that a write happens before the read of what it wrote, as
// net.Conn's do: raw system calls are not instrumented.

func sysRead(fd uintptr, p []byte) (int, syscall.Errno) { return errnoOf(syscall.Read(int(fd), p)) }

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) { return errnoOf(syscall.Write(int(fd), p)) }

func errnoOf(n int, err error) (int, syscall.Errno) {
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}
