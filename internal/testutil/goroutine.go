package testutil

import (
	"bytes"
	"runtime"
	"strconv"
)

// GoroutineID is the calling goroutine's id, read from the first line of
// its stack trace ("goroutine 18 [running]:"): for tests that check which
// goroutine ran something.
func GoroutineID() int {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, _, _ = bytes.Cut(bytes.TrimPrefix(b, []byte("goroutine ")), []byte(" "))
	id, err := strconv.Atoi(string(b))
	if err != nil {
		panic("testutil: no goroutine id in " + strconv.Quote(string(buf[:])))
	}
	return id
}
