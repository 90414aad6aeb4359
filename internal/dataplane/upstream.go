package dataplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/router"
)

// upstreamPool is what an upstream version proxies to: its endpoints, each
// with its own connection pool. It is kept by the version's digest across
// reloads, so that a reload keeps the connections.
type upstreamPool struct {
	version  string // short digest, for metrics and logs
	p        *Plane
	lb       string
	max      int64        // MaxRequests, 0 for no limit
	inflight atomic.Int64 // all endpoints'

	endpoints []*endpoint
	next      atomic.Uint64 // round robin's
	// requests and retries, for the retry budget.
	requests, retries atomic.Int64
	// stop ends its health checks, once started (watchOnce).
	watchOnce sync.Once
	stop      context.CancelFunc
}

// endpoint is one upstream endpoint and its connections.
type endpoint struct {
	url       *url.URL
	inflight  atomic.Int64
	transport *http.Transport
	duration  prometheus.Observer
	// Passive outlier ejection: failures in a row (5xx answers, failures
	// to answer), until when the endpoint is ejected (ns since epoch), and
	// how many times it has been.
	failures     atomic.Int32
	ejectedUntil atomic.Int64
	ejections    atomic.Int32
	// unhealthy is the active health check's verdict.
	unhealthy atomic.Bool
}

// Outlier ejection: an endpoint that fails ejectAfter times in a row is
// left out for ejectBase, doubled at each ejection up to ejectMax, unless
// that would leave out more than half of the endpoints.
const (
	ejectAfter = 5
	ejectBase  = 10 * time.Second
	ejectMax   = 5 * time.Minute
)

// outcome counts an answer (or the failure to give one) of ep towards its
// ejection.
func (u *upstreamPool) outcome(ep *endpoint, failed bool) {
	if !failed {
		ep.failures.Store(0)
		return
	}
	if ep.failures.Add(1) < ejectAfter {
		return
	}
	now := int64(time.Since(epoch))
	ejected := 0
	for _, e := range u.endpoints {
		if e.ejectedUntil.Load() > now {
			ejected++
		}
	}
	if 2*(ejected+1) > len(u.endpoints) {
		return // keep more than half of them in
	}
	d := min(ejectBase<<min(ep.ejections.Add(1)-1, 10), ejectMax)
	ep.ejectedUntil.Store(now + int64(d))
	ep.failures.Store(0)
	u.p.metrics.UpstreamEjections.WithLabelValues(u.version, ep.url.Host).Inc()
	u.p.log.Warn("upstream endpoint ejected", "version", u.version, "endpoint", ep.url.String(), "for", d, "failures", ejectAfter)
}

// retryAllowed is the retry budget: retries at most a fifth of the
// requests, and a few more, so that retries cannot multiply the load of
// an upstream that is failing.
func (u *upstreamPool) retryAllowed() bool {
	return u.retries.Load() < u.requests.Load()/5+3
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
	u := &upstreamPool{lb: v.Upstream.LB, version: modules.Short(v.Digest), p: p, max: int64(v.Upstream.MaxRequests)}
	var tlsConfig *tls.Config
	if id, err := spiffeid.FromString(v.Upstream.ExpectID); err == nil && p.opts.Identity != nil {
		tlsConfig = identity.ClientConfig(p.opts.Identity, id) // the config checked expect_id and that tls is set
	}
	for _, e := range v.Upstream.Endpoints {
		dialer := &net.Dialer{Timeout: upstreamConnectTimeout, KeepAlive: 30 * time.Second}
		u.endpoints = append(u.endpoints, &endpoint{url: e,
			duration: p.metrics.UpstreamDuration.WithLabelValues(modules.Short(v.Digest), e.Host),
			transport: &http.Transport{
				DialContext:         dialer.DialContext,
				MaxIdleConnsPerHost: upstreamMaxIdle,
				IdleConnTimeout:     upstreamIdleTimeout,
				TLSHandshakeTimeout: upstreamConnectTimeout,
				TLSClientConfig:     tlsConfig,
				ForceAttemptHTTP2:   true,
			}})
	}
	got, _ := p.upstreams.LoadOrStore(v.Digest, u)
	return got.(*upstreamPool)
}

