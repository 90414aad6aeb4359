package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/internal/http1"
	"github.com/wasmesh/wasmesh/wasi"
)

const (
	// MaxResponse is the most a guest may write to stdout for one response,
	// and the largest response body an http_call hands back to a guest.
	MaxResponse = 32 << 20
	// maxStderr is how much of a guest's stderr is kept for the log; the
	// rest is dropped, without failing the request.
	maxStderr = 16 << 10
)

var envPool = sync.Pool{New: func() any { return new(wasi.EnvBuffer) }}

// requestKey finds, in a guest's context, the Request it serves.
type requestKey struct{}

// requestFrom returns the Request whose guest runs with ctx, nil outside a
// guest's run.
func requestFrom(ctx context.Context) *Request {
	req, _ := ctx.Value(requestKey{}).(*Request)
	return req
}

// runGuest runs the version's module on the request through the CGI codec
// (docs/abi.md) and writes its response.
func (p *Plane) runGuest(req *Request, w http.ResponseWriter, mod *host.Module, body *bytes.Buffer) {
	out, errOut := getBuf(), getBuf()
	defer putBuf(out)
	defer putBuf(errOut)
	svc, r := req.Service, req.HTTP
	pathInfo, script := r.URL.Path, ""
	if req.Route.StripPrefix {
		pathInfo = req.Route.Rewrite(r.URL.Path)
		script = strings.TrimSuffix(r.URL.Path, strings.TrimPrefix(pathInfo, "/"))
		script = strings.TrimSuffix(script, "/")
	}
	meta := wasi.Meta{PathInfo: pathInfo, ScriptName: script, Route: req.Route.Name, Version: req.Version.Digest,
		RequestID: req.ID, PeerID: req.PeerID}
	if req.Lane != nil {
		meta.Lane = req.Lane.Name
	}
	// The guest's span only when the request's is recorded: unsampled, it
	// would only be the parent of the (as unsampled) http_call spans.
	ctx, span := req.ctx, trace.Span(nil)
	if req.span.IsRecording() {
		ctx, span = p.tracer.Start(ctx, "wasmesh.guest")
	}
	// The guest's HTTP_TRACEPARENT names the span it runs in, as a
	// component's traceparent field does, not what the client sent; when
	// the client sent none and nothing is recorded, there is none (one
	// more variable is work for every guest's start-up).
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && (len(r.Header["Traceparent"]) > 0 || span != nil) {
		meta.Trace = wasi.TraceContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags()), State: sc.TraceState().String()}
	}
	eb := envPool.Get().(*wasi.EnvBuffer)
	defer envPool.Put(eb) // after the run: nothing keeps the environment past it
	env := eb.RequestEnv(r, meta)
	g := &req.guest
	g.args[0] = svc.Name
	g.stdin.Reset(body.Bytes())
	g.stderr = headWriter{buf: errOut, max: maxStderr}
	call := host.Call{
		Capabilities: wasi.Capabilities{Args: g.args[:], Env: withServiceEnv(svc.Env, env)},
		Stdin:        &g.stdin,
		Stdout:       out,
		Stderr:       &g.stderr,
		MaxStdout:    MaxResponse,
		MemoryLimit:  req.Limits.Memory,
		Timeout:      req.Limits.Timeout,
	}
	g.ctx = guestContext{Context: ctx, req: req}
	res, err := p.engine.Run(&g.ctx, mod, call)
	req.series.instTime.Observe(res.Instantiate.Seconds())
	if res.Run > 0 {
		req.series.runTime.Observe(res.Run.Seconds())
	}
	if span != nil {
		endGuestSpan(span, req.spanAttrs(), res, err)
	}
	if errOut.Len() > 0 {
		p.log.Debug("guest stderr", "request_id", req.ID, "service", svc.Name, "stderr", truncate(errOut.String(), 2048))
	}
	if err == nil && res.ExitCode != 0 && out.Len() == 0 {
		err = fmt.Errorf("guest exited with code %d and no response", res.ExitCode)
	}
	if err != nil {
		p.failGuest(req, w, trapDetail(err, res.MemoryPages, svc.Limits.Memory, errOut.Bytes()))
		return
	}
	// The guest's fields straight into the response's header (but
	// hop-by-hop ones), which is left alone when its output is malformed.
	status, respBody, err := wasi.ParseResponseInto(out.Bytes(), w.Header(), hopByHop)
	if err != nil {
		p.fail(req, w, http.StatusBadGateway, err)
		return
	}
	req.answerBody(w, status, respBody)
}

