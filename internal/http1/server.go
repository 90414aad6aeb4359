// Package http1 is a lean HTTP/1.1 server for an http.Handler: the
// gateway's listener, plain or over TLS; and a lean HTTP/1.1 client for
// one origin (Client, client.go): the gateway's connections to upstream
// endpoints.
//
// It reads a request's head itself, refusing what RFC 9112 says a server
// must or ought to refuse and what net/http lets through, and builds the
// request from the head's one read as net/http's parser (http.ReadRequest)
// would (head.go; a fuzz test holds the two to the same requests), and
// hands the handler an ordinary *http.Request and http.ResponseWriter, but
// leaves out the per-request machinery of net/http's server that a gateway
// answering in microseconds pays for on every request: a goroutine reading
// ahead on the connection, a context per request, the chunking writer.
// Measured with the hello guests, net/http's server alone cost more than
// the guest and the gateway together (docs/PERFORMANCE.md).
//
// What it does, as net/http does: keep-alive and pipelining, HTTP/1.0
// keep-alive, Expect: 100-continue, request bodies of either framing,
// limits on header size and on the time to read headers and to wait
// between requests, a missing or repeated Host refused, graceful Shutdown.
// A response is buffered up to 64 KiB and written with one write, with its
// Content-Length; a larger one is streamed (chunked without a length).
// The client going away cancels the request's context, as with net/http,
// but it is looked for only once a request has run for WatchAfter: a
// request answered before that never costs a read-ahead.
//
// Before a request, a connection's goroutine yields the processor
// (runtime.Gosched) if it has not for TurnLength (1 ms), so that under
// saturation connections take turns: one whose next request is always
// there already would otherwise be served on and on while the others wait
// for the scheduler to poll the network, up to 10 ms (golang/go#51651).
// Yielding before every request gave the same p99 latency for 8% less
// throughput (docs/PERFORMANCE.md).
//
// A request runs on one of a set of kept goroutines (internal/warm) whose
// stacks have grown already, unless it and the one before each came within
// 10 ms of the previous one's start: the goroutine of a connection that is
// not that busy stays shallow, and its stack, small when new and halved by
// the collector while the connection waits, need not grow for a request
// again. A busy connection's requests run on its own goroutine.
//
// Connections that open with the HTTP/2 preface (h2c with prior
// knowledge) go to HTTP2, typically a net/http server, so one port serves
// both. On a TLS listener (tls.NewListener) the handshake is done within
// ReadHeaderTimeout, a connection that negotiated h2 by ALPN goes to
// HTTP2 (its NextProtos must offer "h2" and "http/1.1"), and requests
// carry the connection state in Request.TLS.
//
// Request trailers are read as net/http reads them (Request.Trailer, once
// the body is at its end); response trailers, set as with net/http (header
// keys with http.TrailerPrefix), follow a chunked body. A handler may take
// the connection over before it writes (http.Hijacker: a WebSocket); it
// must not keep its response's Header map past its return: it is reused.
package http1

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/internal/warm"
)

// Defaults for a Server's zero fields.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultSendTimeout       = 60 * time.Second
	DefaultWatchAfter        = 10 * time.Millisecond
)

// TurnLength is how long a connection's goroutine may serve requests
// before it yields the processor to others (see the package doc): a tenth
// of the 10 ms after which the scheduler's monitor polls the network.
const TurnLength = time.Millisecond

// Turn is a connection's turn at the processor, for a server that runs a
// connection's requests one after the other on one goroutine (this one,
// or net/http's for HTTP/1). The zero Turn has had no turn yet.
type Turn struct{ last time.Time }

// Take is called before a request, at now: it yields the processor
// (runtime.Gosched) if the connection has not for TurnLength.
func (t *Turn) Take(now time.Time) {
	if now.Sub(t.last) >= TurnLength {
		runtime.Gosched()
		t.last = now
	}
}

