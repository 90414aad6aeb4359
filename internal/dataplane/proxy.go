package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"golang.org/x/net/http/httpguts"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/internal/http1"
	"github.com/wasmesh/wasmesh/router"
)

var upstreamBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var errUpstreamBody = errors.New("the upstream's response body failed")

// proxy serves req by its upstream version v: the request, its body
// streamed, to one endpoint, and the answer, streamed, back; hop-by-hop
// headers dropped, X-Forwarded-For (appended), -Host, -Proto and Via set,
// the request id, trace context and baggage (the lane) carried, in a
// client span per try; the whole within the service's timeout. An
// idempotent request without a body whose try failed as the upstream's
// retry policy says (by default: the endpoint refused or closed the
// connection before answering) is tried again on another endpoint, after
// a jittered pause, within the retry budget.
func (p *Plane) proxy(req *Request, w http.ResponseWriter, v *config.Version) {
	var u *upstreamPool
	if req.series != nil {
		u = req.series.pool // found once for the snapshot
	}
	if u == nil || u.closed.Load() {
		// A request still on a snapshot older than the reload that
		// dropped its version makes the pool again (dropUpstreams).
		u = p.upstreamFor(req.Service.Name, v)
	}
	if c := uint32(req.colour); c != 0 && u.colour.Load() != c {
		u.colour.Store(c) // the connections dialled from now on carry it
	}
	r := req.HTTP
	if r.ContentLength > req.Limits.MaxBody {
		req.ClientFault = faultBodyTooLarge
		p.fail(req, w, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: %d bytes, limit is %d", errBodyTooLarge, r.ContentLength, req.Limits.MaxBody))
		return
	}
	var ctx context.Context
	var moving *deadlineCtx
	if u.spec.HTTP2 { // http.Transport waits on Done: a timer ends it
		c, cancel := context.WithTimeout(req.ctx, req.Limits.Timeout)
		defer cancel()
		ctx = c
	} else {
		moving = &deadlineCtx{Context: req.ctx}
		moving.at.Store(int64(clock.Mono() + req.Limits.Timeout))
		ctx = moving
	}
	if n := u.inflight.Add(1); u.max > 0 && n > u.max {
		u.inflight.Add(-1)
		p.metrics.UpstreamOverflow.WithLabelValues(u.version).Inc()
		w.Header().Set("Retry-After", "1")
		p.fail(req, w, http.StatusServiceUnavailable, fmt.Errorf("%w: upstream %s has %d requests in flight (max_requests)", errOverloaded, u.version, u.max))
		return
	}
	defer u.inflight.Add(-1)
	// The connection to the endpoint carries the answer in and the
	// request's body out (the fallback colourer counts them here).
	var key string // read before outRequest changes the header
	if u.spec.LB == "consistent_hash" {
		key = router.KeyOf(u.spec.HashOn, r)
	}
	out := p.outRequest(req)
	if out.Body != nil && req.body != nil {
		// The client's body is read as it is sent on, within the service's
		// timeout: a client that stops sending it does not hold the
		// endpoint's connection (and its share of the pool) past it, and
		// one that does not send it in time is the client's fault.
		if dl, ok := ctx.Deadline(); ok {
			_ = req.body.SetReadDeadline(dl)
			defer func() { _ = req.body.SetReadDeadline(time.Time{}) }()
		}
		// The endpoint's time starts once the client's body is all sent
		// (as Envoy's route timeout does): a slow upload that ends in
		// time is not the endpoint's to answer within what it left.
		if b, ok := out.Body.(*limitedBody); ok && moving != nil {
			timeout := req.Limits.Timeout
			b.whenEnded(func() { moving.extend(timeout) })
		}
	}
	defer func() {
		if b, ok := out.Body.(*limitedBody); ok {
			req.BodyLen = int(b.n.Load())
		}
		p.count(req.colour, req.Bytes, req.BodyLen)
	}()
	policy := &u.spec.Retries
	// A request that may be sent twice is tried again as the policy says;
	// any other only after a connect failure, which sent none of it.
	retryable := idempotent[r.Method] && out.Body == nil
	var tried *endpoint
	// reserved is the retry budget's share that proxyOnce reserved for
	// the next try, given back after it, or when there is none.
	reserved := false
	defer func() {
		if reserved {
			u.retrying.Add(-1)
		}
	}()
	for try := 0; ; try++ {
		ep := u.pick(tried, key)
		if ep == nil {
			why := "it has no endpoints"
			if s := u.noEndpoints.Load(); s != nil {
				why = *s
			}
			w.Header().Set("Retry-After", "1")
			p.fail(req, w, http.StatusServiceUnavailable, fmt.Errorf("upstream %s: %s", u.version, why))
			return
		}
		again := try < policy.Attempts
		retry := p.proxyOnce(ctx, req, w, out, u, ep, again, retryable)
		if reserved {
			u.retrying.Add(-1)
		}
		if reserved = retry; !retry {
			return
		}
		p.metrics.UpstreamRetries.WithLabelValues(u.version).Inc()
		tried = ep
		// A jittered pause, not a storm, ended by the deadline (ctx may
		// have no timer to close Done at it).
		pause := time.Duration(1+rand.IntN(10*(try+1))) * time.Millisecond
		if dl, _ := ctx.Deadline(); time.Until(dl) < pause {
			pause = max(time.Until(dl), 0)
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
		}
		if err := ctx.Err(); err != nil {
			if errors.Is(req.ctx.Err(), context.Canceled) {
				// The client left during the pause: its own doing.
				p.fail(req, w, statusClientClosed, fmt.Errorf("the client went away between tries: %w", err))
				return
			}
			p.fail(req, w, http.StatusGatewayTimeout, fmt.Errorf("upstream: %w", err))
			return
		}
	}
}

// deadlineCtx is its parent with a deadline but no timer: Deadline and
// Err say it, Done closes only with the parent. The gateway's HTTP/1.1
// client cuts a request's connection, dial and TLS handshake at the
// context's Deadline, and waits for a pooled connection with a timer of
// its own, so a proxied request needs no timer (a WithTimeout's timer and
// the registration of its context with its parent's cost about a
// microsecond a request). Its parent's cancelCtx is found through Value,
// so that AfterFunc and WithCancel on it start no goroutine.
// The deadline may move later (once the client's body is all sent), as a
// reading of clock.Mono.
type deadlineCtx struct {
	context.Context
	at atomic.Int64
}

// extend moves the deadline to d from now, unless it has passed: a
// context's Err, once set, stays.
func (c *deadlineCtx) extend(d time.Duration) {
	for {
		at, now := c.at.Load(), clock.Mono()
		if now >= time.Duration(at) || c.at.CompareAndSwap(at, int64(now+d)) {
			return
		}
	}
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	at := clock.At(time.Duration(c.at.Load()))
	if dl, ok := c.Context.Deadline(); ok && dl.Before(at) {
		return dl, true
	}
	return at, true
}

func (c *deadlineCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if clock.Mono() >= time.Duration(c.at.Load()) {
		return context.DeadlineExceeded
	}
	return nil
}

// idempotent are the methods whose requests may be sent twice (RFC 9110
// §9.2.2).
var idempotent = map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true, "PUT": true, "DELETE": true}

