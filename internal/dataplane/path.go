package dataplane

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/http/httpguts"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/internal/http1"
	"github.com/wasmesh/wasmesh/router"
)

// RequestIDHeader carries the request id, propagated or generated.
const RequestIDHeader = "X-Request-Id"

// statusClientClosed is nginx's 499: the client went away before the answer.
const statusClientClosed = 499

var errBodyTooLarge = errors.New("request body too large")

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 { // do not keep huge buffers alive
		b.Reset()
		bufPool.Put(b)
	}
}

// ServeHTTP is the HTTP edge: it makes the Request of a client's request,
// continuing the trace its headers carry, and serves it.
func (p *Plane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &Request{HTTP: r, ID: requestID(r), Start: clock.Now(), Conn: connFrom(r.Context())}
	if id, ok := identity.PeerID(r.TLS); ok {
		req.Peer, req.PeerID = id, id.String()
	}
	if r.ProtoMajor == 2 && r.ContentLength == 0 && len(r.Header["Content-Length"]) == 0 {
		// HTTP/2 gives every request a body to read, even one whose stream
		// ended with its head, which is this one: a stream left open
		// without a Content-Length has a ContentLength of -1. Reading it
		// would set and lift a deadline, a timer each. A body declared
		// empty is still read: trailers may follow it.
		r.Body = http.NoBody
	}
	if r.Body != nil && r.Body != http.NoBody { // net/http's for a request without one
		req.body = http.NewResponseController(w)
	}
	ctx := r.Context()
	if len(r.Header["Traceparent"]) > 1 {
		// Which one? W3C Trace Context has no answer: the trace starts
		// here, as for a traceparent that does not parse.
		delete(r.Header, "Traceparent")
		delete(r.Header, "Tracestate")
	}
	// The propagators (W3C trace context and baggage) read these two
	// fields and no other: without them there is nothing to extract.
	if len(r.Header["Traceparent"]) > 0 || len(r.Header["Baggage"]) > 0 {
		ctx = p.prop.Extract(ctx, requestCarrier(r.Header))
	}
	if len(r.Header["Baggage"]) > 0 {
		req.bag = baggage.FromContext(ctx).String()
	}
	p.serve(ctx, req, w)
	if req.abort {
		panic(http.ErrAbortHandler) // the client must not take a cut body for a whole one
	}
}

var serverSpan = trace.WithSpanKind(trace.SpanKindServer)

// schemeOf is a request's url.scheme by whether it came over TLS.
var schemeOf = map[bool]string{false: "http", true: "https"}

// serverSpanOpts is serverSpan as Start's variadic options: passed as a
// slice, it is not allocated again on each request.
var serverSpanOpts = []trace.SpanStartOption{serverSpan}

// serve is the request path, for a client's request and an in-process call
// alike: a server span; the route (a call names its service); allow_peers;
// the version; the body, read within the limits; a concurrency slot; the
// guest's run; the answer on w; then the span's end, the metrics and the
// access log.
func (p *Plane) serve(ctx context.Context, req *Request, w http.ResponseWriter) {
	p.metrics.Inflight.Add(1)
	defer p.metrics.Inflight.Add(-1)
	r := req.HTTP
	req.ctx, req.span = p.tracer.Start(ctx, "wasmesh.request", serverSpanOpts...)
	if req.span.IsRecording() { // unsampled, attributes would be built to be dropped
		// Copies: the request's strings share the memory of its whole head,
		// which a queued span would keep.
		a := appendMethod(req.spanAttrs(), r.Method)
		a = append(a, attribute.String("url.path", strings.Clone(r.URL.Path)), attribute.String("url.scheme", schemeOf[r.TLS != nil]))
		req.span.SetAttributes(a...)
	}
	req.setHeader(w.Header(), RequestIDHeader, req.ID)
	p.route(req, w)
	p.endSpan(req)
	req.endAttrs()
	p.observe(req)
	p.accessLog(req)
}

