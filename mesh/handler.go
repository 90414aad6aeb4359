package mesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/http1"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/router"
	"github.com/wasmesh/wasmesh/wasi"
)

const (
	// RequestIDHeader carries the request id, propagated or generated.
	RequestIDHeader = "X-Request-Id"
	// MaxResponse is the most a guest may write to stdout for one response.
	MaxResponse = 32 << 20
	// maxStderr is how much of a guest's stderr is kept for the log; the
	// rest is dropped, without failing the request.
	maxStderr = 16 << 10
)

var (
	bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	envPool = sync.Pool{New: func() any { return new(wasi.EnvBuffer) }}
)

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 { // do not keep huge buffers alive
		b.Reset()
		bufPool.Put(b)
	}
}

// exchange is one request on its way through the gateway.
type exchange struct {
	w       http.ResponseWriter
	r       *http.Request
	ctx     context.Context // r's, with the request's span: r is not copied to carry it
	id      string
	start   time.Time
	route   *config.Route
	service *config.Service
	version *config.Version
	status  int
	bytes   int
	err     error // why the request failed, for the log
	depth   int   // how many http_call hops led here
	span    trace.Span
	series  *series // the route's and version's metrics; nil for in-process calls
	colour  bpf.Colour
	bodyLen int
	guest   guest // what host functions find in the guest's context
	// hv holds the values of the headers the gateway sets (setHeader):
	// allocated with the exchange, not one slice each.
	hv  [3]string
	nhv int
}

// setHeader sets response header k, canonical, to v.
func (x *exchange) setHeader(k, v string) {
	h := x.w.Header()
	if x.nhv == len(x.hv) {
		h.Set(k, v)
		return
	}
	x.hv[x.nhv] = v
	h[k] = x.hv[x.nhv : x.nhv+1 : x.nhv+1]
	x.nhv++
}

// ServeHTTP routes r to a service version and runs its guest.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.handle(w, r, nil, 0)
}

// takingTurns is h for net/http's server: before an HTTP/1 request, the
// connection's goroutine takes its http1.Turn, as internal/http1 does
// between requests: it yields the processor if it has not for
// http1.TurnLength, so that
// under saturation connections take turns. Without it the scheduler keeps
// serving the goroutines of its local queues and rarely polls the
// network; connections whose next request has arrived are found by
// sysmon, every 10 ms, and put in the global queue, where they wait for
// tens of ms (golang/go#51651). Measured with the hello guests at
// saturation (docs/PERFORMANCE.md): p99 from 3-5x the native handler's to
// about 1x. HTTP/2 runs each stream in a goroutine of its own. The
// connection's last turn is in its context (withTurns).
func takingTurns(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := r.Context().Value(turnKey{}).(*http1.Turn); ok && r.ProtoMajor == 1 {
			t.Take(time.Now())
		}
		h.ServeHTTP(w, r)
	})
}

type turnKey struct{}

// withTurns is withConn with the connection's last turn, for takingTurns:
// net/http's server runs an HTTP/1 connection's requests one after the
// other on its goroutine, so the record needs no lock.
func withTurns(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(withConn(ctx, c), turnKey{}, new(http1.Turn))
}

var serverSpan = trace.WithSpanKind(trace.SpanKindServer)

// requestCarrier is propagation.HeaderCarrier for extracting: the
// propagators ask for "traceparent", "tracestate" and "baggage", which
// http.Header.Get would canonicalise into a new string on every request.
type requestCarrier http.Header

var canonicalKeys = map[string]string{"traceparent": "Traceparent", "tracestate": "Tracestate", "baggage": "Baggage"}

func (c requestCarrier) key(k string) string {
	if ck, ok := canonicalKeys[k]; ok {
		return ck
	}
	return http.CanonicalHeaderKey(k)
}

func (c requestCarrier) Get(k string) string {
	if vs := c[c.key(k)]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (c requestCarrier) Values(k string) []string { return c[c.key(k)] }

func (c requestCarrier) Set(k, v string) { http.Header(c).Set(k, v) }

func (c requestCarrier) Keys() []string { return propagation.HeaderCarrier(c).Keys() }

// handle serves one request: by route, or, for a guest's wasmesh:// call,
// straight to service with the call's depth.
func (g *Gateway) handle(w http.ResponseWriter, r *http.Request, service *string, depth int) {
	g.metrics.inflight.Inc()
	defer g.metrics.inflight.Dec()
	ctx := g.prop.Extract(r.Context(), requestCarrier(r.Header))
	ctx, span := g.tracer.Start(ctx, "wasmesh.request", serverSpan)
	if span.IsRecording() { // unsampled, attributes would be built to be dropped
		span.SetAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path))
	}
	x := &exchange{w: w, r: r, ctx: ctx, id: requestID(r), start: time.Now(), depth: depth, span: span}
	x.setHeader(RequestIDHeader, x.id)
	g.serve(x, service)
	g.endSpan(x)
	g.metrics.observe(x)
	g.accessLog(x)
}

