package http1

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/wasmesh/wasmesh/internal/clock"
)

// Client sends HTTP/1.1 requests to one origin over a pool of kept-alive
// connections: an http.RoundTripper for a reverse proxy's upstream
// endpoint. Unlike http.Transport, a request is written and its response
// read on the calling goroutine (no reading and writing goroutines per
// connection, no hand-offs between them), which halves what proxying a
// small request costs (docs/PERFORMANCE.md). A response's head is read and
// the response built in one pass, as http.ReadResponse builds it
// (clienthead.go), but for a field name with a space before its colon,
// which is refused.
//
// It does what a proxy needs of http.Transport: request bodies of either
// framing, with trailers; Expect: 100-continue (the body waits for the
// 100, or ExpectContinueTimeout); 1xx responses given to the request's
// httptrace.ClientTrace (Got1xxResponse); a 101 Switching Protocols
// response's Body is the connection itself (an io.ReadWriteCloser, as
// httputil.ReverseProxy wants to tunnel an Upgrade); a request on a kept
// connection that the endpoint had closed meanwhile is sent again on a new
// one when it has no body. The context's deadline and cancellation end
// the request, and its connection. It speaks HTTP/1.1 only: over TLS it
// offers ALPN "http/1.1".
type Client struct {
	// Addr is the endpoint's host:port.
	Addr string
	// TLS, when set, makes the connections TLS; its ServerName defaults
	// to Addr's host.
	TLS *tls.Config
	// Dialer dials the connections. Default: 5 s to connect, TCP
	// keep-alive every 30 s.
	Dialer *net.Dialer
	// DialContext, when set, dials instead of Dialer (whose Timeout still
	// bounds the TLS handshake).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxIdle is the most idle connections kept. Default 64.
	MaxIdle int
	// IdleTimeout closes a connection idle that long. Default 90 s.
	IdleTimeout time.Duration
	// MaxConns is the most connections open, idle or not. Default 0: no
	// limit. Past it, a request waits for a connection.
	MaxConns int
	// MaxPending is how many requests may wait for a connection when
	// MaxConns are busy; past it RoundTrip fails with ErrPoolFull at
	// once. Default 0: as many as there are.
	MaxPending int
	// MaxHeaderBytes bounds a response's head. Default 64 KiB.
	MaxHeaderBytes int
	// ExpectContinueTimeout is how long a request with Expect:
	// 100-continue waits for the 100 before it sends its body anyway.
	// Default 1 s.
	ExpectContinueTimeout time.Duration

	// Counters since the Client was made.
	Dials, DialErrors, HandshakeErrors atomic.Int64

	mu      sync.Mutex
	idle    []*clientConn // most recently used last
	open    int           // connections open, idle or in use
	waiting []chan *clientConn
	sweep   *time.Timer
	closed  bool
}

// ErrPoolFull is the error of a request that would wait for a connection
// when MaxPending requests already do.
var ErrPoolFull = errors.New("http1: too many requests waiting for a connection")

// ErrMalformedResponse is the error of a response whose head is not
// HTTP/1.1.
var ErrMalformedResponse = errors.New("http1: malformed response")

// ErrInvalidRequest is what a round trip returns for a request it cannot
// write: a method that is no token, a target with a space or a control
// character, an invalid Host. The request's fault, not the endpoint's
// (an HTTP/2 client can send such a request; HTTP/1.1 cannot).
var ErrInvalidRequest = errors.New("http1: invalid request")

// ErrResponseHeaderTooLarge is the error of a response whose head is over
// MaxHeaderBytes.
var ErrResponseHeaderTooLarge = errors.New("http1: response header too large")

// Conns reports the connections in use and idle.
func (c *Client) Conns() (active, idle int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open - len(c.idle), len(c.idle)
}

// CloseIdleConnections closes the idle connections; those in use are
// closed when their request ends, and later requests open new ones.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.open -= len(idle)
	c.mu.Unlock()
	for _, cc := range idle {
		cc.conn.Close()
	}
}

// Close closes the idle connections and those in use as their requests
// end; the Client must not be used after.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.CloseIdleConnections()
}

// clientConn is one connection of a Client.
type clientConn struct {
	c      *Client
	conn   net.Conn // the TLS connection, over TLS
	raw    net.Conn // the TCP connection
	lr     headLimitReader
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	// The watch of the request's context (watch, unwatch): stop is its
	// context.AfterFunc's, or cuts (at cutIndex) the server connection's
	// set the request runs in; cutEarly says the context had ended as it
	// began.
	stop     func() bool
	cuts     *cutSet
	cutIndex int
	cutEarly bool
	// cut fails the connection's reads and writes at once: what the
	// watch does when the context ends (made once, for every request).
	cut func()
}