// validRequestLine reports whether r's method is a token and its target
// has no space or control character: what an HTTP/1.1 request line takes.
func validRequestLine(r *http.Request) bool {
	if r.Method == "" || !httpguts.ValidHeaderFieldName(r.Method) { // a field name is a token
		return false
	}
	for i := 0; i < len(r.RequestURI); i++ {
		if c := r.RequestURI[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// appendMethod appends a request span's method attributes to a, as
// OpenTelemetry's HTTP conventions have them: a method they do not know is
// "_OTHER", itself in http.request.method_original (so that a client's
// made-up methods do not become values of the attribute queries group by).
func appendMethod(a []attribute.KeyValue, m string) []attribute.KeyValue {
	if known, ok := knownMethods[m]; ok { // the constant: the request's string shares its head's memory
		return append(a, attribute.String("http.request.method", known))
	}
	return append(a, attribute.String("http.request.method", "_OTHER"),
		attribute.String("http.request.method_original", strings.Clone(m)))
}

// knownMethods are the methods of OpenTelemetry's HTTP conventions.
var knownMethods = map[string]string{}

func init() {
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace} {
		knownMethods[m] = m
	}
}

// route takes req from its route to its answer.
func (p *Plane) route(req *Request, w http.ResponseWriter) {
	if req.snap == nil {
		req.snap = p.snap.Load()
	}
	st := req.snap
	if st == nil {
		p.fail(req, w, http.StatusServiceUnavailable, errors.New("no config loaded yet"))
		return
	}
	r := req.HTTP
	if (r.ProtoMajor == 2 || p.opts.NetHTTP) && req.Caller == nil && !p.checkHead(req, w, &st.Config.HTTP) {
		return
	}
	if r.URL.Path == "*" && r.Method == http.MethodOptions && req.Caller == nil {
		// About the server as a whole (RFC 9110, 9.3.7), no service's
		// resource: answered here, as net/http does, not sent on as "/*".
		req.Status = http.StatusOK
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	if clean := cleanPath(r.URL.Path); clean != r.URL.Path {
		r.URL.Path, r.URL.RawPath = clean, ""
	}
	if req.Caller != nil { // a call names its service, and goes in its caller's lane
		req.Lane = req.Caller.Lane
		svc, ok := st.Config.Services[req.service]
		if !ok {
			p.fail(req, w, http.StatusNotFound, fmt.Errorf("no service %q", req.service))
			return
		}
		req.Route, req.Service = st.calls[svc.Name], svc
	} else {
		if r.Method == http.MethodConnect {
			// The gateway is no forward proxy: it opens no tunnels, and
			// sends no CONNECT on to an upstream version.
			req.ClientFault = faultConnect
			p.fail(req, w, http.StatusNotImplemented, errors.New("CONNECT is not served: the gateway opens no tunnels"))
			return
		}
		if strings.IndexByte(r.URL.Path, 0) >= 0 {
			// A %00 in the path: the routes match the decoded path, which
			// a guest's PATH_INFO (a C string to many) would end at. As
			// Envoy does, refused.
			req.ClientFault = faultBadRequest
			p.fail(req, w, http.StatusBadRequest, errors.New("the request's path has a NUL byte (%00)"))
			return
		}
		if r.ProtoMajor == 2 && !validRequestLine(r) {
			// HTTP/2 carries a method and a path as fields, which net/http
			// takes with any bytes but a few: what the HTTP/1.1 edge
			// refuses is refused here too, as the client's fault.
			req.ClientFault = faultBadRequest
			p.fail(req, w, http.StatusBadRequest, fmt.Errorf("invalid method %.40q or request target %.60q", r.Method, r.RequestURI))
			return
		}
		route, svc, ok := st.Table.Match(r)
		if !ok {
			p.fail(req, w, http.StatusNotFound, fmt.Errorf("no route for %s%s", r.Host, r.URL.Path))
			return
		}
		req.Route, req.Service = route, svc
		p.enterLane(req, st)
	}
	svc := req.Service
	req.Limits = svc.Limits
	if peers := st.Peers[svc.Name]; peers != nil && req.Caller == nil {
		if req.PeerID == "" || !peers.Allows(req.Peer) {
			peer := "none (no client SVID)"
			if req.PeerID != "" {
				peer = req.PeerID
			}
			p.log.Warn("peer not allowed", "service", svc.Name, "peer_id", peer, "request_id", req.ID)
			p.fail(req, w, http.StatusForbidden, fmt.Errorf("peer %s may not call service %q", peer, svc.Name))
			return
		}
	}
	v, err := router.Select(svc, r, req.Lane)
	if err != nil {
		status := http.StatusNotFound
		if errors.Is(err, router.ErrLaneRefused) {
			status = http.StatusServiceUnavailable
			p.metrics.LaneRequests.WithLabelValues(req.Lane.Name, svc.Name, laneRefused).Inc()
		}
		p.fail(req, w, status, err)
		return
	}
	req.Version = v
	req.series = p.seriesFor(st, req.Route, svc, v, req.Lane)
	inLane := false // served by the lane's version: its health counts it
	if sr := req.series; sr.laneBaseline != nil {
		if inLane = sr.laneServed != nil && !req.Lane.Evicted(svc.Name); inLane {
			sr.laneServed.Inc()
		} else {
			sr.laneBaseline.Inc()
		}
	}
	req.colour = req.series.colour
	p.colourConn(req)
	defer p.countConn(req)
	req.setHeader(w.Header(), router.VersionHeader, v.Digest)
	// A version a client pinned is none of the version's figures: a
	// client would judge its release (a flood of pinned requests that
	// succeed, or fail).
	req.unjudged = p.noFigures || router.PinOf(svc, r) != ""
	stats := req.series.stats
	if !req.unjudged {
		stats.Requests.Add(1)
	}
	defer func() {
		// Neither the figures nor the lane's health take a request that
		// is not the version's doing: the drain's, the service's limit's,
		// or one whose version a client chose.
		switch {
		case req.unjudged:
		case req.stopped || req.shed:
			stats.Requests.Add(-1)
		default:
			if req.Status >= 500 && req.ClientFault == "" {
				stats.Errors.Add(1) // a client's fault is never the version's error
			}
			if inLane {
				p.watchLane(req)
			}
		}
	}()

	if v.IsUpstream() { // the body streams to the upstream as it comes
		if release, ok := p.acquire(req, w); ok {
			defer release()
			p.proxy(req, w, v)
		}
		return
	}

	// The body is read before a concurrency slot is taken, within the
	// service's timeout, so that slow uploads cannot hold the slots: a
	// module's whole, a component's first streamAfter bytes, the rest
	// streamed to it as it reads (rest).
	mod := st.Modules[v.Digest]
	upTo := int64(0)
	if mod.IsComponent() {
		upTo = streamAfter
	}
	body := getBuf()
	defer putBuf(body)
	held := &heldBody{budget: &p.bodyMemory, max: cmp.Or(req.snap.Config.HTTP.MaxBodyMemory, config.DefaultMaxBodyMemory)}
	defer held.release()
	rest, err := readBody(body, req, upTo, held)
	if rest != nil {
		defer rest.end()
	}
	if errors.Is(err, errBodyMemory) {
		// Not the client's doing, nor the version's: the gateway's
		// bodies in memory, all requests' together, at their bound.
		p.shed(req, w, http.StatusServiceUnavailable, err)
		return
	}
	if err != nil {
		status, fault := p.bodyFailure(req, err)
		req.ClientFault = fault
		p.fail(req, w, status, &bodyError{err})
		return
	}
	if rest == nil {
		r.ContentLength = int64(body.Len()) // known now, even for a chunked body
	}

	release, ok := p.acquire(req, w)
	if !ok {
		return
	}
	defer release()
	if mod.IsComponent() {
		p.runComponent(req, w, mod, body, rest)
	} else {
		p.runGuest(req, w, mod, body)
	}
}

// acquire takes one of the service's concurrency slots for req, waiting
// in its queue within the timeout; when it cannot, it answers (503, or the
// client's failure) and reports false.
func (p *Plane) acquire(req *Request, w http.ResponseWriter) (release func(), ok bool) {
	release, err := p.limiterFor(req.Service).acquire(req.ctx, req.Limits.Timeout)
	if err != nil {
		// The service's slots are all its versions': one refused is no
		// version's error (nor latency).
		p.shed(req, w, statusOf(err), err)
		return nil, false
	}
	return release, true
}

// shed answers req refused for the gateway's or the service's load, not
// the version's doing (none of its figures): with status (503, Retry-After
// and counted as a rejection; or a client's gone while it waited).
func (p *Plane) shed(req *Request, w http.ResponseWriter, status int, err error) {
	req.shed = true
	if status != statusClientClosed { // a client gone while it waited was not refused
		p.metrics.Rejections.WithLabelValues(req.Service.Name).Inc()
		w.Header().Set("Retry-After", "1")
	}
	p.fail(req, w, status, err)
}

// streamAfter is how much of a component's request body is read before
// its handler runs; the rest is streamed to it (incoming-body).
const streamAfter = 64 << 10

// readBody reads req's body into buf, refusing more than Limits.MaxBody
// bytes: all of it when upTo is 0, else at most upTo bytes, and then,
// when the body goes on, returns the rest (nil: buf has it all). A
// client's body is read under a read deadline of Limits.Timeout on its
// connection, lifted once read (net/http would take it for a client
// gone); for a body with a rest, set again when the handler starts
// (restBody.start) and lifted when it is done (restBody.end).
func readBody(buf *bytes.Buffer, req *Request, upTo int64, held *heldBody) (*restBody, error) {
	r, max, timeout := req.HTTP, req.Limits.MaxBody, req.Limits.Timeout
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > max {
		return nil, fmt.Errorf("%w: %d bytes, limit is %d", errBodyTooLarge, r.ContentLength, max)
	}
	lift := func() {}
	if req.body != nil {
		// The request's context ending (its client gone, or the drain's
		// deadline stopping what still runs) ends a read that waits on
		// the client at once. lift waits for that call when it started:
		// the ResponseWriter is not to be touched once the handler
		// returns (HTTP/2's is gone).
		_ = req.body.SetReadDeadline(time.Now().Add(timeout))
		ended := make(chan struct{})
		stop := context.AfterFunc(r.Context(), func() {
			defer close(ended)
			_ = req.body.SetReadDeadline(time.Now())
		})
		lift = func() {
			if stop() {
				_ = req.body.SetReadDeadline(time.Time{})
			} else {
				<-ended
			}
		}
	}
	read := max + 1
	if upTo > 0 && upTo < max {
		read = upTo + 1
	}
	n, err := held.readFrom(buf, r.Body, read)
	req.BodyLen = buf.Len()
	switch {
	case err != nil:
		lift()
		return nil, fmt.Errorf("read request body: %w", err)
	case n > max:
		lift()
		return nil, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, max)
	case n == read: // more to come: the component reads it
		return &restBody{req: req, r: r.Body, left: max - n, max: max, lift: lift}, nil
	}
	lift()
	return nil, nil
}

// errBodyMemory is a request body refused because the bodies the gateway
// holds in memory, all requests' together, are at http.max_body_memory.
var errBodyMemory = errors.New("the gateway holds as much of requests' bodies in memory as http.max_body_memory lets it: try again shortly")

// bodyChunk is how much of a request body is read at a time, and taken
// from the gateway's budget before it is.
const bodyChunk = 32 << 10

// heldBody is what a request's body takes of the gateway's budget for
// bodies in memory (Plane.bodyMemory), given back by release.
type heldBody struct {
	budget *atomic.Int64
	max    int64
	n      int64 // taken
}

// readFrom reads up to limit bytes of r into buf, bodyChunk at a time,
// each taken from the budget first; errBodyMemory when it is spent.
func (h *heldBody) readFrom(buf *bytes.Buffer, r io.Reader, limit int64) (int64, error) {
	var total int64
	for total < limit {
		chunk := min(bodyChunk, limit-total)
		if h.budget.Add(chunk) > h.max {
			h.budget.Add(-chunk)
			return total, errBodyMemory
		}
		h.n += chunk
		m, err := buf.ReadFrom(io.LimitReader(r, chunk))
		total += m
		if err != nil || m < chunk { // the body's end, or its failure
			return total, err
		}
	}
	return total, nil
}

// release gives back what the body took of the budget.
func (h *heldBody) release() {
	h.budget.Add(-h.n)
	h.n = 0
}

// restBody is the rest of a component's request body, read as the
// component reads it, at most left bytes more; err keeps the client's
// failure (a body too large, malformed, cut off or too slow), which makes
// the request the client's fault whatever the component answered.
type restBody struct {
	req  *Request
	r    io.Reader
	left int64
	max  int64
	lift func() // the read deadline
	err  error
}

func (b *restBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if int64(n) > b.left {
		n, err = int(b.left), fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, b.max)
	}
	b.left -= int64(n)
	b.req.BodyLen += n
	switch {
	case err == io.EOF:
		return n, err
	case err != nil && !errors.Is(err, errBodyTooLarge):
		err = fmt.Errorf("read request body: %w", err)
	}
	b.err = err
	return n, err
}

// start gives the rest the service's timeout from now, when the handler
// starts: the wait for a concurrency slot is not the client's.
func (b *restBody) start() {
	if b.req.body != nil && b.req.HTTP.Context().Err() == nil { // else the read ends at once (readBody)
		_ = b.req.body.SetReadDeadline(time.Now().Add(b.req.Limits.Timeout))
		if b.req.HTTP.Context().Err() != nil { // ended meanwhile: its deadline may have been overwritten
			_ = b.req.body.SetReadDeadline(time.Now())
		}
	}
}

// end lifts the read deadline, once the handler is done with the body.
func (b *restBody) end() { b.lift() }

// The client faults: reasons a request fails by its client's doing, the
// label of wasmesh_client_errors_total. The HTTP/1 listener adds its own
// for requests it refuses before they are routed (http1.Server.Refused).
const (
	faultBodyTooLarge = "body_too_large" // 413: over the service's max_body
	faultBodyTimeout  = "body_timeout"   // 408: not sent within the service's timeout
	faultBadBody      = "bad_body"       // 400: malformed framing (chunks, trailers)
	faultClientAbort  = "client_abort"   // 499: gone before the answer
	faultSlowReader   = "slow_reader"    // the timeout came as it took a proxied answer too slowly
	faultConnect      = "connect"        // 501: a CONNECT, which the gateway does not serve
	faultBadRequest   = "bad_request"    // 400: a method or request target HTTP/1.1 would refuse (sent over h2)
)

// bodyError is a failure to read a client's request body: logged whole,
// told to the client without the sockets' addresses a net error names.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// Public is what the client is told.
func (e *bodyError) Public() string { return bodyMessage(e.err) }

// bodyMessage says what went wrong reading a request body, for its client.
func bodyMessage(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errBodyTooLarge):
		_, detail, _ := strings.Cut(err.Error(), errBodyTooLarge.Error())
		return errBodyTooLarge.Error() + detail
	case errors.As(err, &ne) && ne.Timeout():
		return "request body not received within the service's timeout"
	case errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "request body cut off"
	}
	return err.Error() // the framing's error (chunks, trailers), of the request's own bytes
}