// The Via values the gateway adds, as one-value slices shared by every
// header that has no Via of its own (never written to).
var (
	via10 = []string{"1.0 wasmesh"}
	via11 = []string{"1.1 wasmesh"}
	via2  = []string{"2 wasmesh"}
)

// addVia adds the gateway's Via to h, a message it forwards as it
// received it (HTTP/major.minor), after any Via h has.
func addVia(h http.Header, major, minor int) {
	via := via11
	switch {
	case major == 2:
		via = via2
	case minor == 0:
		via = via10
	}
	if vs := h["Via"]; len(vs) > 0 {
		h["Via"] = append(vs[:len(vs):len(vs)], via[0])
	} else {
		h["Via"] = via
	}
}

// forwardedProto is X-Forwarded-Proto's value by whether the client came
// over TLS (shared: the client writes header values, never changes them).
var forwardedProto = map[bool][]string{false: {"http"}, true: {"https"}}

// untrustedForwarding are the forwarding fields, beyond those the gateway
// sets, that frameworks read (Spring's X-Forwarded-Port and -Prefix,
// Rack's X-Forwarded-Ssl): dropped from a client that is no trusted
// proxy, which could forge them.
var untrustedForwarding = []string{"Forwarded", "X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Ssl", "X-Forwarded-Server"}