func (g *Gateway) endSpan(x *exchange) {
	if !x.span.IsRecording() { // unsampled: its attributes would be dropped
		x.span.End()
		return
	}
	attrs := []attribute.KeyValue{attribute.Int("http.response.status_code", x.status), attribute.String("wasmesh.request_id", x.id)}
	if x.route != nil {
		attrs = append(attrs, attribute.String("http.route", x.route.Name), attribute.String("wasmesh.service", x.service.Name))
	}
	if x.version != nil {
		attrs = append(attrs, attribute.String("wasmesh.version", x.version.Digest))
	}
	x.span.SetAttributes(attrs...)
	if x.status >= 500 && x.err != nil {
		x.span.SetStatus(codes.Error, x.err.Error())
	}
	x.span.End()
}

func (g *Gateway) serve(x *exchange, service *string) {
	st := g.state.Load()
	if st == nil {
		g.fail(x, http.StatusServiceUnavailable, errors.New("no config loaded yet"))
		return
	}
	r := x.r
	if clean := cleanPath(r.URL.Path); clean != r.URL.Path {
		r.URL.Path, r.URL.RawPath = clean, ""
	}
	if service != nil {
		svc, ok := st.cfg.Services[*service]
		if !ok {
			g.fail(x, http.StatusNotFound, fmt.Errorf("no service %q", *service))
			return
		}
		x.route, x.service = &config.Route{Name: "wasmesh://" + svc.Name, Service: svc.Name}, svc
	} else {
		route, svc, ok := st.table.Match(r)
		if !ok {
			g.fail(x, http.StatusNotFound, fmt.Errorf("no route for %s%s", r.Host, r.URL.Path))
			return
		}
		x.route, x.service = route, svc
	}
	svc := x.service
	// allow_peers governs mTLS peers; a wasmesh:// call from a guest of this
	// gateway is governed by the caller's outbound list instead.
	if peers := st.peers[svc.Name]; peers != nil && x.depth == 0 {
		id, ok := identity.PeerID(r.TLS)
		if !ok || !peers.Allows(id) {
			peer := "none (no client SVID)"
			if ok {
				peer = id.String()
			}
			g.log.Warn("peer not allowed", "service", svc.Name, "peer_id", peer, "request_id", x.id)
			g.fail(x, http.StatusForbidden, fmt.Errorf("peer %s may not call service %q", peer, svc.Name))
			return
		}
	}
	v, err := router.Select(svc, r)
	if err != nil {
		g.fail(x, http.StatusNotFound, err)
		return
	}
	x.version = v
	var stats *versionStats
	if x.depth == 0 {
		x.series = g.seriesFor(st, x.route, svc, v)
		stats, x.colour = x.series.stats, x.series.colour
		g.colourConn(r, svc, v, x.colour)
		defer func() { g.count(x.colour, x.bodyLen, x.bytes) }()
	} else {
		// An in-process call's route is made for it (no series kept); it
		// has no socket to colour or count, but its http_calls do.
		stats, x.colour = g.statsFor(svc.Name, v.Digest), st.colours[colourKey(svc.Name, v.Digest)]
	}
	x.setHeader(router.VersionHeader, v.Digest)
	stats.requests.Add(1)
	defer func() {
		if x.status >= 500 {
			stats.errors.Add(1)
		}
	}()

	// The body is read before a concurrency slot is taken, within the
	// service's timeout, so that slow uploads cannot hold the slots.
	body := getBuf()
	defer putBuf(body)
	if r.Body != nil && r.Body != http.NoBody { // net/http's for a request without one
		rc := http.NewResponseController(x.w)
		if x.depth == 0 {
			_ = rc.SetReadDeadline(time.Now().Add(svc.Limits.Timeout))
		}
		err = readBody(body, r, svc.Limits.MaxBody)
		if x.depth == 0 {
			_ = rc.SetReadDeadline(time.Time{}) // lifted once read: net/http would take it for a client gone
		}
		x.bodyLen = body.Len()
		if err != nil {
			g.fail(x, statusOf(err), err)
			return
		}
	}
	r.ContentLength = int64(body.Len()) // known now, even for a chunked body

	release, err := g.limiterFor(svc).acquire(x.ctx, svc.Limits.Timeout)
	if err != nil {
		g.metrics.rejections.WithLabelValues(svc.Name).Inc()
		x.w.Header().Set("Retry-After", "1")
		g.fail(x, statusOf(err), err)
		return
	}
	defer release()
	g.runGuest(x, st.modules[v.Digest], body)
}