// watch arranges for the connection to be cut when ctx ends: through the
// cutSet of the server connection ctx comes from, when ctx ends with it
// and nothing else (the same Done channel: no cancel of its own between
// them; deadlines are the connection's, SetDeadline), else with a
// context.AfterFunc, whose registration with the nearest cancelable
// context and removal cost about 1 µs a request.
func (cc *clientConn) watch(ctx context.Context) {
	if s, _ := ctx.Value(cutSetKey{}).(*cutSet); s != nil && ctx.Done() == s.done {
		if s.add(cc) {
			cc.cuts = s
		} else {
			cc.cutEarly = true
			cc.cut()
		}
		return
	}
	cc.stop = context.AfterFunc(ctx, cc.cut)
}

// unwatch ends the watch, and reports false when the context ended first
// (and cut the connection).
func (cc *clientConn) unwatch() bool {
	switch {
	case cc.cuts != nil:
		ok := cc.cuts.remove(cc)
		cc.cuts = nil
		return ok
	case cc.stop != nil:
		ok := cc.stop()
		cc.stop = nil
		return ok
	}
	early := cc.cutEarly
	cc.cutEarly = false
	return !early
}

// headLimitReader is a connection as its reader sees it: reads fail with
// ErrResponseHeaderTooLarge once left is spent while a head is read.
type headLimitReader struct {
	r      net.Conn
	left   int
	inHead bool
	n      int // bytes read for the request
}

func (l *headLimitReader) Read(p []byte) (int, error) {
	if l.inHead {
		if l.left <= 0 {
			return 0, ErrResponseHeaderTooLarge
		}
		p = p[:min(len(p), l.left)]
	}
	n, err := l.r.Read(p)
	l.left -= n
	l.n += n
	return n, err
}

// RoundTrip sends req and returns its response, whose Body must be read to
// its end or closed: the connection goes back to the pool at the end of
// the body.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	return c.Do(req.Context(), req)
}

// Do is RoundTrip within ctx instead of the request's context, which saves
// a proxy a copy of the request per try. The connection's reads and writes
// end at ctx's deadline, read again once the request's body is sent: a
// deadline that moved later by then bounds the wait for the answer.
func (c *Client) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	for fresh := false; ; fresh = true {
		cc, reused, err := c.get(ctx, fresh)
		if err != nil {
			return nil, err
		}
		resp, err := cc.roundTrip(ctx, req)
		if err == nil {
			return resp, nil
		}
		cc.close()
		// A kept connection the endpoint closed while it was idle fails
		// before any answer; a request that may be sent twice (idempotent,
		// no body) is sent again.
		var stale *staleError
		if !reused || !errors.As(err, &stale) || !replayable(req) || ctx.Err() != nil {
			return nil, err
		}
	}
}

// replayable reports whether req may be sent twice, as http.Transport
// says: a GET, HEAD, OPTIONS or TRACE, or a request with an idempotency
// key, without a body.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// staleError is a failure on a kept connection before any byte of the
// response: the endpoint may have closed it while idle.
type staleError struct{ err error }

func (e *staleError) Error() string { return e.err.Error() }
func (e *staleError) Unwrap() error { return e.err }

// get returns a connection: an idle one (reused), a new one, or, at
// MaxConns, one a request hands back or the room to dial one.
func (c *Client) get(ctx context.Context, fresh bool) (*clientConn, bool, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false, errors.New("http1: client closed")
	}
	if !fresh {
		now := clock.Now()
		for len(c.idle) > 0 {
			cc := c.idle[len(c.idle)-1]
			c.idle = c.idle[:len(c.idle)-1]
			// Checked every time: bytes the endpoint sent after the last
			// response (a body after a HEAD's, a late one after a 204)
			// would be read as this request's answer.
			if now.Sub(cc.idleAt) < c.idleTimeout() && cc.alive() {
				c.mu.Unlock()
				return cc, true, nil
			}
			c.open--
			cc.conn.Close()
		}
	}
	if c.MaxConns <= 0 || c.open < c.MaxConns {
		c.open++
		c.mu.Unlock()
		return c.dialConn(ctx)
	}
	if c.MaxPending > 0 && len(c.waiting) >= c.MaxPending {
		c.mu.Unlock()
		return nil, false, ErrPoolFull
	}
	ch := make(chan *clientConn, 1)
	c.waiting = append(c.waiting, ch)
	c.mu.Unlock()
	// The wait ends at the context's deadline, whether or not a timer of
	// the context's ends it.
	var timeout <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case cc := <-ch:
		if cc == nil { // room to dial, counted in open for us
			return c.dialConn(ctx)
		}
		return cc, true, nil
	case <-timeout:
		return c.stopWaiting(ch, context.DeadlineExceeded)
	case <-ctx.Done():
		return c.stopWaiting(ch, ctx.Err())
	}
}