// bodyFailure is the status and client fault of a request whose body
// failed with err (bodyFault), once its context ended: a client gone (the
// server saw it go; h2: the stream reset), or, while the gateway drains,
// the drain's deadline, which stops body reads as it stops guests: a 503
// that is neither the client's fault nor the version's (req.stopped).
func (p *Plane) bodyFailure(req *Request, err error) (int, string) {
	status, fault := bodyFault(err)
	if req.HTTP.Context().Err() != nil && status != http.StatusRequestEntityTooLarge {
		status, fault = statusClientClosed, faultClientAbort
		if drainStopped(req.HTTP.Context()) {
			status, fault, req.stopped = http.StatusServiceUnavailable, "", true
		}
	}
	return status, fault
}

// bodyFault is the status and client fault of a failure to read a
// request's body: whatever it is, the client's (the body is in memory, or
// on the client's connection).
func bodyFault(err error) (int, string) {
	var ne net.Error
	switch {
	case errors.Is(err, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge, faultBodyTooLarge
	case errors.As(err, &ne) && ne.Timeout(): // os.ErrDeadlineExceeded is one
		return http.StatusRequestTimeout, faultBodyTimeout
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.As(err, &ne), errors.Is(err, context.Canceled):
		return statusClientClosed, faultClientAbort
	}
	return http.StatusBadRequest, faultBadBody // http1.ErrMalformedBody, net/http's and h2's framing errors
}

// statusOf maps a failure to the status the client sees.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, host.ErrDeadline):
		return http.StatusGatewayTimeout
	case errors.Is(err, errOverloaded):
		return http.StatusServiceUnavailable
	case errors.Is(err, host.ErrCanceled), errors.Is(err, context.Canceled):
		return statusClientClosed
	}
	return http.StatusBadGateway // traps, output and memory limits, bad responses
}

