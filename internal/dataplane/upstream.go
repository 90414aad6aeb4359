package dataplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/http/httpguts"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/http1"
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
	transport http.RoundTripper
	// pool is the endpoint's HTTP/1.1 client, transport unless the
	// upstream speaks h2 (then an http.Transport).
	pool     *http1.Client
	duration prometheus.Observer
	// Passive outlier ejection: failures in a row (5xx answers, failures
	// to answer), until when the endpoint is ejected (ns since epoch), and
	// how many times it has been.
	failures     atomic.Int32
	ejectedUntil atomic.Int64
	ejections    atomic.Int32
	// unhealthy is the active health check's verdict.
	unhealthy atomic.Bool
	// codes are its tries' counters, by code or failure reason.
	codes sync.Map
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
		ep := &endpoint{url: e, duration: p.metrics.UpstreamDuration.WithLabelValues(modules.Short(v.Digest), e.Host)}
		if v.Upstream.HTTP2 {
			t := &http.Transport{
				DialContext:         dialer.DialContext,
				MaxIdleConnsPerHost: upstreamMaxIdle,
				IdleConnTimeout:     upstreamIdleTimeout,
				TLSHandshakeTimeout: upstreamConnectTimeout,
				TLSClientConfig:     tlsConfig,
				Protocols:           new(http.Protocols),
			}
			t.Protocols.SetHTTP2(true)
			t.Protocols.SetUnencryptedHTTP2(true)
			ep.transport = t
		} else {
			ep.pool = &http1.Client{Addr: hostPort(e), Dialer: dialer, MaxIdle: upstreamMaxIdle, IdleTimeout: upstreamIdleTimeout}
			if e.Scheme == "https" {
				ep.pool.TLS = tlsConfig
				if tlsConfig == nil {
					ep.pool.TLS = &tls.Config{}
				}
			}
			ep.transport = ep.pool
		}
		u.endpoints = append(u.endpoints, ep)
	}
	got, _ := p.upstreams.LoadOrStore(v.Digest, u)
	return got.(*upstreamPool)
}

// hostPort is an endpoint's host:port, its scheme's port if it names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
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
		ep.transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
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

var upstreamBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var errUpstreamBody = errors.New("the upstream's response body failed")

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
	if n := u.inflight.Add(1); u.max > 0 && n > u.max {
		u.inflight.Add(-1)
		p.metrics.UpstreamOverflow.WithLabelValues(u.version).Inc()
		w.Header().Set("Retry-After", "1")
		p.fail(req, w, http.StatusServiceUnavailable, fmt.Errorf("%w: upstream %s has %d requests in flight (max_requests)", errOverloaded, u.version, u.max))
		return
	}
	defer u.inflight.Add(-1)
	u.requests.Add(1)
	out := p.outRequest(ctx, req)
	retryable := idempotent[r.Method] && out.Body == nil
	var tried *endpoint
	for try := 0; ; try++ {
		ep := u.pick(tried)
		again := retryable && try < maxRetries && ep != tried
		if !p.proxyOnce(ctx, req, w, out, u, ep, again) {
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

// hopByHopFields are the header fields that concern one connection, not the
// request (RFC 9110 §7.6.1), with those of the old RFC 2616 that proxies
// still send.
var hopByHopFields = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// outRequest is req as the endpoints get it: the client's end-to-end
// header fields (not copied: their values are shared), the forwarding
// fields, the request id; the trace context is set per try.
func (p *Plane) outRequest(ctx context.Context, req *Request) *http.Request {
	r := req.HTTP
	h := make(http.Header, len(r.Header)+6)
	for k, vs := range r.Header {
		h[k] = vs
	}
	dropHopByHop(h)
	if te := r.Header["Te"]; len(te) > 0 && httpguts.HeaderValuesContainsToken(te, "trailers") {
		h["Te"] = []string{"trailers"} // a client that takes trailers (gRPC) says so end to end
	}
	if up := r.Header.Get("Upgrade"); up != "" && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade") {
		h["Connection"], h["Upgrade"] = []string{"Upgrade"}, []string{up}
	}
	// X-Forwarded-For gets the client appended when the client is a
	// trusted proxy, and starts anew with it otherwise.
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	trusted := err == nil && p.trustedProxy(ip)
	if err == nil {
		if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 && trusted {
			h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
		} else {
			h["X-Forwarded-For"] = []string{ip}
		}
	}
	if !trusted || h["X-Forwarded-Host"] == nil {
		h["X-Forwarded-Host"] = []string{r.Host}
	}
	if !trusted || h["X-Forwarded-Proto"] == nil {
		proto := "http"
		if r.TLS != nil {
			proto = "https"
		}
		h["X-Forwarded-Proto"] = []string{proto}
	}
	via := "1.1 wasmesh"
	if r.ProtoMajor == 2 {
		via = "2 wasmesh"
	} else if r.ProtoMinor == 0 {
		via = "1.0 wasmesh"
	}
	h["Via"] = append(r.Header["Via"][:len(r.Header["Via"]):len(r.Header["Via"])], via)
	h[RequestIDHeader] = []string{req.ID}
	out := &http.Request{Method: r.Method, URL: r.URL, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: r.Host, ContentLength: r.ContentLength, Trailer: r.Trailer}
	if req.Route.StripPrefix {
		u := *r.URL
		u.Path, u.RawPath = req.Route.Rewrite(r.URL.Path), ""
		out.URL = &u
	}
	if r.Body != nil && r.Body != http.NoBody {
		out.Body = &limitedBody{r: r.Body, left: req.Limits.MaxBody}
	}
	return out.WithContext(ctx)
}

// trustedProxy reports whether the client at ip is one of the config's
// trusted_proxies.
func (p *Plane) trustedProxy(ip string) bool {
	st := p.snap.Load()
	if st == nil || len(st.Config.TrustedProxies) == 0 {
		return false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, pfx := range st.Config.TrustedProxies {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// dropHopByHop deletes the hop-by-hop fields of h, and those its
// Connection field names.
func dropHopByHop(h http.Header) {
	for _, c := range h["Connection"] {
		for _, name := range strings.Split(c, ",") {
			if name = textproto.TrimString(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
	for _, k := range hopByHopFields {
		delete(h, k)
	}
}

// proxyOnce is one try of out on ep. It reports true when the endpoint
// failed before answering, nothing was written, and again allows another
// try: req.Err says why.
func (p *Plane) proxyOnce(ctx context.Context, req *Request, w http.ResponseWriter, out *http.Request, u *upstreamPool, ep *endpoint, again bool) (retry bool) {
	ep.inflight.Add(1)
	defer ep.inflight.Add(-1)
	ctx, span := p.tracer.Start(ctx, "wasmesh.upstream", clientSpan,
		trace.WithAttributes(attribute.String("server.address", ep.url.Host), attribute.String("url.scheme", ep.url.Scheme)))
	defer span.End()
	try := out.WithContext(ctx)
	if ep.pool == nil { // http.Transport wants the endpoint in the URL
		target := *out.URL
		target.Scheme, target.Host = ep.url.Scheme, ep.url.Host
		try.URL = &target
	}
	try.Header = out.Header
	injectTrace(ctx, req, try.Header)
	sent := time.Now()
	resp, err := ep.transport.RoundTrip(try)
	if err != nil {
		status, reason := p.upstreamFailure(req, err, ctx)
		ep.count(u, reason)
		span.SetStatus(codes.Error, err.Error())
		if status == http.StatusBadGateway {
			u.outcome(ep, true)
			if again {
				req.Err = fmt.Errorf("upstream %s: %w", ep.url.Host, err)
				return true // nothing written: the next try answers
			}
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		p.fail(req, w, status, fmt.Errorf("upstream %s: %w", ep.url.Host, err))
		return false
	}
	ep.duration.Observe(time.Since(sent).Seconds())
	ep.count(u, strconv.Itoa(resp.StatusCode))
	u.outcome(ep, resp.StatusCode >= 500)
	req.Status = resp.StatusCode
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode == http.StatusSwitchingProtocols {
		p.tunnel(req, w, resp)
		return false
	}
	if err := p.copyResponse(req, w, resp); err != nil {
		span.SetStatus(codes.Error, err.Error())
		req.Err, req.abort = fmt.Errorf("upstream %s: %w", ep.url.Host, err), true
	}
	return false
}

// upstreamFailure is the status of a try that got no answer, and the
// reason it is counted under.
func (p *Plane) upstreamFailure(req *Request, err error, ctx context.Context) (int, string) {
	var ne net.Error
	switch {
	case errors.Is(err, errBodyTooLarge):
		req.ClientFault = faultBodyTooLarge
		return http.StatusRequestEntityTooLarge, "client"
	case req.HTTP.Context().Err() != nil:
		return statusClientClosed, "client"
	case errors.Is(err, http1.ErrPoolFull):
		return http.StatusServiceUnavailable, "pool_full"
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout, "timeout"
	case errors.Is(err, http1.ErrResponseHeaderTooLarge):
		return http.StatusBadGateway, "header_too_large"
	case strings.Contains(err.Error(), "TLS handshake"):
		return http.StatusBadGateway, "tls"
	case strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "dial "):
		return http.StatusBadGateway, "connect"
	case strings.Contains(err.Error(), "malformed") || strings.Contains(err.Error(), "invalid"):
		return http.StatusBadGateway, "invalid_response"
	}
	return http.StatusBadGateway, "reset"
}

// count counts a try of ep by its status code, or the reason it got none.
func (ep *endpoint) count(u *upstreamPool, code string) {
	c, ok := ep.codes.Load(code)
	if !ok {
		c, _ = ep.codes.LoadOrStore(code, u.p.metrics.UpstreamRequests.WithLabelValues(u.version, ep.url.Host, code))
	}
	c.(prometheus.Counter).Inc()
}

// copyResponse writes resp to w: its end-to-end header fields, its body
// streamed (flushed as it comes when its length is unknown, as for server
// events), its trailers.
func (p *Plane) copyResponse(req *Request, w http.ResponseWriter, resp *http.Response) error {
	defer resp.Body.Close()
	h := w.Header()
	dropHopByHop(resp.Header)
	// The gateway says which version answered, and the request's id: not
	// the upstream.
	delete(resp.Header, router.VersionHeader)
	delete(resp.Header, RequestIDHeader)
	for k, vs := range resp.Header {
		h[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	flush := resp.ContentLength < 0
	rc := http.NewResponseController(w)
	buf := upstreamBuffers.Get().(*[]byte)
	defer upstreamBuffers.Put(buf)
	for {
		n, rerr := resp.Body.Read(*buf)
		if n > 0 {
			m, werr := w.Write((*buf)[:n])
			req.Bytes += m
			if werr != nil {
				return nil // the client went away: the server saw it
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if errors.Is(rerr, errBodyTooLarge) {
				return rerr
			}
			return fmt.Errorf("%w: %w", errUpstreamBody, rerr)
		}
	}
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
	return nil
}

// tunnel joins the client and the endpoint after the endpoint switched
// protocols (a WebSocket): the client's connection is taken over, the
// 101 forwarded, and bytes copied both ways until either side closes.
func (p *Plane) tunnel(req *Request, w http.ResponseWriter, resp *http.Response) {
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		p.fail(req, w, http.StatusBadGateway, errors.New("upstream switched protocols, and its connection cannot be tunnelled"))
		return
	}
	defer up.Close()
	if !strings.EqualFold(resp.Header.Get("Upgrade"), req.HTTP.Header.Get("Upgrade")) {
		p.fail(req, w, http.StatusBadGateway, fmt.Errorf("upstream switched to protocol %q, the client asked for %q", resp.Header.Get("Upgrade"), req.HTTP.Header.Get("Upgrade")))
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		p.fail(req, w, http.StatusInternalServerError, fmt.Errorf("upgrading the client's connection: %w", err))
		return
	}
	defer conn.Close()
	upgrade := resp.Header.Get("Upgrade")
	dropHopByHop(resp.Header)
	delete(resp.Header, router.VersionHeader)
	resp.Header["Connection"], resp.Header["Upgrade"] = []string{"Upgrade"}, []string{upgrade}
	resp.Header[router.VersionHeader] = w.Header()[router.VersionHeader]
	resp.Header[RequestIDHeader] = w.Header()[RequestIDHeader]
	fmt.Fprintf(brw, "HTTP/1.1 101 %s\r\n", http.StatusText(http.StatusSwitchingProtocols))
	if err := resp.Header.Write(brw); err != nil {
		return
	}
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { // client → upstream; what the server had read ahead first
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			up.Write(b)
		}
		io.Copy(up, conn)
		if cw, ok := up.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() { // upstream → client
		n, _ := io.Copy(conn, up)
		req.Bytes += int(n)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	<-done
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