// runGuest runs the version's module on the request and writes its response.
func (g *Gateway) runGuest(x *exchange, mod *host.Module, body *bytes.Buffer) {
	out, errOut := getBuf(), getBuf()
	defer putBuf(out)
	defer putBuf(errOut)
	svc, r := x.service, x.r
	pathInfo, script := r.URL.Path, ""
	if x.route.StripPrefix {
		pathInfo = x.route.Rewrite(r.URL.Path)
		script = strings.TrimSuffix(r.URL.Path, strings.TrimPrefix(pathInfo, "/"))
		script = strings.TrimSuffix(script, "/")
	}
	meta := wasi.Meta{PathInfo: pathInfo, ScriptName: script, Route: x.route.Name, Version: x.version.Digest, RequestID: x.id}
	if id, ok := identity.PeerID(r.TLS); ok {
		meta.PeerID = id.String()
	}
	eb := envPool.Get().(*wasi.EnvBuffer)
	defer envPool.Put(eb) // after the run: nothing keeps the environment past it
	env := eb.RequestEnv(r, meta)
	call := host.Call{
		Capabilities: wasi.Capabilities{Args: []string{svc.Name}, Env: withServiceEnv(svc.Env, env)},
		Stdin:        bytes.NewReader(body.Bytes()),
		Stdout:       out,
		Stderr:       &headWriter{buf: errOut, max: maxStderr},
		MaxStdout:    MaxResponse,
		MemoryLimit:  svc.Limits.Memory,
		Timeout:      svc.Limits.Timeout,
	}
	// The guest's span only when the request's is recorded: unsampled, it
	// would only be the parent of the (as unsampled) http_call spans.
	ctx, span := x.ctx, trace.Span(nil)
	if x.span.IsRecording() {
		ctx, span = g.tracer.Start(ctx, "wasmesh.guest")
	}
	x.guest = guest{g: g, x: x}
	ctx = context.WithValue(ctx, guestKey{}, &x.guest)
	res, err := g.engine.Run(ctx, mod, call)
	g.metrics.guestTimes(x, res)
	if span != nil {
		span.SetAttributes(
			attribute.Float64("wasmesh.guest.instantiate_ms", float64(res.Instantiate.Microseconds())/1000),
			attribute.Float64("wasmesh.guest.run_ms", float64(res.Run.Microseconds())/1000),
			attribute.Int("wasmesh.guest.memory_pages", int(res.MemoryPages)),
			attribute.Int("wasmesh.guest.exit_code", int(res.ExitCode)),
			attribute.Bool("wasmesh.guest.reused", res.Reused))
		if err != nil {
			span.SetAttributes(attribute.String("wasmesh.guest.stop_cause", err.Error()))
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	if errOut.Len() > 0 {
		g.log.Debug("guest stderr", "request_id", x.id, "service", svc.Name, "stderr", truncate(errOut.String(), 2048))
	}
	if err == nil && res.ExitCode != 0 && out.Len() == 0 {
		err = fmt.Errorf("guest exited with code %d and no response", res.ExitCode)
	}
	if err != nil {
		status := statusOf(err)
		if status == statusClientClosed && g.draining.Load() {
			status = http.StatusServiceUnavailable // stopped by the drain deadline, not by the client
		}
		g.fail(x, status, err)
		return
	}
	resp, err := wasi.ParseResponse(out.Bytes())
	if err != nil {
		g.fail(x, http.StatusBadGateway, err)
		return
	}
	h := x.w.Header()
	for k, vs := range resp.Header {
		if hopByHop[k] {
			continue
		}
		h[k] = vs
	}
	x.setHeader("Content-Length", strconv.Itoa(len(resp.Body)))
	x.status = resp.Status
	x.w.WriteHeader(resp.Status)
	n, _ := x.w.Write(resp.Body)
	x.bytes = n
}

// hopByHop headers describe one connection, not the response: a guest may not set them.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Transfer-Encoding": true, "Upgrade": true,
	"Te": true, "Trailer": true, "Proxy-Authenticate": true, "Content-Length": true,
	"X-Wasmesh-Version": true, "X-Request-Id": true,
}

// withServiceEnv puts the service's environment before the CGI variables,
// which win on a clash.
func withServiceEnv(svcEnv map[string]string, cgi []string) []string {
	if len(svcEnv) == 0 {
		return cgi
	}
	taken := make(map[string]bool, len(cgi))
	for _, kv := range cgi {
		k, _, _ := strings.Cut(kv, "=")
		taken[k] = true
	}
	env := make([]string, 0, len(svcEnv)+len(cgi))
	for k, v := range svcEnv {
		if !taken[k] {
			env = append(env, k+"="+v)
		}
	}
	return append(env, cgi...)
}

var errBodyTooLarge = errors.New("request body too large")

// statusClientClosed is nginx's 499: the client went away before the answer.
const statusClientClosed = 499

// readBody reads the whole body into buf, refusing more than max bytes.
func readBody(buf *bytes.Buffer, r *http.Request, max int64) error {
	if r.ContentLength > max {
		return fmt.Errorf("%w: %d bytes, limit is %d", errBodyTooLarge, r.ContentLength, max)
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, max+1))
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	if n > max {
		return fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, max)
	}
	return nil
}