// fail answers with a short error naming the request id.
func (p *Plane) fail(req *Request, w http.ResponseWriter, status int, err error) {
	req.Status, req.Err = status, err
	if status == statusClientClosed && req.ClientFault == "" {
		req.ClientFault = faultClientAbort
	}
	if req.Version == nil {
		p.uncolourConn(req) // not a version's traffic: drop the last request's colour
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	msg := http.StatusText(status)
	if status == statusClientClosed {
		msg = "Client Closed Request"
	}
	var pub interface{ Public() string }
	switch {
	case errors.As(err, &pub): // says what it may (not an endpoint's address)
		msg += ": " + pub.Public()
	case status < 500 || status == http.StatusServiceUnavailable:
		msg += ": " + err.Error() // the client's own mistake, or overload: safe to say
	}
	body := fmt.Sprintf("wasmesh: %s\nrequest id: %s\n", msg, req.ID)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	n, _ := io.WriteString(w, body)
	req.Bytes = n
}

func (p *Plane) endSpan(req *Request) {
	if !req.span.IsRecording() { // unsampled: its attributes would be dropped
		req.span.End()
		return
	}
	attrs := append(req.spanAttrs(), attribute.Int("http.response.status_code", req.Status), attribute.String("wasmesh.request_id", req.ID))
	if req.Route != nil {
		attrs = append(attrs, attribute.String("http.route", req.Route.Name), attribute.String("wasmesh.service", req.Service.Name))
	}
	if req.Version != nil {
		attrs = append(attrs, attribute.String("wasmesh.version", req.Version.Digest))
	}
	if req.Lane != nil {
		attrs = append(attrs, attribute.String("wasmesh.lane", req.Lane.Name))
	}
	if req.Status >= 500 { // an error of the server's (OpenTelemetry's HTTP conventions), whoever answered it
		attrs = append(attrs, attribute.String("error.type", strconv.Itoa(req.Status)))
	}
	req.span.SetAttributes(attrs...)
	switch {
	case req.Status >= 500 && req.Err != nil:
		req.span.SetStatus(codes.Error, req.Err.Error())
	case req.Status >= 500:
		req.span.SetStatus(codes.Error, "")
	}
	req.span.End()
}

// injectTrace sets the trace context of ctx and the baggage of req (its
// calls') on header, replacing what header had of them.
func injectTrace(ctx context.Context, req *Request, header http.Header) {
	delete(header, "Traceparent")
	delete(header, "Tracestate")
	propagation.TraceContext{}.Inject(ctx, requestCarrier(header))
	if req.bag != "" {
		header["Baggage"] = []string{req.bag}
	} else {
		delete(header, "Baggage")
	}
}

// requestCarrier is propagation.HeaderCarrier, for extracting and
// injecting: the propagators ask for and set "traceparent", "tracestate"
// and "baggage", which http.Header's methods would canonicalise into a new
// string on every request.
type requestCarrier http.Header

var canonicalKeys = map[string]string{"traceparent": "Traceparent", "tracestate": "Tracestate", "baggage": "Baggage"}

func (c requestCarrier) key(k string) string {
	if ck, ok := canonicalKeys[k]; ok {
		return ck
	}
	return http.CanonicalHeaderKey(k)
}

// Get is the field's value (several joined with ",", as W3C Trace
// Context combines tracestate fields). A tracestate is copied: a span
// keeps what it parses of it past the request, and must not keep the
// request's whole head with it (a traceparent is parsed into ids).
func (c requestCarrier) Get(k string) string {
	key := c.key(k)
	switch vs := c[key]; {
	case len(vs) == 0:
		return ""
	case len(vs) > 1:
		return strings.Join(vs, ",")
	case key == "Tracestate":
		return strings.Clone(vs[0])
	default:
		return vs[0]
	}
}

func (c requestCarrier) Values(k string) []string { return c[c.key(k)] }

func (c requestCarrier) Set(k, v string) { c[c.key(k)] = []string{v} }

func (c requestCarrier) Keys() []string { return propagation.HeaderCarrier(c).Keys() }

// requestID propagates a sane incoming X-Request-Id, or makes one.
func requestID(r *http.Request) string {
	if ids := r.Header[RequestIDHeader]; len(ids) > 0 && ids[0] != "" && len(ids[0]) <= 128 && printable(ids[0]) {
		return strings.Clone(ids[0]) // kept past the request (spans, logs), not its whole head with it
	}
	return newRequestID()
}

// newRequestID returns 16 random lowercase hex digits, leading zeros kept.
func newRequestID() string {
	const digits = "0123456789abcdef"
	var b [16]byte
	v := rand.Uint64()
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// checkHead answers a request whose head is past the config's http limits
// that net/http's servers do not check (they bound a head's bytes only):
// more fields than max_headers, for HTTP/2 and net/http's HTTP/1 alike,
// and a request line over max_request_line, for HTTP/1. It reports
// whether the request may go on.
func (p *Plane) checkHead(req *Request, w http.ResponseWriter, limits *config.HTTP) bool {
	r := req.HTTP
	n, most := 0, cmp.Or(limits.MaxHeaders, http1.DefaultMaxHeaders)
	for _, vs := range r.Header {
		n += len(vs)
	}
	if n > most {
		req.ClientFault = "too_many_headers"
		p.fail(req, w, http.StatusRequestHeaderFieldsTooLarge, fmt.Errorf("%d header fields, over http.max_headers %d", n, most))
		return false
	}
	if r.ProtoMajor == 1 {
		line, most := int64(len(r.Method)+len(r.RequestURI)+len(r.Proto)+2), cmp.Or(limits.MaxRequestLine, http1.DefaultMaxRequestLine)
		if line > most {
			req.ClientFault = "request_line_too_long"
			p.fail(req, w, http.StatusRequestURITooLong, fmt.Errorf("a request line of %d bytes, over http.max_request_line %d", line, most))
			return false
		}
	}
	return true
}

// cleanPath resolves "." and ".." so that routes see the path the guest will,
// keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p) // p itself, not a copy, when it is clean already
	if strings.HasSuffix(p, "/") && c != "/" {
		if c == p[:len(p)-1] { // clean but for the trailing slash: keep p
			return p
		}
		c += "/"
	}
	return c
}