// gatewayFields are the fields whose values an endpoint takes from the
// gateway: those it sets, and the forwarding fields a trusted proxy may
// pass on.
var gatewayFields = map[string]bool{
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"X-Forwarded-Port": true, "X-Forwarded-Prefix": true, "X-Forwarded-Ssl": true, "X-Forwarded-Server": true,
	"X-Real-Ip": true, "Via": true, RequestIDHeader: true, router.VersionHeader: true, PeerIDHeader: true,
}

// hopByHopFields are the header fields that concern one connection, not the
// request (RFC 9110 §7.6.1), with those of the old RFC 2616 that proxies
// still send.
var hopByHopFields = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// outRequest is req as the endpoints get it: the client's end-to-end
// header fields (its header map, changed in place), the forwarding
// fields, the request id; the trace context is set per try.
func (p *Plane) outRequest(req *Request) *http.Request {
	r := req.HTTP
	// The client's header becomes the outbound one, changed in place: the
	// request is the gateway's, and nothing reads the client's hop-by-hop
	// fields after this.
	h := r.Header
	trailers := len(h["Te"]) > 0 && httpguts.HeaderValuesContainsToken(h["Te"], "trailers")
	// An Upgrade to WebSocket is passed on, none other: an h2c upgrade
	// through a proxy lets a client past the proxy's routing (h2c
	// smuggling).
	upgrade := h.Get("Upgrade")
	websocket := strings.EqualFold(upgrade, "websocket") && httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade")
	dropHopByHop(h)
	if trailers {
		h["Te"] = []string{"trailers"} // a client that takes trailers (gRPC) says so end to end
	}
	if websocket {
		h["Connection"], h["Upgrade"] = []string{"Upgrade"}, []string{upgrade}
	}
	// The values set here are in one array, each its own slice with no
	// room past it (an append copies).
	set := new([4]string)
	value := func(i int, v string) []string {
		set[i] = v
		return set[i : i+1 : i+1]
	}
	// X-Forwarded-For gets the client appended when the client is a
	// trusted proxy, and starts anew with it otherwise.
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	trusted := err == nil && p.trustedProxy(ip)
	switch {
	case err != nil: // no address (a guest's in-process call): nothing to say, and nothing forged passed on
		delete(h, "X-Forwarded-For")
	case trusted && len(h["X-Forwarded-For"]) > 0:
		h["X-Forwarded-For"] = value(0, strings.Join(h["X-Forwarded-For"], ", ")+", "+ip)
	default:
		h["X-Forwarded-For"] = value(0, ip)
	}
	if !trusted { // the other forwarding fields a client could forge
		for _, k := range untrustedForwarding {
			delete(h, k)
		}
	}
	// A field spelled with underscores for the dashes of one the gateway
	// sets or vouches for (X_Forwarded_For, X_Spiffe_Peer_Id) is dropped,
	// whoever sent it: CGI and WSGI servers behind the gateway read both
	// spellings as one (HTTP_X_FORWARDED_FOR), so it would pass for the
	// gateway's. nginx drops every such field by default.
	for k := range h {
		if underscored(k, gatewayFields) {
			delete(h, k)
		}
	}
	if host := r.Host; host != "" && (!trusted || h["X-Forwarded-Host"] == nil) {
		h["X-Forwarded-Host"] = value(1, host)
	}
	if !trusted || h["X-Forwarded-Proto"] == nil {
		h["X-Forwarded-Proto"] = forwardedProto[r.TLS != nil]
	}
	addVia(h, r.ProtoMajor, r.ProtoMinor)
	h[RequestIDHeader] = value(2, req.ID)
	// The client's SPIFFE ID as the handshake verified it, as a
	// component gets it; none a client sent passes.
	delete(h, PeerIDHeader)
	if req.PeerID != "" {
		h[PeerIDHeader] = value(3, req.PeerID)
	}
	out := &http.Request{Method: r.Method, URL: r.URL, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: r.Host, ContentLength: r.ContentLength, Trailer: r.Trailer}
	if req.Route.StripPrefix {
		u := *r.URL
		u.Path, u.RawPath = req.Route.Rewrite(r.URL.Path), ""
		if r.URL.RawPath != "" { // as sent: a %2F stays a byte of a segment
			u.RawPath = req.Route.Rewrite(r.URL.RawPath)
		}
		out.URL = &u
	}
	if r.Body != nil && r.Body != http.NoBody {
		out.Body = &limitedBody{r: r.Body, left: req.Limits.MaxBody, want: r.ContentLength, trailer: r.Trailer}
	}
	return out
}