// trapDetail is err, a trap, with what tells its likely cause: the
// guest's memory near its limit (an allocation that failed aborts as an
// unreachable, as an explicit panic does), and the last line the guest
// wrote to stderr (a panic's message). Other errors are left as they are.
func trapDetail(err error, pages uint32, limit int64, stderr []byte) error {
	var trap *host.TrapError
	if !errors.As(err, &trap) {
		return err
	}
	var detail []string
	if limit > 0 && int64(pages)*65536 >= limit*9/10 {
		detail = append(detail, fmt.Sprintf("its memory at %d of the %d pages of its limit: out of memory?", pages, limit/65536))
	}
	if line := lastLine(stderr); line != "" {
		detail = append(detail, "stderr: "+truncate(line, 200))
	}
	if len(detail) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(detail, "; "))
}

// lastLine is the last line of b that is not blank, trimmed.
func lastLine(b []byte) string {
	b = bytes.TrimRight(b, " \t\r\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return string(bytes.TrimSpace(b))
}

// failGuest answers for a guest's run that failed: 504 at the deadline, 499
// for a client gone (503 when the drain's deadline stopped it), 502 else.
func (p *Plane) failGuest(req *Request, w http.ResponseWriter, err error) {
	status := statusOf(err)
	if status == statusClientClosed && drainStopped(req.HTTP.Context()) {
		// Stopped by the drain deadline: neither the client's fault nor
		// the version's.
		status, req.stopped = http.StatusServiceUnavailable, true
	}
	p.fail(req, w, status, err)
}

// noSniff keeps the servers from guessing a Content-Type for an answer
// that has none (a guest's, an upstream's): net/http's convention, which
// http1 follows, is a nil value. A guess would make an echo of a
// client's "<html><script>" text/html; the answer goes as it was made.
func noSniff(h http.Header) {
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
}

// answer writes a guest's response: its header but for hop-by-hop fields,
// the length, the status and the body.
func (req *Request) answer(w http.ResponseWriter, status int, header http.Header, body []byte) {
	h := w.Header()
	for k, vs := range header {
		if !hopByHop[k] {
			h[k] = vs
		}
	}
	length := ""
	if len(body) == 0 {
		length = headLength(req.HTTP, header)
	}
	req.answerSized(w, status, body, length)
}

// headLength is the Content-Length a guest's answer to a HEAD request
// declares (one valid length), which its empty body does not say; "" for
// none, or another method.
func headLength(r *http.Request, header http.Header) string {
	cl := header["Content-Length"]
	if r.Method != http.MethodHead || len(cl) != 1 {
		return ""
	}
	if n, err := strconv.ParseUint(cl[0], 10, 63); err != nil || strconv.FormatUint(n, 10) != cl[0] {
		return ""
	}
	return cl[0]
}

// answerBody is answer for a response whose header is in w's already.
// The version's part ends once the answer is ready: the client takes it
// within the service's timeout (one that does not is a slow_reader), and
// one gone as it does is logged with the status it was sent, a
// client_abort; either way the answer is cut.
func (req *Request) answerBody(w http.ResponseWriter, status int, body []byte) {
	req.answerSized(w, status, body, "")
}

// answerSized is answerBody with the Content-Length a HEAD's answer
// declares, when not "" (the length a GET's body would have).
func (req *Request) answerSized(w http.ResponseWriter, status int, body []byte, headLength string) {
	noSniff(w.Header())
	if headLength != "" {
		req.setHeader(w.Header(), "Content-Length", headLength)
	} else {
		req.setHeader(w.Header(), "Content-Length", strconv.Itoa(len(body)))
	}
	req.Status = status
	ready := clock.Now()
	req.answered, req.readyAfter = true, ready.Sub(req.Start)
	w.WriteHeader(status)
	if !http1.BodyAllowed(status) {
		return // no body, whatever the guest wrote (a write would fail)
	}
	if (len(body) > unblockedWrite || req.HTTP.ProtoMajor == 2 && len(body) > h2Buffered) && req.Limits.Timeout > 0 {
		rc := http.NewResponseController(w)
		if rc.SetWriteDeadline(ready.Add(req.Limits.Timeout)) == nil {
			defer liftWriteDeadline(rc, req.HTTP.ProtoMajor == 2)
			// What the connection still buffers goes under the deadline
			// too, not after it.
			defer func() {
				if err := rc.Flush(); err != nil && req.ClientFault == "" {
					req.ClientFault, req.abort = writeFault(err), true
				}
			}()
		}
	}
	n, err := w.Write(body)
	req.Bytes = n
	if err != nil {
		req.ClientFault, req.abort = writeFault(err), true
	}
}

// unblockedWrite is the most an answer may hold that the kernel's socket
// buffers take whether or not the client reads: a longer one is written
// under a deadline. Over HTTP/2 a stream's flow control may take nothing:
// past what net/http buffers for the stream (h2Buffered), a write may wait
// on the client, and is made under the deadline too. (A client that takes
// none of a shorter answer is cut by http.send_timeout.)
const (
	unblockedWrite = 32 << 10
	h2Buffered     = 4 << 10
)

// NoWriteDeadline is how far away an HTTP/2 stream's write deadline is
// when none applies: the gateway's http.Server gives it as WriteTimeout,
// so that every stream has its deadline's timer from its start, and a
// deadline lifted is moved there (liftWriteDeadline), never cleared. A
// deadline set once the stream has closed then does nothing, where a
// cleared one would arm a timer that resets the closed stream later.
const NoWriteDeadline = 100 * 365 * 24 * time.Hour

// liftWriteDeadline lifts the write deadline set through rc on an answer
// over HTTP/2 (h2) or HTTP/1.
func liftWriteDeadline(rc *http.ResponseController, h2 bool) {
	var t time.Time
	if h2 {
		t = time.Now().Add(NoWriteDeadline)
	}
	_ = rc.SetWriteDeadline(t)
}

// writeFault is the client's fault that a failed write of its answer was:
// not taking it within the deadline, or going away.
func writeFault(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return faultSlowReader
	}
	return faultClientAbort
}