// ErrServerClosed is what Serve returns after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// Server serves HTTP/1.x on the listeners given to Serve. Its fields must
// not change once Serve is called.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request's line and headers.
	// Default DefaultReadHeaderTimeout (10 s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for a keep-alive connection's next
	// request. Default DefaultIdleTimeout (120 s).
	IdleTimeout time.Duration
	// SendTimeout bounds how long a write of an answer waits for the
	// client to take bytes (nginx's send_timeout) when no write deadline
	// of the handler's bounds it: a client that stops reading (pipelined
	// requests whose answers it never reads) has its connection closed
	// instead of holding it, its goroutine and its socket buffers for
	// good. Default DefaultSendTimeout (60 s). On Linux only (the raw
	// socket writes, which see a write about to wait at no cost).
	SendTimeout time.Duration
	// MaxRequestLine bounds a request's line, its line end included: past
	// it, 414. Default DefaultMaxRequestLine (8 KiB).
	MaxRequestLine int
	// MaxHeaderBytes bounds a request's header fields, and its trailers,
	// line ends and the blank line included: past it, 431. Default
	// DefaultMaxHeaderBytes (64 KiB).
	MaxHeaderBytes int
	// MaxHeaders bounds the number of a request's header fields, and of
	// its trailer fields: past it, 431. Default DefaultMaxHeaders (100).
	MaxHeaders int
	// MaxHeadMemory bounds the memory that all connections together hold
	// for request heads beyond the 4 KiB each has while a request is read:
	// a request whose head would take more is answered 431 and its
	// connection closed, so that many slow clients sending large headers
	// cannot take the process's memory. Default DefaultMaxHeadMemory
	// (64 MiB).
	MaxHeadMemory int
	// Refused, when set, is told of each request answered by the server
	// itself, before the handler: its status and a reason, such as
	// "header_too_large", "obs_fold", "bad_content_length",
	// "content_length_and_transfer_encoding", "bad_request" (for metrics:
	// a client's fault, no handler's), and the client's address. Default
	// nil.
	Refused func(status int, reason, remote string)
	// WatchAfter is how long a request runs before its connection is
	// watched for the client going away (up to a quarter more: the looks
	// due are taken together). Default DefaultWatchAfter (10 ms).
	WatchAfter time.Duration
	// BaseContext gives the context of the listener's connections. Default
	// context.Background().
	BaseContext func(net.Listener) context.Context
	// ConnContext may derive a connection's context. Default nil.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ConnState is told of connections' states as net/http's is:
	// StateNew, StateActive, StateIdle, StateClosed, and StateHijacked for
	// connections handed to HTTP2. Default nil.
	ConnState func(net.Conn, http.ConnState)
	// HTTP2 takes over connections that open with the HTTP/2 client
	// preface; it owns them from then on. Default nil: they are closed.
	HTTP2 func(net.Conn)
	// Logger receives handler panics and failed TLS handshakes (at Warn,
	// as net/http logs them). Default
	// slog.Default().
	Logger *slog.Logger

	// warmAfter replaces the constant warmAfter where set (tests).
	warmAfter time.Duration

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[*conn]struct{}
	closing    atomic.Bool
	noKeep     atomic.Bool  // SetKeepAlivesEnabled(false)
	headMemory atomic.Int64 // held by heads past headBuffered (MaxHeadMemory)
	watches    watchSet
}

// Serve accepts connections on ln until it fails or the server is shut
// down; it then returns ErrServerClosed. ln is closed on return.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	if !s.track(ln, true) {
		return ErrServerClosed
	}
	defer s.track(ln, false)
	base := context.Background()
	if s.BaseContext != nil {
		base = s.BaseContext(ln)
	}
	var backoff time.Duration
	var said time.Time // when an accept error was last logged
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool } // EMFILE, ENFILE, ECONNABORTED…, as net/http retries
			if errors.As(err, &te) && te.Temporary() {
				// Said, at most every 10 s: out of descriptors, the
				// gateway takes no connection until some close.
				if now := time.Now(); now.Sub(said) >= 10*time.Second {
					said = now
					s.logger().Error("accepting connections: trying again", "error", err, "retry_in", max(2*backoff, 5*time.Millisecond))
				}
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		rwc = wrapConn(rwc)
		guardWrites(rwc, cmp.Or(s.SendTimeout, DefaultSendTimeout))
		c := s.newConn(rwc)
		if c == nil {
			rwc.Close()
			return ErrServerClosed
		}
		go c.serve(base)
	}
}

func (s *Server) track(ln net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		if s.listeners == nil {
			s.listeners = map[net.Listener]struct{}{}
		}
		s.listeners[ln] = struct{}{}
	} else {
		delete(s.listeners, ln)
	}
	return true
}

func (s *Server) newConn(rwc net.Conn) *conn {
	c := &conn{s: s, rwc: rwc, accepted: time.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	c.state = http.StateNew
	if s.ConnState != nil {
		s.ConnState(rwc, http.StateNew)
	}
	return c
}

// SetKeepAlivesEnabled(false) makes every response from then on say
// Connection: close and close its connection after it, as net/http's
// does: a drain's clients move to new connections (elsewhere, once load
// balancers have taken the gateway out) before its listener closes,
// rather than have a request cut as their idle connection closes.
// Connections idle now are left alone. Enabled by default.
func (s *Server) SetKeepAlivesEnabled(v bool) { s.noKeep.Store(!v) }

// Shutdown stops accepting connections, closes idle ones (and new ones
// that sent nothing for 5 s), lets each
// request in flight finish (its response then closes its connection) and
// returns once no connection is left, or with ctx's error when it is done
// first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	tick := time.Millisecond
	for {
		if s.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(tick):
		}
		tick = min(2*tick, 100*time.Millisecond)
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closeListeners()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.rwc.Close()
	}
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
}

