package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/http/httpguts"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/wasi"
)

// MaxTreeCalls bounds the wasmesh:// calls made on behalf of one client's
// request, at every depth together: a guest that calls itself ten times a
// hop, eight hops deep, would make a hundred million, each a request of
// its own with its access-log line. (Links, typed calls that are no
// requests, are bounded by their depth and the caller's timeout.)
const MaxTreeCalls = 1000

// treeCall counts one more wasmesh:// call under caller's client request,
// and reports false past MaxTreeCalls.
func treeCall(caller *Request) bool {
	root := caller
	for root.Caller != nil {
		root = root.Caller
	}
	return root.calls.Add(1) <= MaxTreeCalls
}

// MaxHops bounds chains of wasmesh:// calls (a service calling itself, or
// two calling each other, would otherwise recurse until their deadlines).
const MaxHops = 8

// imports are the wasmesh host functions (host.Imports) of the plane's
// guests. Each finds the Request its guest serves in its context.
type imports struct{ p *Plane }

func (imports) TraceContext(ctx context.Context) (string, string, string) {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	bag := ""
	if req := requestFrom(ctx); req != nil {
		bag = req.bag
	}
	return c["traceparent"], c["tracestate"], bag
}

// maxGuestLog is how many bytes of a request's guest log lines are
// written; past it the rest of the request's are dropped, the first drop
// said.
const maxGuestLog = 1 << 20

func (imp imports) Log(ctx context.Context, level int, msg string) {
	attrs := []slog.Attr{slog.Bool("guest", true)}
	req := requestFrom(ctx)
	if req != nil {
		if n := req.guestLog.Add(int64(len(msg))); n > maxGuestLog {
			if n-int64(len(msg)) <= maxGuestLog {
				imp.p.log.Warn("the guest's log for this request is over 1 MiB: the rest of its lines are dropped",
					"service", req.Service.Name, "request_id", req.ID)
			}
			return
		}
	}
	if req != nil {
		attrs = append(attrs, slog.String("service", req.Service.Name), slog.String("version", modules.Short(req.Version.Digest)),
			slog.String("request_id", req.ID))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	imp.p.log.LogAttrs(ctx, slog.Level((level-1)*4), msg, attrs...)
}

var clientSpan = trace.WithSpanKind(trace.SpanKindClient)

// deniedTarget is the target label of the calls the allow-list refuses,
// whose targets the guest chose.
const deniedTarget = "(not allowed)"

// notRecorded is a span that records nothing and carries no context.
var notRecorded = trace.SpanFromContext(context.Background())

// childSpan starts a span named name under ctx's, unless ctx's span is not
// sampled: under a parent-based sampler (the gateway's; Options.
// TracerProvider says so) its child would not be either, and a span that is
// not recorded would only carry the trace on, which ctx does already (the
// only difference is the parent-id a downstream hop is told, a span no one
// recorded either way). This spares unsampled requests two allocations and
// an id per hop.
func (p *Plane) childSpan(ctx context.Context, name string, kind trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return ctx, notRecorded
	}
	return p.tracer.Start(ctx, name, kind)
}

// admitCall says whether the outbound request out (malformed: its
// parse's error, if it failed) may go, as HTTPCall's first step and a
// component's handle (componentAdmit) see it: a request to serve it for,
// a well-formed request and URL, the service's outbound list. A refusal
// is logged (the list's, once a request) and counted. On CodeOK it
// returns the caller, the URL (its host lowercased) and the list's entry.
func (p *Plane) admitCall(ctx context.Context, out *wasi.OutboundRequest, malformed error) (*Request, *url.URL, config.Outbound, int) {
	caller := requestFrom(ctx)
	if caller == nil {
		return nil, nil, config.Outbound{}, host.CodeDenied
	}
	svc := caller.Service.Name
	if malformed == nil {
		malformed = checkOutboundHeader(out.Header)
	}
	if malformed != nil {
		p.log.Warn("http_call: bad request", "service", svc, "request_id", caller.ID, "error", malformed)
		return nil, nil, config.Outbound{}, host.CodeInvalid
	}
	u, err := url.Parse(out.URL)
	if err != nil || u.Host == "" || (u.Scheme != "wasmesh" && u.Scheme != "http" && u.Scheme != "https") {
		p.log.Warn("http_call: bad URL", "service", svc, "request_id", caller.ID, "url", out.URL)
		return nil, nil, config.Outbound{}, host.CodeInvalid
	}
	// A host is named in any case (DNS, and the allow-list, ignore it):
	// lowercased, one host is one service, one series and one pool.
	u.Host = strings.ToLower(u.Host)
	entry, allowed := caller.Service.AllowsOutbound(u)
	if !allowed {
		// The guest chooses the URL: its calls refused are logged once a
		// request (the first says which), and counted under one target,
		// so that a guest cannot grow the log or the metrics without bound.
		if caller.denied.Add(1) == 1 {
			p.log.Warn("http_call refused: target not in the service's outbound list (the request's further refusals are counted, not logged)",
				"service", svc, "request_id", caller.ID, "url", redactedURL(u))
		}
		p.metrics.Outbound.WithLabelValues(svc, deniedTarget, "denied").Inc()
		return nil, nil, config.Outbound{}, host.CodeDenied
	}
	return caller, u, entry, host.CodeOK
}