// pick chooses the endpoint of a request, not tried if it can (the
// endpoint a retry leaves), among those neither ejected nor unhealthy if
// there are any:
// round robin, or of two chosen at random the one with fewer requests in
// flight (least request).
func (u *upstreamPool) pick(tried *endpoint) *endpoint {
	n := len(u.endpoints)
	if n == 1 {
		return u.endpoints[0]
	}
	now := int64(time.Since(epoch))
	var buf [16]*endpoint
	cands := buf[:0]
	for _, e := range u.endpoints {
		if e != tried && e.ejectedUntil.Load() <= now && !e.unhealthy.Load() {
			cands = append(cands, e)
		}
	}
	if len(cands) == 0 {
		for _, e := range u.endpoints {
			if e != tried {
				cands = append(cands, e)
			}
		}
	}
	m := len(cands)
	switch {
	case m == 1:
		return cands[0]
	case u.lb == "round_robin":
		return cands[(u.next.Add(1)-1)%uint64(m)]
	}
	a, b := rand.IntN(m), rand.IntN(m-1)
	if b >= a {
		b++
	}
	if cands[b].inflight.Load() < cands[a].inflight.Load() {
		a = b
	}
	return cands[a]
}

// syncUpstreams makes the pools of st's upstream versions, not yet
// published, and starts their health checks; the pools of versions st no
// longer has stop theirs and close their idle connections (requests in
// flight on them finish).
func (p *Plane) syncUpstreams(st *Snapshot) {
	keep := map[string]bool{}
	for _, svc := range st.Config.Services {
		for _, v := range svc.Versions {
			if v.IsUpstream() {
				keep[v.Digest] = true
				p.upstreamFor(v).watch(p, v.Upstream.Health)
			}
		}
	}
	p.upstreams.Range(func(d, u any) bool {
		if !keep[d.(string)] {
			p.upstreams.Delete(d)
			u.(*upstreamPool).close()
		}
		return true
	})
}

// watch starts the pool's health checks, once, when it has any.
func (u *upstreamPool) watch(p *Plane, h *config.HealthCheck) {
	u.watchOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		u.stop = cancel
		if h == nil {
			return
		}
		for _, ep := range u.endpoints {
			p.metrics.UpstreamHealthy.WithLabelValues(u.version, ep.url.Host).Set(1)
			go u.check(ctx, p, ep, h)
		}
	})
}

func (u *upstreamPool) close() {
	if u.stop != nil {
		u.stop()
	}
	for _, ep := range u.endpoints {
		ep.transport.CloseIdleConnections()
		u.p.metrics.UpstreamHealthy.DeleteLabelValues(u.version, ep.url.Host)
	}
}