// closeIdle closes the connections waiting for a request and says how
// many connections are left.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.mu.Lock()
		if c.state == http.StateIdle || c.state == http.StateNew && time.Since(c.accepted) > 5*time.Second {
			c.rwc.Close()
		}
		c.mu.Unlock()
	}
	return len(s.conns)
}

// conn is one client connection, served by one goroutine, its requests
// on that goroutine or on one of workers (serveWarm).
type conn struct {
	s      *Server
	rwc    net.Conn
	remote string
	// linger says the connection is closed after an answer with part of
	// its request's body unread: half-closed first, for the client to
	// read the answer (lingerClose).
	linger bool
	tls    *tls.ConnectionState // nil on a plain connection
	cr     connReader
	br     *bufio.Reader
	bw     *bufio.Writer
	res    response
	// expecting is the request's body while its client expects "100
	// Continue" before sending it; nil for none.
	expecting *continueReader

	mu       sync.Mutex // state and the watch
	state    http.ConnState
	accepted time.Time // a new connection counts as idle 5 s after (as net/http's)

	// The watch looks at the running request WatchAfter after it started
	// (startWatch, the server's watchSet); seq numbers the connection's
	// requests, so that a look due to one is not taken for a later one.
	seq      uint64
	watchAt  int  // 1 + its place in the server's watch set; 0: not in it (under the set's mu)
	watching bool // a read-ahead was started for this request
	running  bool // a request is in the handler
	bodyDone atomic.Bool
	// bodyRead is how much of the request's body the handler has read,
	// bodyFailed whether a read of it failed (cut, malformed, too slow):
	// what says, as the answer's head is written, that the connection
	// will not be kept (bodyLeft).
	bodyRead   atomic.Int64
	bodyFailed atomic.Bool
	cancel     context.CancelFunc

	// hb holds a request's line and header fields (then its trailers) as
	// read, while a request is read and served (head.go); headHeld is its
	// share of MaxHeadMemory.
	hb       *headBuf
	headHeld int64

	// hijacked: the handler took the connection over (Hijack).
	hijacked bool

	cuts cutSet // the upstream round trips in its context

	// lastStart is when the previous request started, lastQuick whether
	// it came within warmAfter of the one before it. A request handed
	// to workers is in warmCtx and warmReq while warmCall serves it, and
	// warmKeep is serveRequest's answer.
	lastStart time.Time
	lastQuick bool
	warmCall  func()
	warmCtx   context.Context
	warmReq   *http.Request
	warmKeep  bool
}

func (c *conn) setState(st http.ConnState) {
	c.mu.Lock()
	c.state = st
	c.mu.Unlock()
	if c.s.ConnState != nil {
		c.s.ConnState(c.rwc, st)
	}
}

func (c *conn) close(st http.ConnState) {
	if st == http.StateClosed {
		c.rwc.Close()
	}
	c.setState(st)
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
}

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