// HTTPCall sends a guest's outbound request — to another service of this
// gateway in-process, or over the network — if the service's outbound list
// allows it, in a client span whose context is injected into the request
// whatever trace headers the guest set.
func (imp imports) HTTPCall(ctx context.Context, out *wasi.OutboundRequest, malformed error) (*wasi.OutboundResponse, int) {
	p := imp.p
	caller, u, entry, code := p.admitCall(ctx, out, malformed)
	if code != host.CodeOK {
		return nil, code
	}
	svc, target := caller.Service.Name, u.Scheme+"://"+u.Host
	ctx, span := p.childSpan(ctx, "wasmesh.http_call", clientSpan)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("http.request.method", out.Method), attribute.String("url.full", redactedURL(u)),
			attribute.String("wasmesh.target", target))
	}
	header := out.Header.Clone()
	injectTrace(ctx, caller, header)

	var resp *wasi.OutboundResponse
	if u.Scheme == "wasmesh" {
		if out.HeadTimeout > 0 { // an in-process callee's answer is whole when it comes: its run is bounded
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeoutCause(ctx, out.HeadTimeout, errHeadTimeout)
			defer cancel()
		}
		if resp, code = p.callService(ctx, caller, u, out, header); code == host.CodeTimeout && context.Cause(ctx) == errHeadTimeout {
			code = host.CodeTimeoutHead
		}
	} else {
		resp, code = p.callExternal(ctx, caller, u, out, header, entry)
	}
	result := codeName(code)
	if code == host.CodeTimeout && errors.Is(ctx.Err(), context.Canceled) {
		// Not the call's time up: the request it was made for ended (its
		// client went away), which is no fault of the target's.
		result = "canceled"
	}
	if code == host.CodeOK {
		span.SetAttributes(attribute.Int("http.response.status_code", resp.Status))
		if resp.Status >= 400 { // a client span's error (OpenTelemetry's HTTP conventions)
			span.SetAttributes(attribute.String("error.type", strconv.Itoa(resp.Status)))
			span.SetStatus(codes.Error, http.StatusText(resp.Status))
		}
	} else {
		span.SetStatus(codes.Error, result)
	}
	p.metrics.Outbound.WithLabelValues(svc, target, result).Inc()
	return resp, code
}

// errHeadTimeout cuts an http_call whose response's head did not come
// within its OutboundRequest.HeadTimeout.
var errHeadTimeout = errors.New("no response head within the call's first-byte timeout")

// checkOutboundHeader refuses a guest's header field that no request may
// carry (a name that is no token, a value with CR, LF or NUL): the
// guest's malformed argument, not a target that could not be reached.
func checkOutboundHeader(h http.Header) error {
	for k, vs := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("header field name %q is not a token", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("header field %s: its value has a control character (CR, LF, NUL)", k)
			}
		}
	}
	return nil
}

// callService serves a wasmesh://SERVICE/path call in-process: a Request
// for the named service, made here, goes down the same path as a client's
// (version selection, limits, the guest's run, metrics, access log), in a
// server span under the call's client span.
func (p *Plane) callService(ctx context.Context, caller *Request, u *url.URL, out *wasi.OutboundRequest, header http.Header) (*wasi.OutboundResponse, int) {
	if caller.Hop+1 > MaxHops {
		p.log.Warn("http_call refused: too many wasmesh:// hops", "max", MaxHops, "request_id", caller.ID)
		return nil, host.CodeUnavailableLoop
	}
	if !treeCall(caller) {
		if caller.denied.Add(1) == 1 {
			p.log.Warn("http_call refused: the client's request has made too many in-process calls (the request's further refusals are counted, not logged)",
				"max", MaxTreeCalls, "request_id", caller.ID)
		}
		return nil, host.CodeUnavailable
	}
	if caller.snap.Config.Services[u.Host] == nil {
		return nil, host.CodeUnavailable
	}
	req := &Request{HTTP: callMessage(u, out, header), Start: clock.Now(), Caller: caller, Hop: caller.Hop + 1,
		service: u.Host, snap: caller.snap, bag: caller.bag}
	req.ID = requestID(req.HTTP)
	w := &callResponse{header: http.Header{}}
	// The callee continues the call's span as a server continues a
	// traceparent it received: a remote parent, as samplers see it.
	p.serve(trace.ContextWithRemoteSpanContext(ctx, trace.SpanContextFromContext(ctx)), req, w)
	if ctx.Err() != nil {
		return nil, host.CodeTimeout
	}
	if w.over {
		return nil, host.CodeTooSmall // as for a URL's answer past MaxResponse
	}
	if w.status != 0 && req.Status != w.status {
		// The callee failed after its head (a trap, its deadline): the
		// answer is cut, as a URL's whose connection broke mid-body, not
		// a complete one.
		p.log.Warn("http_call failed", "url", u.String(), "error", "the answer was cut after its head", "status", w.status,
			"body_bytes", w.body.Len(), "request_id", caller.ID)
		return nil, host.CodeUnavailable
	}
	if w.status == 0 { // serve always answers; never hand a guest status 0
		w.status = http.StatusBadGateway
	}
	return &wasi.OutboundResponse{Status: w.status, Header: w.header, Body: w.body.Bytes()}, host.CodeOK
}