// forbiddenTrailers are the fields a request's trailers do not carry to
// an endpoint (RFC 9110, 6.5.1): framing, routing, authentication,
// request modifiers, hop-by-hop fields (net/http's list), and the
// forwarding fields and ids the gateway sets, which a client could forge
// in its trailers as it cannot in its header.
var forbiddenTrailers = map[string]bool{
	"Authorization": true, "Cache-Control": true, "Connection": true, "Content-Encoding": true,
	"Content-Length": true, "Content-Range": true, "Content-Type": true, "Expect": true, "Host": true,
	"Keep-Alive": true, "Max-Forwards": true, "Pragma": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Proxy-Connection": true, "Range": true, "Realm": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Www-Authenticate": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"X-Forwarded-Port": true, "X-Forwarded-Prefix": true, "X-Forwarded-Ssl": true, "X-Forwarded-Server": true,
	"X-Real-Ip": true, "Via": true, RequestIDHeader: true, "Traceparent": true, "Tracestate": true,
	"Baggage": true, router.VersionHeader: true, PeerIDHeader: true,
}

// dropForbiddenTrailers deletes from t the fields of forbiddenTrailers, in
// either spelling (underscored).
func dropForbiddenTrailers(t http.Header) {
	for k := range t {
		if forbiddenTrailers[k] || underscored(k, forbiddenTrailers) {
			delete(t, k)
		}
	}
}

// underscored reports whether name spells with underscores for its
// dashes a field of fields (X_Forwarded_For, X_Spiffe_Peer_Id): CGI and
// WSGI servers read both spellings as one variable (HTTP_X_FORWARDED_FOR),
// so it would pass for the field the gateway sets. nginx drops every such
// field by default.
func underscored(name string, fields map[string]bool) bool {
	return strings.IndexByte(name, '_') >= 0 && fields[http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))]
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
	dropConnectionNamed(h, h["Connection"])
	for _, k := range hopByHopFields {
		delete(h, k)
	}
}