func (c *conn) serve(base context.Context) {
	s := c.s
	closeAs := http.StateClosed
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			c.logger().Error("http1: panic serving a connection", "remote", c.remote, "panic", v)
		}
		// No watch may look at the buffers now (a handler's panic skips
		// stopWatch).
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
		s.watches.remove(c)
		c.releaseBuffers()
		c.releaseHead()
		c.close(closeAs)
	}()
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	c.cancel = cancel
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, c.rwc)
	}
	// Upstream round trips made in the connection's context (a proxy's)
	// are cut when it ends, at the latest as serve returns, through one
	// watch for the connection, made by the first of them.
	c.cuts = cutSet{ctx: ctx, done: ctx.Done()}
	ctx = context.WithValue(ctx, cutSetKey{}, &c.cuts)
	defer c.cuts.close()
	c.remote = c.rwc.RemoteAddr().String()
	c.cr = connReader{c: c}
	c.cr.cond.L = &c.cr.mu
	c.res.c = c

	idle := cmp.Or(s.IdleTimeout, DefaultIdleTimeout)
	headerTimeout := cmp.Or(s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	// What the head may read from the connection, beyond which readHead
	// refuses it anyway: room for the read buffer's read-ahead.
	maxHeader := int64(cmp.Or(s.MaxRequestLine, DefaultMaxRequestLine)+cmp.Or(s.MaxHeaderBytes, DefaultMaxHeaderBytes)) + 4096
	if tc, ok := c.rwc.(*tls.Conn); ok {
		// The handshake within the header timeout; ALPN's h2 goes to HTTP2.
		_ = tc.SetDeadline(time.Now().Add(headerTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			c.handshakeFailed(err)
			return
		}
		_ = tc.SetWriteDeadline(time.Time{})
		st := tc.ConnectionState()
		c.tls = &st
		if st.NegotiatedProtocol == "h2" {
			if s.HTTP2 == nil {
				return
			}
			_ = tc.SetReadDeadline(time.Time{})
			closeAs = http.StateHijacked
			s.HTTP2(tc)
			return
		}
	}
	var turn Turn
	for first := true; ; first = false {
		c.cr.limit = maxHeader
		if c.br == nil || c.br.Buffered() == 0 {
			wait := idle
			if first {
				wait = headerTimeout
			}
			if !c.waitRequest(clock.Now(), wait) {
				return
			}
		}
		now := clock.Now()
		if !first {
			turn.Take(now) // requests take turns; see the package doc
		}
		if first && c.tls == nil && c.isHTTP2() {
			if s.HTTP2 == nil {
				return
			}
			closeAs = http.StateHijacked
			s.HTTP2(c.handOver())
			return
		}
		c.setState(http.StateActive)
		if !c.headerBuffered() {
			_ = c.rwc.SetReadDeadline(now.Add(headerTimeout))
		}
		req, err := c.readHead()
		c.cr.limit = -1
		if err == nil && req.Body != http.NoBody {
			// The body is read without a deadline, as net/http does
			// without a ReadTimeout. A bodiless request keeps the header
			// deadline: nothing reads until the next request sets its own
			// (or the watch, which clears it).
			_ = c.rwc.SetReadDeadline(time.Time{})
		}
		if err != nil {
			c.refuse(err)
			return
		}
		var keep bool
		quick := !first && now.Sub(c.lastStart) <= cmp.Or(s.warmAfter, warmAfter)
		if quick && c.lastQuick {
			keep = c.serveRequest(ctx, req)
		} else {
			keep = c.serveWarm(ctx, req)
		}
		c.lastQuick = quick
		c.lastStart = now
		if c.hijacked {
			closeAs = http.StateHijacked
			return
		}
		c.releaseHead()
		if c.linger {
			c.lingerClose()
		}
		if !keep || s.closing.Load() {
			return
		}
		c.setState(http.StateIdle)
		if s.closing.Load() { // Shutdown may have missed us between the two
			return
		}
	}
}

// warmAfter: a request is served on the connection's goroutine only when
// it and the one before each came within warmAfter of the previous one's
// start (the connection is busy); any other (the first two, one after a
// wait, the first quick one after a wait) on one of workers (serveWarm).
// The connection's goroutine's stack is small when it is new, and the
// collector halves it while the connection waits through a collection (it
// then uses less than a quarter of it), so that the request's path (a
// guest's run, the host functions under it) would grow it again, copying
// it each time it doubles: with 10,000 connections under wrk, whose next
// requests come 300-450 ms apart, a third of the gateway's added CPU
// (docs/PERFORMANCE.md). A worker's stack has grown already, for the price
// of two goroutine switches, which a busy connection (whose stack grew on
// its first request served in place, and stays grown) does not pay. One
// quick request alone is not enough: at 10,000 connections a third come
// within warmAfter, on connections whose goroutines never grew.
const warmAfter = 10 * time.Millisecond

// workers serve the requests of all of the process's servers that
// warmAfter sends to them.
var workers warm.Pool

// serveWarm is serveRequest on one of workers. A panic there (serveRequest
// recovers the handler's but http.ErrAbortHandler) is raised again here,
// for serve's recovery (warm.Panic.Raise).
func (c *conn) serveWarm(ctx context.Context, req *http.Request) bool {
	if c.warmCall == nil {
		c.warmCall = func() { c.warmKeep = c.serveRequest(c.warmCtx, c.warmReq) }
	}
	c.warmCtx, c.warmReq = ctx, req
	p := workers.Run(c.warmCall)
	c.warmCtx, c.warmReq = nil, nil
	if p != nil {
		p.Raise()
	}
	return c.warmKeep
}

// idleHold is how long a connection waiting for its next request keeps
// its read buffer: a client that sends within it is read with one read(2);
// past it, the buffers go back to their pools until the request's first
// byte arrives, so that an idle connection holds no buffer. Past it a
// request costs a wake-up at the hold's end, a 1-byte read and a header
// deadline, so the hold outlasts the turn of a busy client among many: with
// 10,000 connections under wrk a turn comes every 300-450 ms.
const idleHold = time.Second

// bufSize is the size of a connection's read and write buffers.
const bufSize = 4 << 10

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

// waitRequest waits until wait after now for the next request's first
// byte, and reports whether it came. The connection has its buffers when
// it returns true. The write buffer is released while waiting (a response
// has flushed it); the read buffer too, once the wait passes idleHold.
func (c *conn) waitRequest(now time.Time, wait time.Duration) bool {
	deadline := now.Add(wait)
	if c.bw != nil && c.bw.Buffered() == 0 {
		c.bw.Reset(nil)
		writers.Put(c.bw)
		c.bw = nil
	}
	if c.br != nil {
		hold := now.Add(idleHold)
		_ = c.rwc.SetReadDeadline(earliest(hold, deadline))
		_, err := c.br.Peek(1)
		switch {
		case err == nil:
			c.acquireBuffers()
			return true
		case !hold.Before(deadline) || !isTimeout(err):
			return false
		}
		c.br.Reset(nil) // nothing buffered: Peek read nothing
		readers.Put(c.br)
		c.br = nil
	}
	_ = c.rwc.SetReadDeadline(deadline)
	c.cr.mu.Lock()
	pending := c.cr.hasByte || c.cr.inRead
	c.cr.mu.Unlock()
	if !pending {
		if n, _ := c.rwc.Read(c.cr.byteBuf[:]); n == 0 {
			return false // an error, or the deadline
		}
		c.cr.mu.Lock()
		c.cr.hasByte = true // the connection reader gives it first
		c.cr.mu.Unlock()
	}
	c.acquireBuffers()
	return true
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// acquireBuffers gives the connection its read and write buffers.
func (c *conn) acquireBuffers() {
	if c.br == nil {
		c.br = readers.Get().(*bufio.Reader)
		c.br.Reset(&c.cr)
	}
	if c.bw == nil {
		c.bw = writers.Get().(*bufio.Writer)
		c.bw.Reset(c.rwc)
	}
}

// releaseBuffers returns the connection's buffers to their pools, when it
// is done with them.
func (c *conn) releaseBuffers() {
	if c.br != nil {
		c.br.Reset(nil)
		readers.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		writers.Put(c.bw)
		c.bw = nil
	}
}

// headerBuffered says whether the next request's header block is all in
// the buffer already, as it usually is: reading it then reads nothing from
// the connection, so it needs no deadline (what follows sets its own, or
// clears it). A deadline costs a timer update in the network poller.
func (c *conn) headerBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	// The empty lines readHead skips before a request line are no head.
	return bytes.Contains(bytes.TrimLeft(b, "\r\n"), []byte("\r\n\r\n"))
}

// handshakeFailed answers a plain HTTP request sent to the TLS port with
// a 400 that says so, and logs the failure, as net/http does (a client
// that closed without a handshake, as a TCP probe does, at Debug only).
func (c *conn) handshakeFailed(err error) {
	var re tls.RecordHeaderError
	reason := err.Error()
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
		_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		reason = "client sent an HTTP request to an HTTPS server"
	}
	level := slog.LevelWarn
	if errors.Is(err, io.EOF) {
		level = slog.LevelDebug
	}
	c.logger().Log(context.Background(), level, "TLS handshake error", "remote", c.remote, "error", reason)
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

func (c *conn) logger() *slog.Logger { return c.s.logger() }

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// isHTTP2 says whether the connection opens with the HTTP/2 preface,
// peeking no further than the bytes that could still be one.
func (c *conn) isHTTP2() bool {
	for i := 1; i <= len(h2Preface); i++ {
		b, err := c.br.Peek(i)
		if err != nil || b[i-1] != h2Preface[i-1] {
			return false
		}
	}
	return true
}

// handOver gives the connection away with what was read of it.
func (c *conn) handOver() net.Conn {
	_ = c.rwc.SetReadDeadline(time.Time{})
	buffered, _ := c.br.Peek(c.br.Buffered())
	return &replayConn{Conn: c.rwc, r: io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), c.rwc)}
}

