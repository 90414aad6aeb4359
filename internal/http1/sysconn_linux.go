package http1

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// sysConn is a TCP connection read and written with raw system calls on
// its non-blocking socket, waiting on the runtime's poller (and the
// connection's deadlines) through syscall.RawConn when the socket is not
// ready, as net.Conn does.
//
// A net.Conn's Read and Write enter the scheduler's syscall state, made
// for calls that may block: when every P of a gateway under load is idle
// for a moment (all its connections waiting on their clients), the next
// such call wakes the runtime's monitor thread, which then polls every
// 20 µs for at least a millisecond, and a P found in a system call is
// handed to another thread. A read or write of a non-blocking socket
// returns at once (EAGAIN when it would wait), so it is run like any other
// short computation. Under wrk, 11–13% less of the gateway's CPU a
// request for the C hello, 15% for a Zig component (docs/PERFORMANCE.md,
// "Sockets without the syscall state").
//
// Under the race detector the syscall package's Read and Write are used
// (sysconn_race.go), which tell it that a write happens before the read of
// what it wrote. The embedded *net.TCPConn serves everything else:
// deadlines, Close, SyscallConn (the eBPF colours), CloseWrite, and
// ReadFrom and WriteTo (sendfile, splice), which io.Copy takes instead of
// Read and Write.
type sysConn struct {
	*net.TCPConn
	rc syscall.RawConn
	// The state of the Read and of the Write under way, and the functions
	// RawConn calls with the descriptor, made once: a closure per call
	// would be two allocations per read or write. A mutex per direction
	// keeps concurrent calls apart, as net.Conn's own locks do.
	r, w sysIO
	// peekFn is peek, made once; quiet is what it found (Quiet).
	peekFn func(fd uintptr) bool
	quiet  bool
	// stall, when not 0, bounds a write the peer does not take: a write
	// that would wait, with no write deadline set by the caller
	// (bounded), waits at most stall for the socket to take bytes
	// (guardWrites). A write the kernel takes at once costs nothing more.
	stall   time.Duration
	bounded atomic.Bool
}

// sysIO is one direction's call: its buffer, bytes done, errno; with
// once, a write makes one try and notes whether it would have waited
// (blocked) instead of waiting.
type sysIO struct {
	mu      sync.Mutex
	p       []byte
	n       int
	errno   syscall.Errno
	once    bool
	blocked bool
	fn      func(fd uintptr) bool
}

// wrapConn returns c as a sysConn when it is a *net.TCPConn, c otherwise.
func wrapConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	sc := &sysConn{TCPConn: tc, rc: rc}
	sc.r.fn, sc.w.fn, sc.peekFn = sc.r.read, sc.w.write, sc.peek
	return sc
}

// Quiet reports whether the connection, not being read, is still open and
// has nothing to read: a read that does not block (recv with MSG_PEEK and
// MSG_DONTWAIT, leaving what it finds) would wait. An idle client
// connection is checked so before it is used again.
func (c *sysConn) Quiet() bool {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.quiet = false
	return c.rc.Read(c.peekFn) == nil && c.quiet
}

// peek is Quiet's one try; it never waits.
func (c *sysConn) peek(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if e != syscall.EINTR {
			c.quiet = e == syscall.EAGAIN
			return true
		}
	}
}

func (c *sysConn) Read(p []byte) (int, error) {
	n, errno, err := c.r.call(c.rc, p, false)
	switch {
	case err != nil:
		return 0, err // closed, or past the read deadline: a net.OpError
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// call runs the direction's fn for p through rc's Write (write) or Read,
// which wait on the poller between its tries, and returns its outcome.
func (s *sysIO) call(rc syscall.RawConn, p []byte, write bool) (n int, errno syscall.Errno, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callLocked(rc, p, write)
}

func (s *sysIO) callLocked(rc syscall.RawConn, p []byte, write bool) (n int, errno syscall.Errno, err error) {
	s.p, s.n, s.errno = p, 0, 0
	if write {
		err = rc.Write(s.fn)
	} else {
		err = rc.Read(s.fn)
	}
	n, errno = s.n, s.errno
	s.p = nil
	return n, errno, err
}

// read is one try at reading into r.p; false to wait until readable.
func (r *sysIO) read(fd uintptr) bool {
	if len(r.p) == 0 {
		return true
	}
	for {
		m, e := sysRead(fd, r.p)
		switch e {
		case 0:
			r.n = m
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			r.errno = e
			return true
		}
	}
}

func (c *sysConn) Write(p []byte) (int, error) {
	var n int
	var errno syscall.Errno
	var err error
	if c.stall > 0 && !c.bounded.Load() {
		n, errno, err = c.writeStalled(p)
	} else {
		n, errno, err = c.w.call(c.rc, p, true)
	}
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
}

// writeStalled is Write's call with the stall bound: one try, and, if
// the socket would not take it all, the rest under a write deadline stall
// from now, lifted after (unless the caller set one meanwhile).
func (c *sysConn) writeStalled(p []byte) (n int, errno syscall.Errno, err error) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	c.w.once, c.w.blocked = true, false
	n, errno, err = c.w.callLocked(c.rc, p, true)
	c.w.once = false
	if err != nil || errno != 0 || !c.w.blocked {
		return n, errno, err
	}
	_ = c.TCPConn.SetWriteDeadline(time.Now().Add(c.stall))
	m, errno, err := c.w.callLocked(c.rc, p[n:], true)
	if !c.bounded.Load() {
		_ = c.TCPConn.SetWriteDeadline(time.Time{})
	}
	return n + m, errno, err
}

// SetWriteDeadline sets the write deadline; a set one, not the stall
// bound, bounds the writes until it is lifted (the zero time).
func (c *sysConn) SetWriteDeadline(t time.Time) error {
	c.bounded.Store(!t.IsZero())
	return c.TCPConn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines, as SetWriteDeadline for writes.
func (c *sysConn) SetDeadline(t time.Time) error {
	c.bounded.Store(!t.IsZero())
	return c.TCPConn.SetDeadline(t)
}

// GuardsWrites says whether the connections a Server accepts have their
// writes bounded by Server.SendTimeout (guardWrites): on Linux.
const GuardsWrites = true

// guardWrites bounds c's writes that the peer does not take by stall
// (sysConn.stall), for a sysConn, or a TLS connection over one; other
// connections are left as they are.
func guardWrites(c net.Conn, stall time.Duration) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if sc, ok := c.(*sysConn); ok {
		sc.stall = stall
	}
}

// write writes what is left of w.p; false to wait until writable, then
// go on from w.n (with once, true, noting it in blocked).
func (w *sysIO) write(fd uintptr) bool {
	for w.n < len(w.p) {
		m, e := sysWrite(fd, w.p[w.n:])
		switch e {
		case 0:
			if m == 0 {
				w.errno = syscall.EIO // write(2) of a socket takes a byte or fails
				return true
			}
			w.n += m
		case syscall.EINTR:
		case syscall.EAGAIN:
			if w.once {
				w.blocked = true
				return true
			}
			return false
		default:
			w.errno = e
			return true
		}
	}
	return true
}

// opError is errno as net.Conn reports it: errors.Is finds the errno
// (ECONNRESET, EPIPE) through it.
func (c *sysConn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}

// NewListener returns ln with the TCP connections it accepts read and
// written as sysConn explains. Server.Serve does this itself for the
// *net.TCPConn it accepts; a TLS listener should be made over it:
// tls.NewListener(http1.NewListener(ln), config).
func NewListener(ln net.Listener) net.Listener { return sysListener{ln} }

type sysListener struct{ net.Listener }

func (l sysListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrapConn(c), nil
}