// callMessage is the HTTP message of an in-process call to u: what a client
// would have sent for it, without a connection (RemoteAddr "wasmesh").
func callMessage(u *url.URL, out *wasi.OutboundRequest, header http.Header) *http.Request {
	path := u.Path
	if path == "" {
		path = "/"
	}
	r := &http.Request{
		Method: out.Method, URL: &url.URL{Scheme: "http", Host: u.Host, Path: path, RawPath: u.RawPath, RawQuery: u.RawQuery},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: header, Host: u.Host, RemoteAddr: "wasmesh",
		Body: http.NoBody, ContentLength: int64(len(out.Body)),
	}
	if len(out.Body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(out.Body))
	}
	return r
}

// callResponse is where an in-process call's answer is written.
type callResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
	over   bool // the callee wrote more than MaxResponse
}

func (r *callResponse) Header() http.Header { return r.header }
func (r *callResponse) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

// Write keeps at most MaxResponse bytes, as a call's answer from a URL is
// read: past it the call's answer is too large for the caller, and the
// callee (a module's output is capped already; an upstream's or a
// component's stream is not) is told so, as by a client gone.
func (r *callResponse) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.body.Len()+len(b) > MaxResponse {
		r.over = true
		return 0, errCallAnswerTooLarge
	}
	return r.body.Write(b)
}

var errCallAnswerTooLarge = errors.New("the answer is over the 32 MiB (MaxResponse) an http_call takes")

// redactedURL is u as spans and logs may say it: a user and password in
// it replaced by REDACTED (OpenTelemetry's url.full).
func redactedURL(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	r := *u
	r.User = url.UserPassword("REDACTED", "REDACTED")
	return r.String()
}

// callExternal sends a call to an http(s) URL, on a connection coloured for
// the calling version and checked against entry's expected SPIFFE ID.
func (p *Plane) callExternal(ctx context.Context, caller *Request, u *url.URL, out *wasi.OutboundRequest, header http.Header, entry config.Outbound) (*wasi.OutboundResponse, int) {
	client, err := p.clientFor(caller.colour, caller.Version.DSCP, entry.ExpectID)
	if err != nil {
		p.log.Warn("http_call: no client for the target", "url", redactedURL(u), "error", err, "request_id", caller.ID)
		return nil, host.CodeUnavailable
	}
	r, err := http.NewRequestWithContext(ctx, out.Method, u.String(), bytes.NewReader(out.Body))
	if err != nil {
		return nil, host.CodeInvalid
	}
	r.Header = header
	var headTimer *time.Timer
	if t := out.HeadTimeout; t > 0 { // a component's first-byte-timeout: the head by then, the body after
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		r = r.WithContext(ctx)
		headTimer = time.AfterFunc(t, func() { cancel(errHeadTimeout) })
	}
	resp, err := client.Do(r)
	if headTimer != nil && !headTimer.Stop() && err == nil {
		resp.Body.Close()
		resp, err = nil, errHeadTimeout // the head came as the timeout did: too late
	}
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(ctx.Err(), context.Canceled) && context.Cause(ctx) != errHeadTimeout {
			level = slog.LevelDebug // the request's client went away: its call was cut, nothing failed
		}
		p.log.Log(ctx, level, "http_call failed", "url", redactedURL(u), "error", err, "request_id", caller.ID)
		if errors.Is(err, errHeadTimeout) || context.Cause(ctx) == errHeadTimeout {
			return nil, host.CodeTimeoutHead
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return nil, host.CodeTimeout
		}
		if dns := (*net.DNSError)(nil); errors.As(err, &dns) && !dns.IsTimeout {
			return nil, host.CodeUnavailableDNS
		}
		return nil, host.CodeUnavailable
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	switch {
	case ctx.Err() != nil:
		return nil, host.CodeTimeout
	case err != nil:
		return nil, host.CodeUnavailable
	case len(body) > MaxResponse:
		return nil, host.CodeTooSmall
	}
	p.count(caller.colour, len(body), len(out.Body))
	return &wasi.OutboundResponse{Status: resp.StatusCode, Header: resp.Header, Body: body}, host.CodeOK
}

func codeName(code int) string {
	switch code {
	case host.CodeOK:
		return "ok"
	case host.CodeTooSmall:
		return "too_small"
	case host.CodeDenied:
		return "denied"
	case host.CodeInvalid:
		return "invalid"
	case host.CodeUnavailable, host.CodeUnavailableDNS, host.CodeUnavailableLoop:
		return "unavailable"
	case host.CodeTimeout, host.CodeTimeoutHead:
		return "timeout"
	}
	return "internal"
}