type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// NetConn is the connection underneath, as tls.Conn's: what the gateway
// colours.
func (c *replayConn) NetConn() net.Conn { return c.Conn }

// refuse answers a request that could not be read, when there is one to
// answer: a timeout or a closed connection gets nothing.
func (c *conn) refuse(err error) {
	var ne net.Error
	var he *headError
	switch {
	case errors.As(err, &he):
		c.refused(he.status, he.reason)
		c.writeError(he.status, he.why, "")
	case errors.As(err, &ne) && ne.Timeout() && (c.hb != nil && len(c.hb.b) > 0 || c.br != nil && c.br.Buffered() > 0):
		// A head begun and not finished within the header timeout: the
		// client's fault, counted (nginx logs a 408); closed without an
		// answer, as net/http does.
		c.refused(http.StatusRequestTimeout, "header_timeout")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne) && ne.Timeout():
		return
	default:
		c.refused(http.StatusBadRequest, "bad_request")
		c.writeError(http.StatusBadRequest, "", "") // as net/http: the parser's words stay here
	}
}

// refused tells Server.Refused of a request the server answered itself.
func (c *conn) refused(status int, reason string) {
	if c.s.Refused != nil {
		c.s.Refused(status, reason, c.remote)
	}
}

// writeError answers a request that is not served as net/http's server
// does: "400 Bad Request: why", or body when given.
func (c *conn) writeError(status int, why, body string) {
	if body == "" {
		body = strconv.Itoa(status) + " " + http.StatusText(status)
		if why != "" {
			body += ": " + why
		}
	}
	c.writeFinal(status, body)
}

