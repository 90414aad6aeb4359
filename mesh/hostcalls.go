package mesh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/wasi"
)

// MaxHops bounds chains of wasmesh:// calls (a service calling itself, or
// two calling each other, would otherwise recurse until their deadlines).
const MaxHops = 8

// guestKey finds the guest a host function serves in its context.
type guestKey struct{}

// guest is the request a running guest serves.
type guest struct {
	g *Gateway
	x *exchange
}

func guestOf(ctx context.Context) *guest {
	gc, _ := ctx.Value(guestKey{}).(*guest)
	return gc
}

// imports implements host.Imports for the gateway's guests.
type imports struct{ g *Gateway }

func (imp imports) TraceContext(ctx context.Context) (string, string) {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

func (imp imports) Log(ctx context.Context, level int, msg string) {
	attrs := []slog.Attr{slog.Bool("guest", true)}
	if gc := guestOf(ctx); gc != nil {
		x := gc.x
		attrs = append(attrs, slog.String("service", x.service.Name), slog.String("version", modules.Short(x.version.Digest)),
			slog.String("request_id", x.id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	imp.g.log.LogAttrs(ctx, slog.Level((level-1)*4), msg, attrs...)
}

// HTTPCall sends a guest's outbound request: to another service of this
// gateway in-process, or over the network, in a child span whose context is
// injected into the request whatever headers the guest set.
func (imp imports) HTTPCall(ctx context.Context, raw []byte) ([]byte, int) {
	g, gc := imp.g, guestOf(ctx)
	if gc == nil {
		return nil, host.CodeDenied
	}
	req, err := wasi.ParseOutboundRequest(raw)
	if err != nil {
		g.log.Warn("http_call: bad request", "service", gc.x.service.Name, "request_id", gc.x.id, "error", err)
		return nil, host.CodeInvalid
	}
	u, err := url.Parse(req.URL)
	if err != nil || u.Host == "" || (u.Scheme != "wasmesh" && u.Scheme != "http" && u.Scheme != "https") {
		g.log.Warn("http_call: bad URL", "service", gc.x.service.Name, "request_id", gc.x.id, "url", req.URL)
		return nil, host.CodeInvalid
	}
	target := u.Scheme + "://" + u.Host
	entry, allowed := gc.x.service.AllowsOutbound(u)
	if !allowed {
		g.log.Warn("http_call refused: target not in the service's outbound list",
			"service", gc.x.service.Name, "request_id", gc.x.id, "url", req.URL)
		g.metrics.outbound.WithLabelValues(gc.x.service.Name, target, "denied").Inc()
		return nil, host.CodeDenied
	}
	ctx, span := g.tracer.Start(ctx, "wasmesh.http_call", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("url.full", req.URL),
			attribute.String("wasmesh.target", target)))
	defer span.End()
	header := req.Header.Clone()
	for _, h := range []string{"Traceparent", "Tracestate", "Baggage"} {
		header.Del(h)
	}
	g.prop.Inject(ctx, propagation.HeaderCarrier(header))

	var status int
	var resp []byte
	code := host.CodeOK
	if u.Scheme == "wasmesh" {
		status, resp, code = g.callService(ctx, gc, u, req, header)
	} else {
		status, resp, code = g.callExternal(ctx, gc, u, req, header, entry)
	}
	result := codeName(code)
	if code == host.CodeOK {
		result = "ok"
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	} else {
		span.SetStatus(codes.Error, result)
	}
	g.metrics.outbound.WithLabelValues(gc.x.service.Name, target, result).Inc()
	return resp, code
}

// callService dispatches a wasmesh://SERVICE/path call through the same
// version selection, limits and guest run as a request from outside.
func (g *Gateway) callService(ctx context.Context, gc *guest, u *url.URL, req *wasi.OutboundRequest, header http.Header) (int, []byte, int) {
	if gc.x.depth+1 > MaxHops {
		g.log.Warn("http_call refused: too many wasmesh:// hops", "max", MaxHops, "request_id", gc.x.id)
		return 0, nil, host.CodeUnavailable
	}
	st := g.state.Load()
	if st == nil || st.cfg.Services[u.Host] == nil {
		return 0, nil, host.CodeUnavailable
	}
	// No client connection: the callee must not colour the caller's.
	r, err := http.NewRequestWithContext(withConn(ctx, nil), req.Method, "http://"+u.Host+u.RequestURI(), bytes.NewReader(req.Body))
	if err != nil {
		return 0, nil, host.CodeInvalid
	}
	r.Header, r.Host, r.RemoteAddr = header, u.Host, "wasmesh"
	rec := &recorder{header: http.Header{}}
	service := u.Host
	g.handle(rec, r, &service, gc.x.depth+1)
	if ctx.Err() != nil {
		return 0, nil, host.CodeTimeout
	}
	if rec.status == 0 { // the handler always answers; never hand a guest status 0
		rec.status = http.StatusBadGateway
	}
	return rec.status, wasi.EncodeOutboundResponse(rec.status, rec.header, rec.body.Bytes()), host.CodeOK
}

// callExternal sends a call to an http(s) URL.
func (g *Gateway) callExternal(ctx context.Context, gc *guest, u *url.URL, req *wasi.OutboundRequest, header http.Header, entry config.Outbound) (int, []byte, int) {
	client, err := g.clientFor(gc.x.colour, gc.x.version.DSCP, entry.ExpectID)
	if err != nil {
		g.log.Warn("http_call: no client for the target", "url", u.String(), "error", err, "request_id", gc.x.id)
		return 0, nil, host.CodeUnavailable
	}
	r, err := http.NewRequestWithContext(ctx, req.Method, u.String(), bytes.NewReader(req.Body))
	if err != nil {
		return 0, nil, host.CodeInvalid
	}
	r.Header = header
	resp, err := client.Do(r)
	if err != nil {
		g.log.Warn("http_call failed", "url", u.String(), "error", err, "request_id", gc.x.id)
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return 0, nil, host.CodeTimeout
		}
		return 0, nil, host.CodeUnavailable
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	switch {
	case ctx.Err() != nil:
		return 0, nil, host.CodeTimeout
	case err != nil:
		return 0, nil, host.CodeUnavailable
	case len(body) > MaxResponse:
		return 0, nil, host.CodeTooSmall
	}
	g.count(gc.x.colour, len(body), len(req.Body))
	return resp.StatusCode, wasi.EncodeOutboundResponse(resp.StatusCode, resp.Header, body), host.CodeOK
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
	case host.CodeUnavailable:
		return "unavailable"
	case host.CodeTimeout:
		return "timeout"
	}
	return "internal"
}

// recorder is the ResponseWriter of an in-process call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
