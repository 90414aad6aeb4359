package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/router"
)

// upstreamPool is what an upstream version proxies to: its endpoints, each
// with its own connection pool. It is kept by the version's digest across
// reloads, so that a reload keeps the connections.
type upstreamPool struct {
	lb        string
	endpoints []*endpoint
	next      atomic.Uint64 // round robin's
}

// endpoint is one upstream endpoint and its connections.
type endpoint struct {
	url       *url.URL
	inflight  atomic.Int64
	transport *http.Transport
}

// Defaults of an upstream's connections.
const (
	upstreamConnectTimeout = 5 * time.Second
	upstreamMaxIdle        = 64
	upstreamIdleTimeout    = 90 * time.Second
)

// upstreamFor returns the pool of upstream version v, made at first use.
func (p *Plane) upstreamFor(v *config.Version) *upstreamPool {
	if u, ok := p.upstreams.Load(v.Digest); ok {
		return u.(*upstreamPool)
	}
	u := &upstreamPool{lb: v.Upstream.LB}
	for _, e := range v.Upstream.Endpoints {
		dialer := &net.Dialer{Timeout: upstreamConnectTimeout, KeepAlive: 30 * time.Second}
		u.endpoints = append(u.endpoints, &endpoint{url: e, transport: &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConnsPerHost: upstreamMaxIdle,
			IdleConnTimeout:     upstreamIdleTimeout,
			TLSHandshakeTimeout: upstreamConnectTimeout,
			ForceAttemptHTTP2:   true,
		}})
	}
	got, _ := p.upstreams.LoadOrStore(v.Digest, u)
	return got.(*upstreamPool)
}

// pick chooses the endpoint of a request: round robin, or of two chosen at
// random the one with fewer requests in flight (least request).
func (u *upstreamPool) pick() *endpoint {
	n := len(u.endpoints)
	switch {
	case n == 1:
		return u.endpoints[0]
	case u.lb == "round_robin":
		return u.endpoints[(u.next.Add(1)-1)%uint64(n)]
	}
	a, b := rand.IntN(n), rand.IntN(n-1)
	if b >= a {
		b++
	}
	if u.endpoints[b].inflight.Load() < u.endpoints[a].inflight.Load() {
		a = b
	}
	return u.endpoints[a]
}

var upstreamBuffers = sync.Pool{New: func() any { return make([]byte, 32<<10) }}

type bufferPool struct{}

func (bufferPool) Get() []byte { return upstreamBuffers.Get().([]byte) }

//lint:ignore SA6002 httputil.BufferPool hands back a slice; its header's allocation is small against a 32 KiB buffer
func (bufferPool) Put(b []byte) { upstreamBuffers.Put(b) }

var errUpstreamBody = errors.New("the upstream's response body failed")

var discardLog = log.New(io.Discard, "", 0)

// proxy serves req by its upstream version v: the request, its body
// streamed, to one endpoint, and the answer, streamed, back; hop-by-hop
// headers dropped, X-Forwarded-For (appended), -Host, -Proto and Via set,
// the request id, trace context and baggage (the lane) carried, in a
// client span; the whole within the service's timeout.
func (p *Plane) proxy(req *Request, w http.ResponseWriter, v *config.Version) {
	u := p.upstreamFor(v)
	ep := u.pick()
	ep.inflight.Add(1)
	defer ep.inflight.Add(-1)
	r := req.HTTP
	if r.ContentLength > req.Limits.MaxBody {
		req.ClientFault = faultBodyTooLarge
		p.fail(req, w, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: %d bytes, limit is %d", errBodyTooLarge, r.ContentLength, req.Limits.MaxBody))
		return
	}
	ctx, cancel := context.WithTimeout(req.ctx, req.Limits.Timeout)
	defer cancel()
	ctx, span := p.tracer.Start(ctx, "wasmesh.upstream", clientSpan,
		trace.WithAttributes(attribute.String("server.address", ep.url.Host), attribute.String("url.scheme", ep.url.Scheme)))
	defer span.End()
	in := r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		in.Body = &limitedBody{r: r.Body, left: req.Limits.MaxBody}
	}
	var upstreamErr error
	cw := &countingWriter{ResponseWriter: w, n: &req.Bytes}
	rp := &httputil.ReverseProxy{
		Transport:  ep.transport,
		BufferPool: bufferPool{},
		ErrorLog:   discardLog, // its errors are the request's (req.Err, the access log)
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(ep.url)
			pr.Out.Host = pr.In.Host // the client's, as an Ingress keeps it
			if req.Route.StripPrefix {
				pr.Out.URL.Path, pr.Out.URL.RawPath = req.Route.Rewrite(pr.In.URL.Path), ""
			}
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"] // SetXForwarded appends the client
			pr.SetXForwarded()
			pr.Out.Header.Add("Via", fmt.Sprintf("%d.%d wasmesh", pr.In.ProtoMajor, pr.In.ProtoMinor))
			pr.Out.Header[RequestIDHeader] = []string{req.ID}
			injectTrace(ctx, req, pr.Out.Header)
		},
		ModifyResponse: func(resp *http.Response) error {
			// The gateway says which version answered, and the request's
			// id: not the upstream.
			delete(resp.Header, router.VersionHeader)
			delete(resp.Header, RequestIDHeader)
			req.Status = resp.StatusCode
			resp.Body = &watchedBody{ReadCloser: resp.Body, err: &upstreamErr}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			upstreamErr = err
			status := http.StatusBadGateway
			switch {
			case errors.Is(err, errBodyTooLarge):
				status, req.ClientFault = http.StatusRequestEntityTooLarge, faultBodyTooLarge
			case r.Context().Err() != nil:
				status = statusClientClosed
			case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
				status = http.StatusGatewayTimeout
			}
			p.fail(req, w, status, fmt.Errorf("upstream %s: %w", ep.url.Host, err))
		},
	}
	rp.ServeHTTP(cw, in)
	if upstreamErr != nil {
		span.SetStatus(codes.Error, upstreamErr.Error())
		if req.Err == nil { // failed after the response began: cut, not ended
			req.Err, req.abort = fmt.Errorf("upstream %s: %w", ep.url.Host, upstreamErr), true
		}
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", req.Status))
}

// limitedBody is a request body read by the proxy, refused past left bytes.
type limitedBody struct {
	r    io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if int64(n) > b.left {
		return int(b.left), errBodyTooLarge
	}
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.r.Close() }

// watchedBody records a read error of an upstream's response body, which
// httputil.ReverseProxy only logs: the response is then cut short.
type watchedBody struct {
	io.ReadCloser
	err *error
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		*b.err = fmt.Errorf("%w: %w", errUpstreamBody, err)
	}
	return n, err
}

// countingWriter counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n *int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	*c.n += n
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