// writeFinal writes a response with body and closes the connection after
// giving the client time to read it: the rest of what it sent is read, for
// up to half a second, so that closing with unread data does not reset the
// connection before the answer is read.
func (c *conn) writeFinal(status int, body string) {
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
	if c.bw.Flush() != nil {
		return
	}
	c.lingerClose()
}

// lingerTime is how long a connection closed with part of a request
// unread waits for its client to read the answer (net/http's is 500 ms).
const lingerTime = 500 * time.Millisecond

// lingerClose half-closes the connection, the answer written, and reads
// and drops what the client still sends for up to lingerTime: a close
// with unread data resets the connection, and a reset can take the
// answer from the client's buffer before it reads it. On the
// connection's own goroutine, which ends after.
func (c *conn) lingerClose() {
	if tc, ok := c.rwc.(interface{ CloseWrite() error }); ok && tc.CloseWrite() == nil {
		_ = c.rwc.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.Copy(io.Discard, c.rwc)
	}
}

// serveRequest runs the handler for req and says whether the connection
// may serve another request.
func (c *conn) serveRequest(ctx context.Context, req *http.Request) (keep bool) {
	// The context set in place (readHead's request is the connection's
	// own): WithContext's copy, dereferenced at once, is not allocated.
	*req = *req.WithContext(ctx)
	req.RemoteAddr, req.TLS = c.remote, c.tls
	keep = !req.Close
	c.expecting = nil
	if ex := fieldValue(req.Header, "Expect"); ex != "" {
		// HTTP/1.0 knows no expectations: ignored (RFC 9110, 10.1.1).
		if req.ProtoAtLeast(1, 1) {
			if !strings.EqualFold(ex, "100-continue") {
				c.refused(http.StatusExpectationFailed, "bad_expect")
				c.writeError(http.StatusExpectationFailed, "only 100-continue is expected", "")
				return false
			}
			if req.Body != http.NoBody {
				c.expecting = &continueReader{c: c, body: req.Body}
				req.Body = c.expecting
			}
		}
		// The handler sees the expectation while the 100 is still to be
		// sent (when it first reads the body): a proxy passes it on, so
		// that an upstream that refuses the body does so before it is
		// sent.
		if c.expecting == nil {
			req.Header.Del("Expect")
		} else {
			req.Header["Expect"] = []string{"100-continue"}
		}
	}
	body := req.Body
	c.bodyDone.Store(body == http.NoBody)
	c.bodyRead.Store(0)
	c.bodyFailed.Store(false)
	var rb *bodyReader
	if body != http.NoBody {
		rb = &bodyReader{c: c, body: body}
		req.Body = rb
		defer rb.shut() // a reader the handler left behind reads nothing more
	}
	w := &c.res
	w.reset(req)
	c.startWatch()
	func() {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				c.logger().Error("http1: handler panic", "method", req.Method, "path", req.URL.Path, "panic", v)
				if !w.wroteHeader {
					clear(w.header)
					w.WriteHeader(http.StatusInternalServerError)
				}
				keep = false
			}
		}()
		c.s.Handler.ServeHTTP(w, req)
	}()
	c.stopWatch()
	if c.hijacked {
		return false
	}
	if !w.finish() || ctx.Err() != nil { // a failed write, or the client went away
		return false
	}
	if !keep || w.closeAfter {
		c.linger = body != http.NoBody && !c.bodyDone.Load()
		return false
	}
	// What is left of the body is read (up to a bound) so the next request
	// can be; a client still sending much more gets the connection closed.
	if body != http.NoBody {
		if !c.bodyDone.Load() { // a client that stops sending does not hold the connection for ever
			_ = c.rwc.SetReadDeadline(time.Now().Add(cmp.Or(c.s.ReadHeaderTimeout, DefaultReadHeaderTimeout)))
		}
		if n, err := rb.drain(maxDrain + 1); n > maxDrain || err != io.EOF {
			c.linger = true
			return false // more than we read past, or the body failed (cut, malformed, timed out)
		}
	}
	return !c.s.closing.Load()
}