// stopWaiting takes ch out of the requests waiting for a connection,
// after the wait ended with err.
func (c *Client) stopWaiting(ch chan *clientConn, err error) (*clientConn, bool, error) {
	c.mu.Lock()
	for i, w := range c.waiting {
		if w == ch {
			c.waiting = append(c.waiting[:i], c.waiting[i+1:]...)
			c.mu.Unlock()
			return nil, false, fmt.Errorf("http1: waiting for a connection to %s: %w", c.Addr, err)
		}
	}
	c.mu.Unlock()
	// Handed something meanwhile: give it back.
	if cc := <-ch; cc != nil {
		c.put(cc)
	} else {
		c.release()
	}
	return nil, false, fmt.Errorf("http1: waiting for a connection to %s: %w", c.Addr, err)
}

func (c *Client) idleTimeout() time.Duration { return cmp.Or(c.IdleTimeout, 90*time.Second) }

// dialConn opens a connection, counted in open already.
func (c *Client) dialConn(ctx context.Context) (*clientConn, bool, error) {
	c.Dials.Add(1)
	d := c.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	}
	dial := d.DialContext
	if c.DialContext != nil {
		dial = c.DialContext
	}
	if dl, ok := ctx.Deadline(); ok {
		// A timer at the deadline, for the name lookup that waits on Done
		// (a context's deadline may come without one).
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	raw, err := dial(ctx, "tcp", c.Addr)
	if err != nil {
		c.DialErrors.Add(1)
		c.release()
		return nil, false, err
	}
	raw = wrapConn(raw)
	conn := raw
	if c.TLS != nil {
		cfg := c.TLS.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(c.Addr)
		}
		tc := tls.Client(raw, cfg)
		// The handshake's deadline is the connection's (a context's
		// deadline may come without a timer to end it).
		hdl := time.Now().Add(cmp.Or(d.Timeout, 5*time.Second))
		if dl, ok := ctx.Deadline(); ok && dl.Before(hdl) {
			hdl = dl
		}
		_ = raw.SetDeadline(hdl)
		err := tc.HandshakeContext(ctx)
		_ = raw.SetDeadline(time.Time{})
		if err != nil {
			c.HandshakeErrors.Add(1)
			raw.Close()
			c.release()
			return nil, false, fmt.Errorf("TLS handshake: %w", err)
		}
		conn = tc
	}
	cc := &clientConn{c: c, conn: conn, raw: raw}
	cc.cut = func() { _ = cc.conn.SetDeadline(aLongTimeAgo) }
	cc.lr.r = conn
	cc.br = bufio.NewReaderSize(&cc.lr, 4<<10)
	cc.bw = bufio.NewWriterSize(conn, 4<<10)
	return cc, false, nil
}

// release gives up a connection's room in open, to a waiting request if
// there is one.
func (c *Client) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiting) > 0 { // after Close too: the waiter dials, and its connection is closed when put
		ch := c.waiting[0]
		c.waiting = c.waiting[1:]
		ch <- nil // its room, still counted in open
		return
	}
	c.open--
}

// put gives back a connection whose request has ended cleanly.
func (c *Client) put(cc *clientConn) {
	c.mu.Lock()
	if len(c.waiting) > 0 {
		ch := c.waiting[0]
		c.waiting = c.waiting[1:]
		c.mu.Unlock()
		ch <- cc
		return
	}
	if c.closed || len(c.idle) >= cmp.Or(c.MaxIdle, 64) {
		c.open--
		c.mu.Unlock()
		cc.conn.Close()
		return
	}
	cc.idleAt = clock.Now()
	c.idle = append(c.idle, cc)
	if c.sweep == nil {
		c.sweep = time.AfterFunc(c.idleTimeout(), c.sweepIdle)
	}
	c.mu.Unlock()
}