// endGuestSpan ends the guest's span with what came of its run; buf is
// room for its attributes.
func endGuestSpan(span trace.Span, buf []attribute.KeyValue, res host.Result, err error) {
	span.SetAttributes(append(buf,
		attribute.Float64("wasmesh.guest.instantiate_ms", float64(res.Instantiate.Microseconds())/1000),
		attribute.Float64("wasmesh.guest.run_ms", float64(res.Run.Microseconds())/1000),
		attribute.Int("wasmesh.guest.memory_pages", int(res.MemoryPages)),
		attribute.Int("wasmesh.guest.exit_code", int(res.ExitCode)),
		attribute.Bool("wasmesh.guest.reused", res.Reused))...)
	if err != nil {
		span.SetAttributes(attribute.String("wasmesh.guest.stop_cause", err.Error()))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// hopByHop are the response fields a guest may not set: those that
// describe one connection (hopByHopFields), the length (the gateway's)
// and the gateway's own.
var hopByHop = func() map[string]bool {
	m := map[string]bool{"Content-Length": true, "X-Wasmesh-Version": true, "X-Request-Id": true}
	for _, k := range hopByHopFields {
		m[k] = true
	}
	return m
}()

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

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// headWriter keeps the first max bytes written to it and drops the rest.
// lazyHead keeps the first maxStderr bytes written to it, in a pooled
// buffer taken at the first write (most guests write nothing).
type lazyHead struct{ buf *bytes.Buffer }

func (h *lazyHead) Write(p []byte) (int, error) {
	if h.buf == nil {
		h.buf = getBuf()
	}
	if room := maxStderr - h.buf.Len(); room > 0 {
		h.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// bytes is what was kept (nil for nothing written).
func (h *lazyHead) bytes() []byte {
	if h.buf == nil {
		return nil
	}
	return h.buf.Bytes()
}

// release puts the buffer back.
func (h *lazyHead) release() {
	if h.buf != nil {
		putBuf(h.buf)
		h.buf = nil
	}
}

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