// statusOf maps a failure to the status the client sees.
func statusOf(err error) int {
	var trap *host.TrapError
	switch {
	case errors.Is(err, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, host.ErrDeadline):
		return http.StatusGatewayTimeout
	case errors.Is(err, errOverloaded):
		return http.StatusServiceUnavailable
	case errors.Is(err, host.ErrCanceled), errors.Is(err, context.Canceled):
		return statusClientClosed
	case errors.As(err, &trap), errors.Is(err, host.ErrOutputLimit), errors.Is(err, host.ErrMemoryLimit):
		return http.StatusBadGateway
	}
	return http.StatusBadGateway
}

// fail answers with a short error naming the request id.
func (g *Gateway) fail(x *exchange, status int, err error) {
	x.status, x.err = status, err
	if x.version == nil && x.depth == 0 {
		g.uncolourConn(x.r) // not a version's traffic: drop the last request's colour
	}
	h := x.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	msg := http.StatusText(status)
	if status == statusClientClosed {
		msg = "Client Closed Request"
	}
	if status < 500 || status == http.StatusServiceUnavailable {
		msg += ": " + err.Error() // the client's own mistake, or overload: safe to say
	}
	body := fmt.Sprintf("wasmesh: %s\nrequest id: %s\n", msg, x.id)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(status)
	n, _ := io.WriteString(x.w, body)
	x.bytes = n
}

func (g *Gateway) accessLog(x *exchange) {
	level := slog.LevelInfo
	if x.status >= 500 {
		level = slog.LevelWarn
	}
	if !g.log.Enabled(x.ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", x.id),
		slog.String("method", x.r.Method),
		slog.String("host", x.r.Host),
		slog.String("path", x.r.URL.Path),
		slog.Int("status", x.status),
		slog.Int("bytes", x.bytes),
		slog.Duration("duration", time.Since(x.start)),
	}
	if x.route != nil {
		attrs = append(attrs, slog.String("route", x.route.Name), slog.String("service", x.service.Name))
	}
	if x.version != nil {
		attrs = append(attrs, slog.String("version", modules.Short(x.version.Digest)))
	}
	if sc := x.span.SpanContext(); sc.HasTraceID() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	if x.depth > 0 {
		attrs = append(attrs, slog.Int("hop", x.depth))
	}
	if id, ok := identity.PeerID(x.r.TLS); ok {
		attrs = append(attrs, slog.String("peer_id", id.String()))
	}
	if x.err != nil {
		attrs = append(attrs, slog.String("error", x.err.Error()))
	}
	g.log.LogAttrs(x.ctx, level, "request", attrs...)
}

// requestID propagates a sane incoming X-Request-Id, or makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get(RequestIDHeader); id != "" && len(id) <= 128 && printable(id) {
		return id
	}
	return strconv.FormatUint(rand.Uint64(), 16)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
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

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// headWriter keeps the first max bytes written to it and drops the rest.
type headWriter struct {
	buf *bytes.Buffer
	max int
}

func (h *headWriter) Write(p []byte) (int, error) {
	if room := h.max - h.buf.Len(); room > 0 {
		h.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
