package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/router"
	"github.com/wasmesh/wasmesh/wasi"
)

// PeerIDHeader carries, to a component or an upstream version, the
// SPIFFE ID of the mTLS client that sent the request; the gateway removes
// any the client sent itself.
const PeerIDHeader = "X-Spiffe-Peer-Id"

// runComponent serves the request with a wasi:http/proxy component: its
// incoming-handler gets the request — the path after strip_prefix, the
// client's headers with the gateway's own (version, request id, peer ID,
// and a traceparent naming the guest's span) — and its response is
// written.
func (p *Plane) runComponent(req *Request, w http.ResponseWriter, mod *host.Module, body *bytes.Buffer, rest *restBody) {
	r := req.HTTP
	path := r.URL.EscapedPath() // as sent: %2F stays a byte of a segment, not a separator
	if req.Route.StripPrefix {
		path = req.Route.Rewrite(path)
	}
	if r.URL.RawQuery != "" {
		path += "?" + escapeQuery(r.URL.RawQuery)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	cr := &componentRun{req: req, w: w}
	ctx, span := req.ctx, trace.Span(nil)
	if req.span.IsRecording() {
		ctx, span = p.tracer.Start(ctx, "wasmesh.guest")
	}
	start := clock.Now()
	cr.in.Reset(body.Bytes())
	var in io.Reader = &cr.in
	if rest != nil {
		rest.start()
		in = io.MultiReader(in, rest)
	}
	cr.args[0] = req.Service.Name
	cr.call = host.HTTPRequest{
		Method: r.Method, PathWithQuery: path, Scheme: scheme, Authority: r.Host, HeaderFunc: cr.header,
		Body: in, Trailer: cr.trailer, Outbound: p.outboundFn, Admit: p.admitFn, Link: p.linkFn,
		Args: cr.args[:], Env: req.snap.componentEnv(req.Service), Warmup: req.Service.Warmup,
		Respond: cr.respond, Stdout: &cr.stdout, Stderr: &cr.stderr,
	}
	defer cr.stdout.release()
	defer cr.stderr.release()
	cr.ctx = guestContext{Context: ctx, req: req}
	resp, err := p.engine.HandleHTTP(&cr.ctx, mod, &cr.call, req.Limits.Timeout, req.Limits.Memory)
	if cr.call.Instantiate > 0 {
		req.series.instTime.Observe(cr.call.Instantiate.Seconds())
	}
	for _, o := range []struct {
		name string
		out  *lazyHead
	}{{"stdout", &cr.stdout}, {"stderr", &cr.stderr}} {
		if b := o.out.bytes(); len(b) > 0 {
			p.log.Debug("guest "+o.name, "request_id", req.ID, "service", req.Service.Name, o.name, truncate(string(b), 2048))
		}
	}
	if err != nil {
		err = trapDetail(err, 0, 0, cr.stderr.bytes()) // a panic's message, its last line
	}
	sw := cr.sw
	if sw != nil {
		// What is pending goes with the end of the response, or, when
		// the response is cut short, before: the client sees what the
		// component sent (its status at least) before the connection
		// closes.
		sw.close(err != nil || !resp.Finished)
		if sw.end() {
			// The client did not take the response within the service's
			// timeout: its fault, whatever the guest made of the failed
			// write (the answer is cut).
			req.ClientFault = faultSlowReader
			if err == nil && resp.Finished {
				err = errors.New("the client did not take the response within the service's timeout")
			}
		}
	}
	req.series.runTime.Observe(time.Since(start).Seconds())
	if span != nil {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	sent := req.Status // the head the client has (streamed), 0 for none
	bodyFailed := rest != nil && rest.err != nil
	if bodyFailed {
		// The client's failure (or the drain's), whatever the component
		// made of it.
		status, fault := p.bodyFailure(req, rest.err)
		req.ClientFault = fault
		if sent == 0 {
			p.fail(req, w, status, &bodyError{rest.err})
			return
		}
		// The component answered already (its head is the client's, and
		// the answer is cut): the status counted and logged is the body
		// failure's, not the component's answer to it.
		req.Status, err = status, rest.err
	}
	switch {
	case sent != 0:
		if err == nil && !resp.Finished {
			err = errUnfinished
		}
		if err == nil {
			for k, vs := range resp.Trailer {
				w.Header()[http.TrailerPrefix+k] = vs // sent after the body
			}
		}
		if err != nil {
			// The response is cut short. Unless the client's body failed
			// (set above), the guest failed after its head: the status
			// its failure would have had is the one counted.
			req.Err, req.abort = fmt.Errorf("%w (after a %d head and %d bytes of the body were sent)", err, sent, req.Bytes), true
			if !bodyFailed && req.ClientFault == "" {
				if req.Status = statusOf(err); req.Status == statusClientClosed {
					req.ClientFault = faultClientAbort
					if drainStopped(req.HTTP.Context()) {
						req.Status, req.ClientFault, req.stopped = http.StatusServiceUnavailable, "", true
					}
				}
			}
		}
	case err != nil:
		p.failGuest(req, w, err)
	default:
		req.answer(w, resp.Status, resp.Header, resp.Body)
	}
}

// escapeQuery is a request's query as a component gets it: its bytes
// outside printable ASCII percent-encoded, as the path's are
// (EscapedPath). What the component gets is a URI's query, and a string
// the canonical ABI can carry: a client's raw 0xff is not UTF-8.
func escapeQuery(q string) string {
	i := 0
	for i < len(q) && q[i] > ' ' && q[i] < 0x7f {
		i++
	}
	if i == len(q) {
		return q
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, i, len(q)+8)
	copy(b, q)
	for ; i < len(q); i++ {
		if c := q[i]; c > ' ' && c < 0x7f {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

var errUnfinished = errors.New("the handler returned without finishing the response body")

// componentEnv is a service's env, sorted by name, for wasi:cli/environment
// (a component's request is in its incoming-request, not in variables):
// made once per service and snapshot.
func (st *Snapshot) componentEnv(svc *config.Service) [][2]string {
	if len(svc.Env) == 0 {
		return nil
	}
	if env, ok := st.envs.Load(svc.Name); ok {
		return env.([][2]string)
	}
	env := make([][2]string, 0, len(svc.Env))
	for k, v := range svc.Env {
		env = append(env, [2]string{k, v})
	}
	slices.SortFunc(env, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	st.envs.Store(svc.Name, env)
	return env
}

// componentRun is what runComponent makes for a request, in one
// allocation (but for its two method values).
type componentRun struct {
	req    *Request
	w      http.ResponseWriter
	call   host.HTTPRequest
	in     bytes.Reader
	args   [1]string
	values [3]string     // of the header fields the gateway sets
	sw     *streamWriter // set once the response is sent: stream
	stream streamWriter
	// What the component writes to stdout and stderr, for the log.
	stdout, stderr lazyHead
	ctx            guestContext // the component's context, with req in it
}

// header is the component's request header, made when it first asks for
// it: the client's fields with the gateway's own (version, request id, peer
// ID, and a traceparent naming the guest's span, or the request's when the
// guest's is not recorded).
func (cr *componentRun) header() http.Header {
	req := cr.req
	r := req.HTTP
	// The names are canonical already: set in the map, not through
	// Header's methods, which canonicalise each name again. The values
	// are the client's slices, shared: fields are only ever replaced.
	header := make(http.Header, len(r.Header)+4)
	for k, vs := range r.Header {
		// X_Spiffe_Peer_Id would pass for the gateway's in a WSGI shim;
		// the connection's fields are not the request's.
		if !underscored(k, gatewayFields) && !connectionFields[k] {
			header[k] = vs
		}
	}
	dropConnectionNamed(header, r.Header["Connection"])
	delete(header, PeerIDHeader)
	if req.PeerID != "" {
		header[PeerIDHeader] = cr.value(0, req.PeerID)
	}
	header[router.VersionHeader] = cr.value(1, req.Version.Digest)
	header[RequestIDHeader] = cr.value(2, req.ID)
	injectTrace(cr.ctx.Context, req, header)
	return header
}

// connectionFields are the client's fields a component's request does not
// have: those about its connection to the gateway (RFC 9110, 7.6.1), which
// a component may not set either (wasip2's forbidden, wasmtime's
// DEFAULT_FORBIDDEN_HEADERS): a component that forwards the request's
// fields (fields.from-list of its entries) would be refused.
var connectionFields = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Transfer-Encoding": true, "Upgrade": true, "Http2-Settings": true,
}

// value is the field value v, in values[i].
func (cr *componentRun) value(i int, v string) []string {
	cr.values[i] = v
	return cr.values[i : i+1 : i+1]
}

// trailer is the request's trailers as the component gets them, once it
// read the body: those a client could forge there as it cannot in its
// header (the gateway's ids, trace context, peer ID) and framing fields
// dropped, as for an upstream version.
func (cr *componentRun) trailer() http.Header {
	t := cr.req.HTTP.Trailer
	dropForbiddenTrailers(t)
	return t
}

// respond sends a streamed response's status and header (but hop-by-hop
// fields) and returns where its body goes: to the client, counted.
//
// The client has the service's timeout from then to take the response: a
// write it holds past that fails (its fault, a slow_reader), rather than
// hold the guest, blocked in the write, and its concurrency slot for as
// long as the client keeps its connection open.
func (cr *componentRun) respond(status int, header host.ResponseHeader) io.Writer {
	header.AddTo(cr.w.Header(), hopByHop)
	if cr.req.HTTP.Method == http.MethodHead { // the length its GET's body would have, which no body says
		declared := http.Header{}
		header.AddTo(declared, nil)
		if l := headLength(cr.req.HTTP, declared); l != "" {
			cr.w.Header()["Content-Length"] = []string{l}
		}
	}
	noSniff(cr.w.Header())
	cr.req.Status = status
	cr.w.WriteHeader(status)
	cr.stream = streamWriter{w: cr.w, rc: *http.NewResponseController(cr.w), n: &cr.req.Bytes, h2: cr.req.HTTP.ProtoMajor == 2}
	if t := cr.req.Limits.Timeout; t > 0 {
		cr.stream.timeout = t
		cr.stream.deadline = cr.stream.rc.SetWriteDeadline(time.Now().Add(t)) == nil
	}
	cr.sw = &cr.stream
	return cr.sw
}

// flushDelay is how long a streamed body's bytes may wait to be sent with
// the next ones. A component that writes its body and returns within it
// (most do: a hello takes 20 µs) has its header, body and end sent in one
// write, where flushing each of its writes at once cost a write(2) each,
// a third of a small request's time; one that streams has what it wrote
// sent within flushDelay, whatever it does next (compute, wait).
const flushDelay = 2 * time.Millisecond

// streamWriter writes a streamed body to the client as it comes: bytes
// written are flushed flushDelay after the first of them, by a timer, or
// with the end of the response, whichever is first.
type streamWriter struct {
	w  http.ResponseWriter
	rc http.ResponseController
	n  *int

	mu       sync.Mutex // the timer's flush against the guest's writes
	pending  bool       // written, not yet flushed
	timer    *flushTimer
	closed   bool
	err      error         // of a flush on the timer, for the next Write
	deadline bool          // a write deadline is set on the connection (lifted by end)
	timeout  time.Duration // the service's: the client's time to take what is written
	flushed  bool          // some of the response went out before its end
	slow     bool          // a write failed at the deadline: the client did not take the response
	h2       bool          // the answer goes over HTTP/2 (liftWriteDeadline)
}

func (s *streamWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errStreamClosed
	}
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	*s.n += n
	s.noteTimeout(err)
	if err == nil && n > 0 && !s.pending {
		s.pending = true
		if s.timer == nil {
			s.timer = newFlushTimer(s)
		}
		s.timer.t.Reset(flushDelay)
	}
	return n, err
}

var errStreamClosed = errors.New("the response is over: a write after the handler returned")

// flush sends what is pending, unless the response is over.
func (s *streamWriter) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending && !s.closed {
		s.pending, s.flushed = false, true
		s.err = s.rc.Flush()
		s.noteTimeout(s.err)
	}
}

// noteTimeout notes a write that failed at the deadline, s.mu held.
func (s *streamWriter) noteTimeout(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.slow = true
	}
}

// end lifts the write deadline once the handler is done with the stream,
// and reports whether the client failed to take the response in time.
// What the response still holds is sent under the deadline first when
// some went out before (the client's buffers may be full); a response
// held whole is left to the server, which sends it with its length in one
// write, into buffers nothing has filled.
func (s *streamWriter) end() (slow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deadline {
		if s.flushed && s.err == nil {
			s.renew()
			s.noteTimeout(s.rc.Flush())
		}
		liftWriteDeadline(&s.rc, s.h2)
		s.deadline = false
	}
	return s.slow
}

// close stops the timer, leaving what is pending to the end of the
// response unless flush: after it returns, nothing touches w.
func (s *streamWriter) close(flush bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if ft := s.timer; ft != nil {
		s.timer = nil
		ft.release()
	}
	if flush && s.err == nil {
		s.flushed = true
		s.renew()
		s.noteTimeout(s.rc.Flush())
	}
}

// renew gives the client the service's timeout from now to take what the
// response still holds, s.mu held: the deadline set at the head may have
// passed while the guest ran (stopped at its own, which is not the
// client's doing).
func (s *streamWriter) renew() {
	if s.deadline {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	}
}

// flushTimer is a stream's flush timer. Timers are kept for the next
// streams (a time.AfterFunc and its function were two allocations a
// response); each carries the stream it flushes for.
type flushTimer struct {
	t  *time.Timer
	mu sync.Mutex
	s  *streamWriter // nil between streams
}

var flushTimers sync.Pool

// newFlushTimer is a stopped timer that flushes s.
func newFlushTimer(s *streamWriter) *flushTimer {
	ft, _ := flushTimers.Get().(*flushTimer)
	if ft == nil {
		ft = &flushTimer{}
		ft.t = time.AfterFunc(time.Hour, ft.fire)
		ft.t.Stop()
	}
	ft.bind(s)
	return ft
}

// bind makes the timer flush s.
func (ft *flushTimer) bind(s *streamWriter) {
	ft.mu.Lock()
	ft.s = s
	ft.mu.Unlock()
}

func (ft *flushTimer) fire() {
	ft.mu.Lock()
	s := ft.s
	ft.mu.Unlock()
	if s != nil {
		s.flush() // a stream closed since does nothing
	}
}

// release stops the timer and keeps it for another stream, unless it may
// be firing: then it is left to finish, for the collector.
func (ft *flushTimer) release() {
	if !ft.t.Stop() {
		return
	}
	ft.bind(nil)
	flushTimers.Put(ft)
}

// componentOutbound sends a component's outgoing request by the path of
// http_call (outbound list, client span, trace injection, colour, mTLS): a
// request to http://SERVICE/…, SERVICE the name of a service of the
// config, is an in-process call, as wasmesh://SERVICE/… is.
func (p *Plane) componentOutbound(ctx context.Context, out *wasi.OutboundRequest) (*wasi.OutboundResponse, int) {
	inProcess(ctx, out)
	return imports{p}.HTTPCall(ctx, out, nil)
}

// componentAdmit says at once, as a component's outgoing-handler.handle
// returns, whether its request may go (HTTP-request-denied, an invalid
// URL), before it is sent on its own (componentOutbound).
func (p *Plane) componentAdmit(ctx context.Context, out *wasi.OutboundRequest) int {
	inProcess(ctx, out)
	_, _, _, code := p.admitCall(ctx, out, nil)
	return code
}

// inProcess makes a component's request to http://SERVICE/… (no port),
// where SERVICE is a service of the config, the in-process call
// wasmesh://SERVICE/….
func inProcess(ctx context.Context, out *wasi.OutboundRequest) {
	if req := requestFrom(ctx); req != nil {
		if u, err := url.Parse(out.URL); err == nil && u.Scheme == "http" && u.Port() == "" && req.snap.Config.Services[strings.ToLower(u.Hostname())] != nil {
			u.Scheme = "wasmesh"
			out.URL = u.String()
		}
	}
}
