// Package logbuf gathers a process's log lines into fewer writes. A line
// comes out at once when nothing was written for the writer's delay; lines
// that follow within it are written together at its end. Under load that
// is one write(2) a millisecond instead of one a request's access log line:
// with stderr a pipe, each such write cost a request about as much CPU as
// the rest of the gateway's work on it, and woke the reader every time.
package logbuf

import (
	"io"
	"sync"
	"time"

	"github.com/wasmesh/wasmesh/internal/clock"
)

// DefaultDelay is how long a line may wait to be written with the ones
// after it.
const DefaultDelay = time.Millisecond

// maxBuffered bounds the lines held: past it they are written at once.
const maxBuffered = 64 << 10

// Writer is an io.Writer that gathers what it is given (whole lines, as
// log/slog's handlers write them) into fewer writes to the one beneath.
// Flush writes what it holds; call it before the process exits. Errors of
// a delayed write are lost, as a logger's are.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	delay time.Duration
	buf   []byte
	last  time.Duration // clock.Mono of the last write to w; 0: none
	alarm clock.Alarm
}

// New returns a Writer writing to w, holding lines at most delay (0 or
// less: each is written at once).
func New(w io.Writer, delay time.Duration) *Writer {
	b := &Writer{w: w, delay: delay}
	b.alarm.Init(b.flushLater)
	return b
}

// Write writes p at once when nothing was written for the delay (or there
// is none), else holds it until the delay after the last write.
func (b *Writer) Write(p []byte) (int, error) {
	now := clock.Mono()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 && (b.delay <= 0 || b.last == 0 || now-b.last >= b.delay) {
		b.last = now
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > maxBuffered {
		b.flush(now)
		if len(p) > maxBuffered {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	b.alarm.Set(now, max(b.last+b.delay-now, 0))
	return len(p), nil
}

// Flush writes the lines held.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.alarm.Stop()
	return b.flush(clock.Mono())
}

// flushLater is the alarm's: the delay after the last write passed.
func (b *Writer) flushLater() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.alarm.Fired()
	b.flush(clock.Mono())
}

// flush writes the lines held; b.mu is held.
func (b *Writer) flush(now time.Duration) error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	b.last = now
	return err
}