// dropConnectionNamed deletes from h the fields that the Connection field
// values conn name.
func dropConnectionNamed(h http.Header, conn []string) {
	for _, c := range conn {
		for name := range strings.SplitSeq(c, ",") {
			// keep-alive and close, what clients send, name no field h
			// keeps (Keep-Alive is hop-by-hop already): no canonical
			// name to make.
			if name = textproto.TrimString(name); name != "" && !strings.EqualFold(name, "keep-alive") && !strings.EqualFold(name, "close") {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
}

// proxyOnce is one try of out on ep. It reports true when the try failed
// as the retry policy says is tried again, nothing was written, and again
// allows another try (for a request that is not idempotent, only after a
// connect failure that read none of its body): req.Err says why.
func (p *Plane) proxyOnce(ctx context.Context, req *Request, w http.ResponseWriter, out *http.Request, u *upstreamPool, ep *endpoint, again, idempotent bool) (retry bool) {
	ep.inflight.Add(1)
	defer ep.inflight.Add(-1)
	ctx, span := p.childSpan(ctx, "wasmesh.upstream", clientSpan)
	defer span.End()
	if span.IsRecording() { // OpenTelemetry's HTTP client span attributes
		span.SetAttributes(append(appendMethod(nil, out.Method), attribute.String("server.address", ep.url.Hostname()), attribute.Int("server.port", ep.port),
			attribute.String("url.scheme", ep.url.Scheme), attribute.String("url.full", ep.url.Scheme+"://"+ep.url.Host+out.URL.RequestURI()))...)
	}
	// The try's own timeout runs until the response's head, from when the
	// client's body is all sent (at once when there is none, or it was
	// sent already).
	tryCtx := ctx
	var perTry *tryTimer
	if d := u.spec.Retries.PerTryTimeout; d > 0 {
		var cancelTry context.CancelFunc
		tryCtx, cancelTry = context.WithCancel(ctx)
		defer cancelTry()
		perTry = &tryTimer{}
		arm := func() { perTry.arm(d, cancelTry) }
		if b, ok := out.Body.(*limitedBody); ok {
			b.whenEnded(arm)
		} else {
			arm()
		}
	}
	injectTrace(ctx, req, out.Header)
	sent := clock.Now()
	var resp *http.Response
	var err error
	if ep.pool != nil {
		resp, err = ep.pool.Do(tryCtx, out)
	} else { // http.Transport wants the endpoint in the URL, and the context in the request
		try := out.WithContext(tryCtx)
		target := *out.URL
		target.Scheme, target.Host = ep.url.Scheme, ep.url.Host
		try.URL = &target
		resp, err = ep.transport.RoundTrip(try)
	}
	if perTry != nil && perTry.stop() && err == nil {
		// The head came as the try's time ran out: the body is cut.
		resp.Body.Close()
		resp, err = nil, fmt.Errorf("%w: per_try_timeout %s", context.DeadlineExceeded, u.spec.Retries.PerTryTimeout)
	}
	if err != nil {
		status, reason := p.upstreamFailure(req, err, ctx)
		ep.count(u, "")
		p.metrics.UpstreamFailures.WithLabelValues(u.version, ep.url.Host, reason).Inc()
		span.SetAttributes(attribute.String("error.type", reason))
		span.SetStatus(codes.Error, err.Error())
		switch reason {
		case "connect_failure", "reset", "timeout", "invalid_response":
			u.outcome(ep, true) // the endpoint's failure, not the client's
		}
		unsent := reason == "connect_failure" && ep.pool != nil && bodyUnread(out)
		if again && (idempotent || unsent) && u.spec.Retries.RetriesOn(reason) && u.reserveRetry() {
			req.Err = fmt.Errorf("upstream %s: %w", ep.url.Host, err)
			return true // nothing written: the next try answers
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		p.fail(req, w, status, &upstreamError{endpoint: ep.url.Host, reason: reason, err: err})
		return false
	}
	ep.duration.Observe(time.Since(sent).Seconds())
	code := strconv.Itoa(resp.StatusCode)
	ep.count(u, code)
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 { // a client span's error (OpenTelemetry's HTTP conventions)
		span.SetAttributes(attribute.String("error.type", code))
		span.SetStatus(codes.Error, "")
	}
	if again && idempotent && resp.StatusCode >= 500 && u.spec.Retries.RetriesOn(code) && u.reserveRetry() {
		u.outcome(ep, true)
		resp.Body.Close()
		req.Err = fmt.Errorf("upstream %s answered %d", ep.url.Host, resp.StatusCode)
		return true
	}
	req.Status = resp.StatusCode
	req.Err = nil // an earlier try's failure, which this one's answer leaves behind
	if resp.StatusCode == http.StatusSwitchingProtocols {
		u.outcome(ep, false)
		p.tunnel(req, w, resp)
		return false
	}
	began := clock.Now()
	dl, _ := ctx.Deadline()
	writing, err := p.copyResponse(req, w, resp, dl)
	if err == nil {
		u.outcome(ep, resp.StatusCode >= 500) // one outcome a try, once its body is through
		return false
	}
	// The head and part of the body are the client's already; the
	// connection is cut so that it does not take them for the whole.
	span.SetStatus(codes.Error, err.Error())
	req.Err, req.abort = fmt.Errorf("upstream %s: %w (after a %d head and %d bytes of the body were sent)", ep.url.Host, err, resp.StatusCode, req.Bytes), true
	reason := "reset"
	switch {
	case drainStopped(req.HTTP.Context()):
		req.stopped = true // by the drain's deadline: neither the client's fault nor the version's
		return false
	case req.HTTP.Context().Err() != nil:
		// The client went away (its connection's context cut the round
		// trip): its fault, not the endpoint's.
		req.ClientFault = faultClientAbort
		return false
	case ctx.Err() != nil && 2*writing > clock.Now().Sub(began):
		// The service's timeout came while the gateway waited mostly on
		// the client to take the body, not on the endpoint to send it:
		// a client that reads slowly, whose fault it is.
		req.ClientFault = faultSlowReader
		return false
	case ctx.Err() != nil:
		reason, req.Status = "timeout", http.StatusGatewayTimeout // the service's timeout, mid-body
	case errors.Is(err, errBodyTooLarge) || errors.Is(err, http1.ErrMalformedResponse) || strings.Contains(err.Error(), "malformed"):
		reason, req.Status = "invalid_response", http.StatusBadGateway
	default:
		req.Status = http.StatusBadGateway
	}
	// The endpoint failed: counted against the version, and towards its
	// ejection.
	p.metrics.UpstreamFailures.WithLabelValues(u.version, ep.url.Host, reason).Inc()
	u.outcome(ep, true)
	// When none of the answer has left the gateway yet (a short one,
	// still buffered), the client gets a whole 502 (504) rather than a
	// cut answer it might take for the endpoint's.
	if un, ok := w.(interface{ Unsend() bool }); ok && un.Unsend() {
		h := w.Header() // the gateway's own fields stay (request id, version)
		for k := range resp.Header {
			delete(h, k)
		}
		delete(h, "Content-Length")
		status := req.Status
		req.Status, req.Bytes, req.abort = 0, 0, false
		p.fail(req, w, status, &upstreamError{endpoint: ep.url.Host, reason: reason, err: err})
	}
	return false
}

// upstreamError is a try that got no answer: the client is told its
// reason, not the endpoint's address or the error's details.
type upstreamError struct {
	endpoint, reason string
	err              error
}

func (e *upstreamError) Error() string { return "upstream " + e.endpoint + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// Public is what the client is told: of a failure of its own, what was
// wrong with its request (not the endpoint it was going to).
func (e *upstreamError) Public() string {
	if e.reason == "client" {
		var body *clientBodyError
		switch {
		case errors.As(e.err, &body):
			return body.Public()
		case errors.Is(e.err, errBodyTooLarge):
			return errBodyTooLarge.Error()
		case errors.Is(e.err, http1.ErrInvalidRequest):
			return e.err.Error() // the client's own method, target or Host
		}
		return "the client closed the request"
	}
	return "upstream " + e.reason + map[string]string{
		"connect_failure":  " (the endpoint refused the connection, could not be reached, or failed the TLS handshake)",
		"reset":            " (the connection closed before an answer)",
		"invalid_response": " (a malformed or oversized response)",
		"pool_full":        " (max_pending requests are waiting for a connection to the version's endpoints)",
	}[e.reason]
}

// upstreamFailure is the status of a try that got no answer, and the
// reason it is counted under: "client" (the client's fault: its body too
// large, or it went away), "pool_full" (max_pending requests wait for a
// connection), "timeout", "connect_failure" (refused, unreachable, TLS
// handshake failed), "invalid_response" (a malformed or oversized
// response head), "reset" (the connection closed before an answer),
// "stopped" (the drain's deadline stopped it).
func (p *Plane) upstreamFailure(req *Request, err error, ctx context.Context) (int, string) {
	var ne net.Error
	var op *net.OpError
	var body *clientBodyError
	switch {
	case errors.Is(err, errBodyTooLarge):
		req.ClientFault = faultBodyTooLarge
		return http.StatusRequestEntityTooLarge, "client"
	case drainStopped(req.HTTP.Context()):
		// Stopped by the drain's deadline: neither the client's fault nor
		// the version's.
		req.stopped = true
		return http.StatusServiceUnavailable, "stopped"
	case req.HTTP.Context().Err() != nil:
		return statusClientClosed, "client"
	case errors.As(err, &body): // the client's body failed: cut, malformed, or too slow
		status, fault := bodyFault(body.err)
		req.ClientFault = fault
		return status, "client"
	case errors.Is(err, http1.ErrInvalidRequest): // not written: nothing the endpoint did
		req.ClientFault = faultBadRequest
		return http.StatusBadRequest, "client"
	case errors.Is(err, http1.ErrPoolFull):
		return http.StatusServiceUnavailable, "pool_full"
	case ctx.Err() != nil:
		return http.StatusGatewayTimeout, "timeout" // the service's timeout
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout, "timeout" // the try's
	case errors.As(err, &op) && op.Op == "dial", strings.Contains(err.Error(), "TLS handshake"):
		return http.StatusBadGateway, "connect_failure"
	case errors.Is(err, http1.ErrResponseHeaderTooLarge), errors.Is(err, http1.ErrMalformedResponse),
		strings.Contains(err.Error(), "malformed"): // net/http's Transport, for http2 upstreams
		return http.StatusBadGateway, "invalid_response"
	}
	return http.StatusBadGateway, "reset"
}

// count counts a try of ep by its status code ("" when it got none).
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
//
// It returns how long it waited on the client: writing the body, flushing.
func (p *Plane) copyResponse(req *Request, w http.ResponseWriter, resp *http.Response, deadline time.Time) (writing time.Duration, err error) {
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
	addVia(h, resp.ProtoMajor, resp.ProtoMinor) // the gateway forwarded the answer (RFC 9110, 7.6.3)
	noSniff(h)
	flush := resp.ContentLength < 0
	if len(resp.Trailer) > 0 { // trailers need the chunked framing
		delete(h, "Content-Length")
		flush = true
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	// The client takes the answer within the request's deadline too: a
	// write it does not take by then fails (the client's fault).
	if !deadline.IsZero() && rc.SetWriteDeadline(deadline) == nil {
		defer liftWriteDeadline(rc, req.HTTP.ProtoMajor == 2)
	}
	buf := upstreamBuffers.Get().(*[]byte)
	defer upstreamBuffers.Put(buf)
	for {
		n, rerr := resp.Body.Read(*buf)
		if n > 0 {
			start := clock.Now()
			m, werr := w.Write((*buf)[:n])
			req.Bytes += m
			if werr != nil {
				req.ClientFault, req.abort = writeFault(werr), true
				return writing, nil
			}
			if flush {
				_ = rc.Flush()
			}
			writing += clock.Now().Sub(start)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if errors.Is(rerr, errBodyTooLarge) {
				return writing, rerr
			}
			return writing, fmt.Errorf("%w: %w", errUpstreamBody, rerr)
		}
	}
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
	return writing, nil
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
	// Only to the protocol the request asked for (RFC 9110 §7.8): the
	// outbound request carries an Upgrade only for a WebSocket, and a 101
	// to anything else would let the client's bytes past the gateway.
	switch asked, got := req.HTTP.Header.Get("Upgrade"), resp.Header.Get("Upgrade"); {
	case asked == "":
		p.fail(req, w, http.StatusBadGateway, fmt.Errorf("upstream switched protocols (Upgrade %q) though the request asked for no upgrade", got))
		return
	case !strings.EqualFold(got, asked):
		p.fail(req, w, http.StatusBadGateway, fmt.Errorf("upstream switched to protocol %q, the client asked for %q", got, asked))
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
	// Bytes go both ways until either side ends its half: then both
	// connections close (as httputil.ReverseProxy does), so that a side
	// that half-closes never holds the tunnel open.
	done := make(chan struct{}, 2)
	var sent atomic.Int64
	go func() { // client → upstream; what the server had read ahead first
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			up.Write(b)
		}
		io.Copy(up, conn)
		done <- struct{}{}
	}()
	go func() { // upstream → client
		n, _ := io.Copy(conn, up)
		sent.Store(n)
		done <- struct{}{}
	}()
	<-done
	conn.Close()
	up.Close()
	<-done
	req.Bytes += int(sent.Load())
}

// clientBodyError is the client's request body failing while the proxy
// sends it: the client's fault, not the endpoint's.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string {
	return "reading the client's request body: " + e.err.Error()
}
func (e *clientBodyError) Unwrap() error { return e.err }

// Public is what the client is told.
func (e *clientBodyError) Public() string { return bodyMessage(e.err) }

// limitedBody is a request body read by the proxy, refused past left bytes.
// bodyUnread reports whether none of out's body has been read: a try
// that failed to connect sent nothing, and the next may send it all.
func bodyUnread(out *http.Request) bool {
	b, ok := out.Body.(*limitedBody)
	return out.Body == nil || ok && b.n.Load() == 0
}

type limitedBody struct {
	r       io.ReadCloser
	left    int64
	n       atomic.Int64 // bytes read (by the transport's goroutine, for h2)
	want    int64        // the length the client declared, -1 for none
	trailer http.Header  // the client's, filled as its body ends: the forbidden fields are dropped then

	mu    sync.Mutex
	ended bool     // all of it read: its declared length, or its end
	ends  []func() // called once it has ended (whenEnded)
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if int64(n) > b.left {
		return int(b.left), errBodyTooLarge
	}
	switch {
	case err == io.EOF:
		dropForbiddenTrailers(b.trailer)
	case err != nil:
		err = &clientBodyError{err}
	}
	b.left -= int64(n)
	if read := b.n.Add(int64(n)); err == io.EOF || err == nil && b.want >= 0 && read >= b.want {
		b.end()
	}
	return n, err
}

// end records that the body has been read whole and calls what waits on
// it, once.
func (b *limitedBody) end() {
	b.mu.Lock()
	if b.ended {
		b.mu.Unlock()
		return
	}
	b.ended = true
	ends := b.ends
	b.ends = nil
	b.mu.Unlock()
	for _, f := range ends {
		f()
	}
}

// whenEnded calls f once the body has been read whole: now, if it has.
func (b *limitedBody) whenEnded(f func()) {
	b.mu.Lock()
	if !b.ended {
		b.ends = append(b.ends, f)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	f()
}

// tryTimer is a try's per_try_timeout, armed when the try's time starts
// (perhaps on the transport's goroutine, as the body ends).
type tryTimer struct {
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// arm starts the timer: f after d, unless stop came first.
func (tt *tryTimer) arm(d time.Duration, f func()) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if !tt.stopped {
		tt.t = time.AfterFunc(d, f)
	}
}

// stop stops the timer and reports whether it had fired.
func (tt *tryTimer) stop() (fired bool) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.stopped = true
	return tt.t != nil && !tt.t.Stop()
}

func (b *limitedBody) Close() error { return b.r.Close() }