// maxDrain is how much of an unread request body is read past to keep the
// connection (net/http's is 256 KiB).
const maxDrain = 256 << 10

// bodyReader notes when the handler has read all of the body: from then
// on the connection may be read ahead to see the client go away. Once the
// handler has returned it is shut: a goroutine the handler left reading
// gets http.ErrBodyReadAfterClose, and never reads the next request.
type bodyReader struct {
	c    *conn
	body io.ReadCloser

	mu     sync.Mutex
	closed bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.body.Read(p)
	b.c.bodyRead.Add(int64(n))
	switch {
	case err == io.EOF:
		b.c.bodyDone.Store(true)
	case err != nil:
		b.c.bodyFailed.Store(true)
	}
	return n, err
}

// bodyLeft reports whether what is left of the request's body will close
// the connection (serveRequest): its read failed, or, once the handler
// has returned (done), more of its declared length is unread than the
// server reads past. A chunked body's rest is not known until it is read.
func (c *conn) bodyLeft(req *http.Request, done bool) bool {
	if c.bodyDone.Load() {
		return false
	}
	return c.bodyFailed.Load() || done && req.ContentLength > 0 && req.ContentLength-c.bodyRead.Load() > maxDrain
}

// shut ends the handler's reads.
func (b *bodyReader) shut() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// drain shuts the body and reads past up to n bytes of what is left.
func (b *bodyReader) drain(n int64) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return io.CopyN(io.Discard, b.body, n)
}

func (b *bodyReader) Close() error { return nil } // the server drains and closes it

// continueReader sends "100 Continue" before the first read of the body.
type continueReader struct {
	c    *conn
	body io.ReadCloser
	// sent: read, "100 Continue" sent unless a final answer was. Atomic:
	// a proxied body is read by the transport's goroutine while the
	// handler's writes the answer (unasked).
	sent atomic.Bool
}

// Answered before the client was told to send its body: the client may
// not send it, and what it sends next cannot be told from the body. The
// answer closes the connection (RFC 9110, 10.1.1).
func (r *continueReader) unasked() bool { return !r.sent.Load() }

func (r *continueReader) Read(p []byte) (int, error) {
	if !r.sent.Load() {
		r.sent.Store(true)
		if !r.c.res.wroteHeader {
			_, _ = r.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := r.c.bw.Flush(); err != nil {
				return 0, err
			}
		}
	}
	return r.body.Read(p)
}

func (r *continueReader) Close() error { return r.body.Close() }

// startWatch starts the watch for the client going away, which looks at
// the request once it has run for WatchAfter.
func (c *conn) startWatch() {
	now := clock.Mono()
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.running, c.watching = true, false
	c.mu.Unlock()
	c.s.watches.add(c, seq, now, c.watchAfter())
}

func (c *conn) watchAfter() time.Duration { return cmp.Or(c.s.WatchAfter, DefaultWatchAfter) }

// look starts reading ahead, when request seq still runs and has read its
// body: a read that fails means the client went away, and cancels the
// connection's context; a byte read is kept for the next (pipelined)
// request. A request is looked at once.
func (c *conn) look(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running || c.seq != seq || c.watching || !c.bodyDone.Load() || c.br.Buffered() > 0 {
		return
	}
	c.watching = true
	c.cr.startBackgroundRead()
}

func (c *conn) stopWatch() {
	c.mu.Lock()
	c.running = false
	watching := c.watching
	c.mu.Unlock()
	c.s.watches.remove(c)
	if watching {
		c.cr.abortPendingRead()
	}
}

// watchSet is a server's running requests that the client-gone watch has
// yet to look at, with one alarm for all of them, set for the earliest
// look due. A timer for each connection instead was added to the
// runtime's timer heap for nearly every request and went off after it had
// ended (a goroutine each) once connections were many and each one's
// requests came further apart than WatchAfter: 2 µs a request with 10,000
// connections.
type watchSet struct {
	mu    sync.Mutex
	due   []watchDue
	after time.Duration // the server's WatchAfter
	alarm clock.Alarm
}