// check is the active health check of ep, until ctx is done: a GET of the
// check's path every interval; Unhealthy failures in a row take the
// endpoint out, Healthy successes put it back (and end an ejection).
func (u *upstreamPool) check(ctx context.Context, p *Plane, ep *endpoint, h *config.HealthCheck) {
	client := &http.Client{Transport: ep.transport, Timeout: h.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	target := ep.url.String() + h.Path
	gauge := p.metrics.UpstreamHealthy.WithLabelValues(u.version, ep.url.Host)
	tick := time.NewTicker(h.Interval)
	defer tick.Stop()
	good, bad := 0, 0
	for {
		why := ""
		req, _ := http.NewRequestWithContext(ctx, "GET", target, nil)
		req.Header.Set("User-Agent", "wasmesh-health-check")
		resp, err := client.Do(req)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			why = err.Error()
		default:
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode != h.Status {
				why = fmt.Sprintf("status %d, want %d", resp.StatusCode, h.Status)
			}
		}
		if why == "" {
			good, bad = good+1, 0
			if good >= h.Healthy && ep.unhealthy.CompareAndSwap(true, false) {
				ep.ejectedUntil.Store(0)
				ep.failures.Store(0)
				gauge.Set(1)
				p.log.Info("upstream endpoint healthy", "version", u.version, "endpoint", ep.url.String())
			}
		} else {
			good, bad = 0, bad+1
			if bad >= h.Unhealthy && ep.unhealthy.CompareAndSwap(false, true) {
				gauge.Set(0)
				p.log.Warn("upstream endpoint unhealthy", "version", u.version, "endpoint", ep.url.String(), "check", target, "reason", why)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
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
// client span per try; the whole within the service's timeout. An
// idempotent request without a body whose endpoint failed before
// answering (refused, reset, closed) is tried again on another endpoint,
// at most twice, within the pool's retry budget.
func (p *Plane) proxy(req *Request, w http.ResponseWriter, v *config.Version) {
	u := p.upstreamFor(v)
	r := req.HTTP
	if r.ContentLength > req.Limits.MaxBody {
		req.ClientFault = faultBodyTooLarge
		p.fail(req, w, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: %d bytes, limit is %d", errBodyTooLarge, r.ContentLength, req.Limits.MaxBody))
		return
	}
	ctx, cancel := context.WithTimeout(req.ctx, req.Limits.Timeout)
	defer cancel()
	in := r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		in.Body = &limitedBody{r: r.Body, left: req.Limits.MaxBody}
	}
	if n := u.inflight.Add(1); u.max > 0 && n > u.max {
		u.inflight.Add(-1)
		p.metrics.UpstreamOverflow.WithLabelValues(u.version).Inc()
		w.Header().Set("Retry-After", "1")
		p.fail(req, w, http.StatusServiceUnavailable, fmt.Errorf("%w: upstream %s has %d requests in flight (max_requests)", errOverloaded, u.version, u.max))
		return
	}
	defer u.inflight.Add(-1)
	u.requests.Add(1)
	retryable := idempotent[r.Method] && (r.Body == nil || r.Body == http.NoBody)
	var tried *endpoint
	for try := 0; ; try++ {
		ep := u.pick(tried)
		again := retryable && try < maxRetries && ep != tried
		if !p.proxyOnce(ctx, req, w, in, u, ep, again) {
			return
		}
		if !u.retryAllowed() {
			p.fail(req, w, http.StatusBadGateway, fmt.Errorf("upstream %s: %w (retry budget spent)", ep.url.Host, req.Err))
			return
		}
		u.retries.Add(1)
		p.metrics.UpstreamRetries.WithLabelValues(u.version).Inc()
		tried = ep
		select { // a jittered pause, not a storm
		case <-time.After(time.Duration(1+rand.IntN(10*(try+1))) * time.Millisecond):
		case <-ctx.Done():
			p.fail(req, w, http.StatusGatewayTimeout, fmt.Errorf("upstream: %w", ctx.Err()))
			return
		}
	}
}

// maxRetries is how many times a request is tried again on another
// endpoint.
const maxRetries = 2

// idempotent are the methods whose requests may be sent twice (RFC 9110
// §9.2.2).
var idempotent = map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true, "PUT": true, "DELETE": true}

// proxyOnce is one try of req on ep. It reports true when the endpoint
// failed before answering, nothing was written, and again allows another
// try: req.Err says why.
func (p *Plane) proxyOnce(ctx context.Context, req *Request, w http.ResponseWriter, in *http.Request, u *upstreamPool, ep *endpoint, again bool) (retry bool) {
	ep.inflight.Add(1)
	defer ep.inflight.Add(-1)
	ctx, span := p.tracer.Start(ctx, "wasmesh.upstream", clientSpan,
		trace.WithAttributes(attribute.String("server.address", ep.url.Host), attribute.String("url.scheme", ep.url.Scheme)))
	defer span.End()
	var upstreamErr error
	code, sent := "", time.Now()
	defer func() { p.metrics.UpstreamRequests.WithLabelValues(u.version, ep.url.Host, code).Inc() }()
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
			code = strconv.Itoa(resp.StatusCode)
			ep.duration.Observe(time.Since(sent).Seconds())
			u.outcome(ep, resp.StatusCode >= 500)
			resp.Body = &watchedBody{ReadCloser: resp.Body, err: &upstreamErr}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			upstreamErr = err
			status := http.StatusBadGateway
			switch {
			case errors.Is(err, errBodyTooLarge):
				status, req.ClientFault = http.StatusRequestEntityTooLarge, faultBodyTooLarge
			case req.HTTP.Context().Err() != nil:
				status = statusClientClosed
			case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
				status = http.StatusGatewayTimeout
			default:
				u.outcome(ep, true)
				if again {
					req.Err, retry = fmt.Errorf("upstream %s: %w", ep.url.Host, err), true
					return // nothing written: the next try answers
				}
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
		return retry
	}
	span.SetAttributes(attribute.Int("http.response.status_code", req.Status))
	return false
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
