package dataplane

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/router"
	"github.com/wasmesh/wasmesh/wasi"
)

// PeerIDHeader carries, to a component, the SPIFFE ID of the mTLS client
// that sent the request; the gateway removes any the client sent itself.
const PeerIDHeader = "X-Spiffe-Peer-Id"

// runComponent serves the request with a wasi:http/proxy component: its
// incoming-handler gets the request — the path after strip_prefix, the
// client's headers with the gateway's own (version, request id, peer ID,
// and a traceparent naming the guest's span) — and its response is
// written.
func (p *Plane) runComponent(req *Request, w http.ResponseWriter, mod *host.Module, body *bytes.Buffer) {
	r := req.HTTP
	path := r.URL.EscapedPath() // as sent: %2F stays a byte of a segment, not a separator
	if req.Route.StripPrefix {
		path = req.Route.Rewrite(path)
	}
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	header := r.Header.Clone()
	header.Del(PeerIDHeader)
	if req.PeerID != "" {
		header.Set(PeerIDHeader, req.PeerID)
	}
	header.Set(router.VersionHeader, req.Version.Digest)
	header.Set(RequestIDHeader, req.ID)
	ctx, span := req.ctx, trace.Span(nil)
	if req.span.IsRecording() {
		ctx, span = p.tracer.Start(ctx, "wasmesh.guest")
	}
	for _, h := range []string{"Traceparent", "Tracestate"} {
		header.Del(h)
	}
	p.prop.Inject(ctx, propagation.HeaderCarrier(header))
	start := time.Now()
	resp, err := p.engine.HandleHTTP(context.WithValue(ctx, requestKey{}, req), mod, &host.HTTPRequest{
		Method: r.Method, PathWithQuery: path, Scheme: scheme, Authority: r.Host, Header: header,
		Body: bytes.NewReader(body.Bytes()), Trailer: r.Trailer, Outbound: p.componentOutbound,
		Args: []string{req.Service.Name}, Env: req.snap.componentEnv(req.Service),
		Respond: func(status int, header http.Header) io.Writer { return req.stream(w, status, header) },
	}, req.Limits.Timeout, req.Limits.Memory)
	req.series.runTime.Observe(time.Since(start).Seconds())
	if span != nil {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	switch {
	case req.Status != 0: // streamed: the status is the client's already
		if err == nil && !resp.Finished {
			err = errUnfinished
		}
		if err == nil {
			for k, vs := range resp.Trailer {
				w.Header()[http.TrailerPrefix+k] = vs // sent after the body
			}
		}
		if err != nil {
			req.Err, req.abort = err, true // for the log and the span; the response is cut short
		}
	case err != nil:
		p.failGuest(req, w, err)
	default:
		req.answer(w, resp.Status, resp.Header, resp.Body)
	}
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

// stream sends a streamed response's status and header (but hop-by-hop
// fields) and returns where its body goes: to the client, flushed at each
// write, counted.
func (req *Request) stream(w http.ResponseWriter, status int, header http.Header) io.Writer {
	h := w.Header()
	for k, vs := range header {
		if !hopByHop[k] {
			h[k] = vs
		}
	}
	req.Status = status
	w.WriteHeader(status)
	return &streamWriter{w: w, rc: http.NewResponseController(w), n: &req.Bytes}
}

// streamWriter writes a streamed body to the client as it comes.
type streamWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	n  *int
}

func (s *streamWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	*s.n += n
	if err == nil {
		err = s.rc.Flush()
	}
	return n, err
}

// componentOutbound sends a component's outgoing request by the path of
// http_call (outbound list, client span, trace injection, colour, mTLS): a
// request to http://SERVICE/…, SERVICE the name of a service of the
// config, is an in-process call, as wasmesh://SERVICE/… is.
func (p *Plane) componentOutbound(ctx context.Context, out *wasi.OutboundRequest) (*wasi.OutboundResponse, int) {
	if req := requestFrom(ctx); req != nil {
		if u, err := url.Parse(out.URL); err == nil && u.Scheme == "http" && u.Port() == "" && req.snap.Config.Services[u.Hostname()] != nil {
			u.Scheme = "wasmesh"
			out.URL = u.String()
		}
	}
	return imports{p}.HTTPCall(ctx, out, nil)
}