// watchDue is a request to look at, at a time on clock.Mono.
type watchDue struct {
	c   *conn
	seq uint64
	at  time.Duration
}

// add puts request seq of c in the set, to be looked at after from now.
func (w *watchSet) add(c *conn, seq uint64, now, after time.Duration) {
	w.mu.Lock()
	if w.after == 0 {
		w.alarm.Init(w.fire)
	}
	w.take(c) // a request the watch did not see end
	w.after = after
	w.due = append(w.due, watchDue{c, seq, now + after})
	c.watchAt = len(w.due)
	w.alarm.Set(now, after)
	w.mu.Unlock()
}

// remove takes c's request out of the set, if it is there.
func (w *watchSet) remove(c *conn) {
	w.mu.Lock()
	w.take(c)
	w.mu.Unlock()
}

// take removes c's entry; w.mu is held.
func (w *watchSet) take(c *conn) {
	i := c.watchAt - 1
	if i < 0 {
		return
	}
	last := len(w.due) - 1
	w.due[i] = w.due[last]
	w.due[i].c.watchAt = i + 1
	w.due[last] = watchDue{}
	w.due = w.due[:last]
	c.watchAt = 0
}

// fire, on the alarm, looks at the requests due and sets the alarm for the
// next one, a quarter of WatchAfter later at the least: under a steady
// stream of long requests the looks are taken in batches, not one alarm
// each.
func (w *watchSet) fire() {
	now := clock.Mono()
	var due []watchDue
	w.mu.Lock()
	w.alarm.Fired()
	var next time.Duration
	for i := 0; i < len(w.due); {
		d := w.due[i]
		if d.at <= now {
			due = append(due, d)
			w.take(d.c) // the last entry moves to i
			continue
		}
		if next == 0 || d.at < next {
			next = d.at
		}
		i++
	}
	if next != 0 {
		w.alarm.Set(now, max(next-now, w.after/4))
	}
	w.mu.Unlock()
	for _, d := range due {
		d.c.look(d.seq)
	}
}

// connReader reads the connection for the bufio.Reader, with a limit while
// headers are read, and a read ahead in the background while a long
// request runs.
type connReader struct {
	c     *conn
	limit int64 // bytes left for the headers; -1: no limit

	mu      sync.Mutex
	cond    sync.Cond
	inRead  bool
	aborted bool
	hasByte bool
	byteBuf [1]byte
}

var errHeaderTooLarge = errors.New("http1: request header too large")

func (cr *connReader) Read(p []byte) (int, error) {
	if cr.limit == 0 {
		return 0, errHeaderTooLarge
	}
	if cr.limit > 0 && int64(len(p)) > cr.limit {
		p = p[:cr.limit]
	}
	if len(p) == 0 {
		return 0, nil
	}
	cr.mu.Lock()
	if cr.inRead {
		cr.mu.Unlock()
		return 0, errors.New("http1: read during the background read")
	}
	if cr.hasByte {
		p[0] = cr.byteBuf[0]
		cr.hasByte = false
		cr.mu.Unlock()
		cr.count(1)
		return 1, nil
	}
	cr.mu.Unlock()
	n, err := cr.c.rwc.Read(p)
	cr.count(n)
	return n, err
}

func (cr *connReader) count(n int) {
	if cr.limit > 0 {
		cr.limit -= int64(n)
	}
}

func (cr *connReader) startBackgroundRead() {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.inRead || cr.hasByte {
		return
	}
	cr.inRead = true
	_ = cr.c.rwc.SetReadDeadline(time.Time{})
	go cr.backgroundRead()
}

func (cr *connReader) backgroundRead() {
	n, err := cr.c.rwc.Read(cr.byteBuf[:])
	cr.mu.Lock()
	if n == 1 {
		cr.hasByte = true // the next request, pipelined
	}
	if err != nil && !(cr.aborted && isTimeout(err)) {
		cr.c.cancel() // the client went away (or the connection broke)
	}
	cr.aborted, cr.inRead = false, false
	cr.mu.Unlock()
	cr.cond.Broadcast()
}

// abortPendingRead stops the read ahead and waits for it to return.
func (cr *connReader) abortPendingRead() {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if !cr.inRead {
		return
	}
	cr.aborted = true
	_ = cr.c.rwc.SetReadDeadline(time.Unix(1, 0))
	for cr.inRead {
		cr.cond.Wait()
	}
	_ = cr.c.rwc.SetReadDeadline(time.Time{})
}