// sweepIdle closes the connections idle for IdleTimeout, and comes back
// while any are idle.
func (c *Client) sweepIdle() {
	c.mu.Lock()
	var old []*clientConn
	keep := c.idle[:0]
	for _, cc := range c.idle {
		if time.Since(cc.idleAt) >= c.idleTimeout() {
			old = append(old, cc)
		} else {
			keep = append(keep, cc)
		}
	}
	clear(c.idle[len(keep):])
	c.idle = keep
	c.open -= len(old)
	if len(c.idle) > 0 {
		c.sweep.Reset(c.idleTimeout() / 2)
	} else {
		c.sweep = nil
	}
	c.mu.Unlock()
	for _, cc := range old {
		cc.conn.Close()
	}
}

// close closes the connection and gives up its room.
func (cc *clientConn) close() {
	cc.unwatch()
	cc.conn.Close()
	cc.c.release()
}

// roundTrip writes req and reads its response's head.
func (cc *clientConn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The context's deadline and its end cut the connection's reads and
	// writes short.
	if dl, ok := ctx.Deadline(); ok {
		_ = cc.conn.SetDeadline(dl)
	} else {
		_ = cc.conn.SetDeadline(time.Time{})
	}
	cc.watch(ctx)
	cc.lr.n = cc.br.Buffered()
	err := cc.writeHead(req)
	if err != nil {
		return nil, cc.failed(ctx, err, true)
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	expect := hasBody && strings.EqualFold(req.Header.Get("Expect"), "100-continue")
	if err := cc.bw.Flush(); err != nil {
		return nil, cc.failed(ctx, err, true)
	}
	bodySent := !hasBody
	var early *http.Response // a final answer before the body was sent
	if expect {
		early, err = cc.awaitContinue(ctx, req)
		if err != nil {
			return nil, cc.failed(ctx, err, true)
		}
	}
	if hasBody && early == nil {
		if err := cc.writeBody(req); err != nil {
			// The endpoint may have answered, and stopped reading: its
			// answer, if it sent one, is the request's.
			_ = cc.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			resp, rerr := cc.readResponse(ctx, req)
			dl, _ := ctx.Deadline()
			_ = cc.conn.SetReadDeadline(dl)
			if rerr == nil && ctx.Err() == nil {
				resp.Close = true
				return cc.wrap(req, resp, false), nil
			}
			return nil, cc.failed(ctx, fmt.Errorf("writing the request body: %w", err), false)
		}
		bodySent = true
		// A context whose deadline moved while the body was sent (a
		// proxy's, which gives the endpoint its time from there) bounds
		// the wait for the answer by the new one.
		if dl, ok := ctx.Deadline(); ok {
			_ = cc.conn.SetDeadline(dl)
			// A cut (the context's end) made since the body's last write
			// was undone by that: done again.
			if err := ctx.Err(); err != nil {
				return nil, cc.failed(ctx, err, false)
			}
		}
	}
	resp := early
	if resp == nil {
		resp, err = cc.readResponse(ctx, req)
		if err != nil {
			return nil, cc.failed(ctx, err, true)
		}
	}
	return cc.wrap(req, resp, bodySent), nil
}

// aLongTimeAgo is a deadline that has passed: it cuts what is blocked.
var aLongTimeAgo = time.Unix(1, 0)

// failed is the error of a request whose connection failed: the
// context's, when it ended; a staleError when nothing of the response
// came and before says the failure may be the endpoint's closing an idle
// connection.
func (cc *clientConn) failed(ctx context.Context, err error, before bool) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	var ne net.Error
	if dl, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err) // the connection's deadline is the context's
	}
	if before && cc.lr.n == 0 && isStale(err) {
		return &staleError{err}
	}
	return err
}

// isStale reports whether err is what a connection closed by its peer
// gives.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

// writeHead writes the request line and header fields.
func (cc *clientConn) writeHead(req *http.Request) error {
	bw := cc.bw
	uri := req.URL.RequestURI()
	if req.Method == http.MethodConnect {
		uri = req.URL.Host
	}
	if !validToken(req.Method) || strings.ContainsAny(uri, " \r\n") {
		return fmt.Errorf("%w line %.40q %.60q", ErrInvalidRequest, req.Method, uri)
	}
	// An HTTP/1.0 client may send no Host: the endpoint's own is the one
	// an HTTP/1.1 request must carry then, as net/http's Transport does.
	host := cmp.Or(req.Host, req.URL.Host, cc.c.Addr)
	if !httpguts.ValidHostHeader(host) {
		return fmt.Errorf("%w Host %.60q", ErrInvalidRequest, host)
	}
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vs := range req.Header {
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			return fmt.Errorf("http1: invalid header field name %q", k)
		case k == "Host" || k == "Content-Length" || k == "Transfer-Encoding" || k == "Trailer":
			continue
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("http1: invalid value of header field %s", k)
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if req.Close && req.Header.Get("Connection") == "" {
		bw.WriteString("Connection: close\r\n")
	}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		if req.ContentLength > 0 {
			return fmt.Errorf("http1: Content-Length %d without a body", req.ContentLength)
		}
		if req.Method == "POST" || req.Method == "PUT" || req.Method == "PATCH" {
			bw.WriteString("Content-Length: 0\r\n")
		}
	case req.ContentLength > 0 && len(req.Trailer) == 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		bw.WriteString("\r\n")
	default:
		if len(req.Trailer) > 0 {
			for k := range req.Trailer {
				if !httpguts.ValidHeaderFieldName(k) {
					return fmt.Errorf("http1: invalid trailer field name %q", k)
				}
			}
			bw.WriteString("Trailer: ")
			first := true
			for k := range req.Trailer {
				if !first {
					bw.WriteString(", ")
				}
				bw.WriteString(k)
				first = false
			}
			bw.WriteString("\r\n")
		}
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// writeBody writes the request's body, in its framing, and flushes.
func (cc *clientConn) writeBody(req *http.Request) error {
	bw := cc.bw
	if req.ContentLength > 0 && len(req.Trailer) == 0 {
		n, err := io.Copy(bw, io.LimitReader(req.Body, req.ContentLength))
		if err == nil && n < req.ContentLength {
			err = fmt.Errorf("http1: the request body ended after %d of its %d bytes", n, req.ContentLength)
		}
		if err != nil {
			return err
		}
		return bw.Flush()
	}
	cw := httputil.NewChunkedWriter(bw)
	buf := copyBuffers.Get().(*[]byte)
	_, err := io.CopyBuffer(cw, req.Body, *buf)
	copyBuffers.Put(buf)
	if err != nil {
		return err
	}
	cw.Close() // the last chunk; trailers follow
	for k, vs := range req.Trailer {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("http1: invalid trailer field name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("http1: invalid value of trailer field %s", k)
			}
			bw.WriteString(k + ": " + v + "\r\n")
		}
	}
	bw.WriteString("\r\n")
	return bw.Flush()
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// awaitContinue waits for the endpoint's 100 Continue, up to
// ExpectContinueTimeout: nil when the body is to be sent (a 100, or no
// answer in time), or the final answer the endpoint gave instead.
func (cc *clientConn) awaitContinue(ctx context.Context, req *http.Request) (*http.Response, error) {
	wait := time.Now().Add(cmp.Or(cc.c.ExpectContinueTimeout, time.Second))
	if dl, ok := ctx.Deadline(); !ok || wait.Before(dl) {
		_ = cc.conn.SetReadDeadline(wait)
	}
	_, err := cc.br.Peek(1)
	dl, _ := ctx.Deadline()
	_ = cc.conn.SetReadDeadline(dl)
	if ctx.Err() != nil { // ended while the deadline was ours: the context's cut is undone
		return nil, ctx.Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, nil // no answer: the body goes
	}
	if err != nil {
		return nil, err
	}
	resp, err := cc.readResponse(ctx, req, http.StatusContinue)
	if err != nil || resp.StatusCode == http.StatusContinue {
		return nil, err
	}
	resp.Close = true // the body was not sent: the connection is not reused
	return resp, nil
}

// max1xx is how many informational responses a request may get before its
// answer (net/http's Transport takes 5).
const max1xx = 5

// readResponse reads the response's head: 1xx responses go to the
// request's ClientTrace and the next is read, but for 101 and those in
// stopAt.
func (cc *clientConn) readResponse(ctx context.Context, req *http.Request, stopAt ...int) (*http.Response, error) {
	trace := httptrace.ContextClientTrace(ctx)
	for n1xx := 0; ; n1xx++ {
		if n1xx > max1xx {
			return nil, fmt.Errorf("http1: more than %d informational responses", max1xx)
		}
		cc.lr.left, cc.lr.inHead = cmp.Or(cc.c.MaxHeaderBytes, DefaultMaxHeaderBytes)+cc.br.Size(), true
		resp, err := cc.readHead(req)
		cc.lr.inHead = false
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, ErrResponseHeaderTooLarge):
				return nil, fmt.Errorf("%w (over %d bytes)", ErrResponseHeaderTooLarge, cmp.Or(cc.c.MaxHeaderBytes, DefaultMaxHeaderBytes))
			case errors.Is(err, ErrMalformedResponse),
				errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne): // the connection's: closed, reset, timed out
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
		}
		code := resp.StatusCode
		if code >= 200 || code == http.StatusSwitchingProtocols {
			return resp, nil
		}
		for _, s := range stopAt {
			if code == s {
				return resp, nil
			}
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// wrap makes resp's body give the connection back at its end.
func (cc *clientConn) wrap(req *http.Request, resp *http.Response, bodySent bool) *http.Response {
	reuse := bodySent && !resp.Close && !req.Close
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The connection is the endpoint's end of the tunnel now, beyond
		// the request's deadline.
		cc.unwatch()
		_ = cc.conn.SetDeadline(time.Time{})
		resp.Body = &tunnel{cc: cc}
		return resp
	}
	if resp.Body == http.NoBody {
		cc.end(reuse)
		return resp
	}
	resp.Body = &clientBody{cc: cc, body: resp.Body, reuse: reuse}
	return resp
}

// end ends the request on the connection: back to the pool if it may be
// reused and the context has not cut it, else closed.
func (cc *clientConn) end(reuse bool) {
	ok := cc.unwatch()
	// Bytes past the response (a body sent after a HEAD, or past its
	// length) would be the next request's answer: such a connection is
	// closed.
	if reuse && ok && cc.br.Buffered() == 0 {
		_ = cc.conn.SetDeadline(time.Time{}) // the request's, which the idle check would meet
		cc.c.put(cc)
		return
	}
	cc.conn.Close()
	cc.c.release()
}

// clientBody is a response body that ends its request at its end.
type clientBody struct {
	cc    *clientConn
	body  io.ReadCloser
	reuse bool
	done  bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.body.Read(p)
	if err != nil {
		b.done = true
		b.cc.end(b.reuse && err == io.EOF)
	}
	return n, err
}

// Close before the end closes the connection: what is left is not read.
func (b *clientBody) Close() error {
	if !b.done {
		b.done = true
		b.cc.end(false)
	}
	return nil
}

// tunnel is the connection after a 101 Switching Protocols.
type tunnel struct {
	cc   *clientConn
	once sync.Once
}

func (t *tunnel) Read(p []byte) (int, error)  { return t.cc.br.Read(p) }
func (t *tunnel) Write(p []byte) (int, error) { return t.cc.conn.Write(p) }
func (t *tunnel) Close() error {
	t.once.Do(func() { t.cc.conn.Close(); t.cc.c.release() })
	return nil
}

// CloseWrite half-closes the tunnel, as ReverseProxy does when the client
// is done sending.
func (t *tunnel) CloseWrite() error {
	if cw, ok := t.cc.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// cutSetKey is the context key of a server connection's cutSet.
type cutSetKey struct{}

// A cutSet holds the client connections whose round trips run in a server
// connection's context (each server connection has one; the first add
// makes its one context.AfterFunc): when the context ends (the client
// went away, the server closed the connection), each is cut, as a
// context.AfterFunc of its own would.
type cutSet struct {
	ctx   context.Context
	done  <-chan struct{} // ctx's
	mu    sync.Mutex
	stop  func() bool // the AfterFunc's, once made
	ended bool
	conns []*clientConn
}

// close ends the set as its server connection's serve returns, without a
// goroutine for the AfterFunc when ctx has not ended.
func (s *cutSet) close() {
	s.mu.Lock()
	stop := s.stop
	s.mu.Unlock()
	if stop == nil || stop() {
		s.end()
	}
}

// end cuts the connections in the set, and those added later at once.
func (s *cutSet) end() {
	s.mu.Lock()
	s.ended = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, cc := range conns {
		cc.cut()
	}
}

// add adds cc, false when the context has ended already.
func (s *cutSet) add(cc *clientConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	if s.stop == nil {
		s.stop = context.AfterFunc(s.ctx, s.end) // run in a goroutine of its own: it waits for mu
	}
	cc.cutIndex = len(s.conns)
	s.conns = append(s.conns, cc)
	return true
}

// remove removes cc, false when the context ended while it was in the set
// (and cut it, or is cutting it).
func (s *cutSet) remove(cc *clientConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	i, last := cc.cutIndex, len(s.conns)-1
	s.conns[i] = s.conns[last]
	s.conns[i].cutIndex = i
	s.conns[last] = nil
	s.conns = s.conns[:last]
	return true
}
