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
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/internal/http1"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/router"
)

// upstreamPool is what an upstream version proxies to: its endpoints, each
// with its own connection pool. It is kept by the version's digest across
// reloads, so that a reload keeps the connections.
type upstreamPool struct {
	closed   atomic.Bool // by a reload that dropped its version
	version  string      // short digest, for metrics and logs
	p        *Plane
	spec     *config.Upstream
	tls      *tls.Config  // for https endpoints
	max      int64        // MaxRequests, 0 for no limit
	inflight atomic.Int64 // all endpoints'
	retrying atomic.Int64 // retries in flight, for the retry budget
	// colour is the version's (set by its requests), which the
	// connections to its endpoints carry, with its dscp.
	colour atomic.Uint32
	dscp   int

	endpoints atomic.Pointer[[]*endpoint]
	next      atomic.Uint64 // round robin's
	// noEndpoints says why there are none (a name that did not resolve).
	noEndpoints atomic.Pointer[string]
	ejectMu     sync.Mutex

	// ctx ends its health checks and resolving, once started (startOnce).
	startOnce sync.Once
	ctx       context.Context
	stop      context.CancelFunc
}

// endpoint is one upstream endpoint and its connections.
type endpoint struct {
	url       *url.URL
	port      int // url's, or its scheme's (spans' server.port)
	inflight  atomic.Int64
	closed    atomic.Bool // closeEndpoints: once (a pool's close may race a change of its endpoints)
	transport http.RoundTripper
	// pool is the endpoint's HTTP/1.1 client, transport unless the
	// upstream speaks h2 (then an http.Transport); health is its health
	// checks'.
	pool, health *http1.Client
	duration     prometheus.Observer
	// Passive outlier ejection: failures in a row (5xx answers, failures
	// to answer), until when the endpoint is ejected (ns of clock.Mono), and
	// how many times it has been.
	failures     atomic.Int32
	ejectedUntil atomic.Int64
	ejections    atomic.Int32
	// unhealthy is the active health check's verdict.
	unhealthy atomic.Bool
	// codes are its tries' counters, by code.
	codes sync.Map
	// stop ends its health check.
	stop context.CancelFunc
}

// eps are the pool's endpoints now.
func (u *upstreamPool) eps() []*endpoint { return *u.endpoints.Load() }

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
	u.ejectMu.Lock() // one ejection decided at a time: at most half of them out
	defer u.ejectMu.Unlock()
	now := int64(clock.Mono())
	if ep.ejectedUntil.Load() > now {
		return
	}
	ejected := 0
	eps := u.eps()
	for _, e := range eps {
		if e.ejectedUntil.Load() > now {
			ejected++
		}
	}
	if 2*(ejected+1) > len(eps) {
		return // keep more than half of them in
	}
	d := min(ejectBase<<min(ep.ejections.Add(1)-1, 10), ejectMax)
	ep.ejectedUntil.Store(now + int64(d))
	// Back on probation: its first failure once chosen again ejects it
	// again (for twice as long), its first success clears it.
	ep.failures.Store(ejectAfter - 1)
	u.p.metrics.UpstreamEjections.WithLabelValues(u.version, ep.url.Host).Inc()
	u.p.log.Warn("upstream endpoint ejected", "version", u.version, "endpoint", ep.url.String(), "for", d, "failures", ejectAfter)
}

// reserveRetry takes a retry from the budget, which allows as retries in
// flight at most Budget of the requests in flight, and minRetries more
// (an endpoint that dies fails every request in flight on it at once), so
// that retries cannot multiply the load of an upstream that is failing;
// false (and counted) when it is spent. The retry gives it back when done.
func (u *upstreamPool) reserveRetry() bool {
	if float64(u.retrying.Add(1)) <= u.spec.Retries.Budget*float64(u.inflight.Load())+minRetries {
		return true
	}
	u.retrying.Add(-1)
	u.p.metrics.UpstreamRetryBudget.WithLabelValues(u.version).Inc()
	return false
}

// minRetries is how many retries may be in flight whatever the budget.
const minRetries = 10

// upstreamFor returns the pool of upstream version v of service, made and
// started at first use. A pool is the version's in one service (its
// colour), kept across reloads, so that a reload keeps the connections.
func (p *Plane) upstreamFor(service string, v *config.Version) *upstreamPool {
	key := ColourKey(service, v.Digest)
	if u, ok := p.upstreams.Load(key); ok {
		return u.(*upstreamPool)
	}
	u := &upstreamPool{version: modules.Short(v.Digest), p: p, spec: v.Upstream, max: int64(v.Upstream.MaxRequests), dscp: v.DSCP}
	if id, err := spiffeid.FromString(v.Upstream.ExpectID); err == nil && p.opts.Identity != nil {
		u.tls = identity.ClientConfig(p.opts.Identity, id) // the config checked expect_id and that tls is set
	} else {
		u.tls = &tls.Config{RootCAs: v.Upstream.CA} // nil: the system's roots
	}
	if v.Upstream.DNS != nil {
		u.tls.ServerName = v.Upstream.DNS.Hostname()
	}
	var eps []*endpoint
	for _, e := range v.Upstream.Endpoints {
		eps = append(eps, u.newEndpoint(e))
	}
	u.endpoints.Store(&eps)
	if v.Upstream.DNS != nil {
		why := fmt.Sprintf("%s is not resolved yet", v.Upstream.DNS.Hostname())
		u.noEndpoints.Store(&why)
	}
	if k := v.Upstream.Kubernetes; k != nil {
		u.tls.ServerName = k.Service
		why := fmt.Sprintf("the endpoints of Kubernetes Service %s are not known yet", k.Service)
		u.noEndpoints.Store(&why)
	}
	got, loaded := p.upstreams.LoadOrStore(key, u)
	if loaded {
		u.closeEndpoints(eps)
	}
	pool := got.(*upstreamPool)
	pool.start()
	return pool
}

// newEndpoint makes the endpoint at e, with its connection pool.
func (u *upstreamPool) newEndpoint(e *url.URL) *endpoint {
	spec, p := u.spec, u.p
	dialer := p.colouringDialer(spec.ConnectTimeout, func() (bpf.Colour, int) { return bpf.Colour(u.colour.Load()), u.dscp })
	p.upstreamSeries.acquire(u.version, e.Host)
	ep := &endpoint{url: e, duration: p.metrics.UpstreamDuration.WithLabelValues(u.version, e.Host)}
	_, port, _ := net.SplitHostPort(hostPort(e))
	ep.port, _ = strconv.Atoi(port)
	if spec.HTTP2 {
		t := &http.Transport{
			DialContext:         dialer.DialContext,
			DialTLSContext:      u.dialTLS(dialer),
			MaxIdleConnsPerHost: spec.Pool.MaxIdle,
			MaxConnsPerHost:     spec.Pool.MaxConnections,
			IdleConnTimeout:     spec.Pool.IdleTimeout,
			TLSHandshakeTimeout: spec.ConnectTimeout,
			TLSClientConfig:     u.tls,
			Protocols:           new(http.Protocols),
		}
		t.Protocols.SetHTTP2(true)
		t.Protocols.SetUnencryptedHTTP2(true)
		ep.transport = t
		return ep
	}
	ep.pool = &http1.Client{Addr: hostPort(e), Dialer: dialer, MaxIdle: spec.Pool.MaxIdle, IdleTimeout: spec.Pool.IdleTimeout,
		MaxConns: spec.Pool.MaxConnections, MaxPending: spec.Pool.MaxPending}
	// Health checks have a connection of their own: a busy endpoint at its
	// pool's limits is not failed for it. They are the gateway's own
	// traffic, not the version's: uncoloured.
	ep.health = &http1.Client{Addr: ep.pool.Addr, Dialer: &net.Dialer{Timeout: spec.ConnectTimeout, KeepAlive: 30 * time.Second}, MaxIdle: 1}
	if e.Scheme == "https" {
		ep.pool.TLS, ep.health.TLS = u.tls, u.tls
	}
	ep.transport = ep.pool
	return ep
}

// dialTLS is an http2 endpoint's TLS dial: the handshake's failure (a
// server that is not expect_id, a certificate the CA did not sign) is said
// as one, a connect_failure, as http1's is, where net/http's Transport
// returns the verifier's error as it is (counted as a reset).
func (u *upstreamPool) dialTLS(dialer interface {
	DialContext(context.Context, string, string) (net.Conn, error)
}) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := u.tls.Clone()
		cfg.NextProtos = []string{"h2"}
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		hctx := ctx
		if t := u.spec.ConnectTimeout; t > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, t)
			defer cancel()
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return tc, nil
	}
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
// there are any: by the key's rendezvous hash (consistent_hash, key not
// ""), round robin, or of two chosen at random the one with fewer requests
// in flight (least request). Nil when there are none.
func (u *upstreamPool) pick(tried *endpoint, key string) *endpoint {
	eps := u.eps()
	switch len(eps) {
	case 0:
		return nil
	case 1:
		return eps[0]
	}
	now := int64(clock.Mono())
	var buf [16]*endpoint
	cands := buf[:0]
	for _, e := range eps {
		if e != tried && e.ejectedUntil.Load() <= now && !e.unhealthy.Load() {
			cands = append(cands, e)
		}
	}
	if len(cands) == 0 {
		for _, e := range eps {
			if e != tried {
				cands = append(cands, e)
			}
		}
	}
	m := len(cands)
	switch {
	case m == 1:
		return cands[0]
	case key != "":
		best, score := cands[0], uint64(0)
		for _, e := range cands {
			if h := router.KeyHash(key, e.url.Host); h >= score {
				best, score = e, h
			}
		}
		return best
	case u.spec.LB == "round_robin":
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

// startUpstreams makes and starts the pools of st's upstream versions
// before st is published: health checks running, names resolved.
func (p *Plane) startUpstreams(st *Snapshot) {
	for name, svc := range st.Config.Services {
		for _, v := range svc.Versions {
			if v.IsUpstream() {
				p.upstreamFor(name, v)
			}
		}
	}
}

// dropUpstreams closes, once st is published, the pools of the versions st
// no longer has: their health checks and resolving stop, their idle
// connections close, and those in use close when their requests end. A
// request still on an older snapshot makes its pool again if it needs it
// (and the next reload drops it).
func (p *Plane) dropUpstreams(st *Snapshot) {
	keep := map[string]bool{}
	for name, svc := range st.Config.Services {
		for _, v := range svc.Versions {
			if v.IsUpstream() {
				keep[ColourKey(name, v.Digest)] = true
			}
		}
	}
	p.upstreams.Range(func(k, u any) bool {
		if !keep[k.(string)] {
			p.upstreams.Delete(k)
			u.(*upstreamPool).close()
		}
		return true
	})
}

// start starts the pool's health checks and its resolving, once.
func (u *upstreamPool) start() {
	u.startOnce.Do(func() {
		u.ctx, u.stop = context.WithCancel(context.Background())
		for _, ep := range u.eps() {
			u.check(ep)
		}
		if u.spec.DNS != nil {
			u.resolve() // the first, before the config serves
			go u.resolveEvery(u.spec.DNSInterval)
		}
		if k := u.spec.Kubernetes; k != nil {
			if u.p.opts.Discovery == nil {
				why := fmt.Sprintf("upstream kubernetes service %s: the gateway does not run from a cluster (wasmesh serve --kubernetes NAMESPACE)", k.Service)
				u.noEndpoints.Store(&why)
				u.p.log.Error("upstream has no endpoints", "version", u.version, "reason", why)
				return
			}
			go u.p.opts.Discovery.Follow(u.ctx, *k, u.discovered)
		}
	})
}

// discovered makes the pool's endpoints those of its Kubernetes Service;
// with none, the pool has none (its requests are answered 503 with why),
// and why is logged.
func (u *upstreamPool) discovered(hosts []string, why string) {
	if u.ctx.Err() != nil {
		return
	}
	k := u.spec.Kubernetes
	if len(hosts) == 0 {
		why = fmt.Sprintf("Kubernetes Service %s: %s", k.Service, why)
		u.noEndpoints.Store(&why)
		empty := []*endpoint{}
		old := u.eps()
		u.endpoints.Store(&empty)
		u.closeEndpoints(old)
		u.p.log.Warn("upstream has no endpoints", "version", u.version, "reason", why)
		return
	}
	u.setEndpoints(k.Scheme, hosts, "kubernetes_service", k.Service)
}

func (u *upstreamPool) close() {
	u.closed.Store(true)
	if u.stop != nil {
		u.stop()
	}
	u.closeEndpoints(u.eps())
}

// closeEndpoints ends eps' health checks, idle connections (requests in
// flight on them finish) and, unless the pool of another service with the
// same upstream version has them too, metrics.
func (u *upstreamPool) closeEndpoints(eps []*endpoint) {
	m := u.p.metrics
	for _, ep := range eps {
		if ep.closed.Swap(true) {
			continue
		}
		if ep.stop != nil {
			ep.stop()
		}
		var dials dialCounts
		if ep.pool != nil {
			ep.pool.Close()
			ep.health.Close()
			dials = dialsOf(ep.pool)
		} else {
			ep.transport.(*http.Transport).CloseIdleConnections()
		}
		if !u.p.upstreamSeries.release(u.version, ep.url.Host, dials) {
			continue
		}
		series := prometheus.Labels{"version": u.version, "endpoint": ep.url.Host}
		m.UpstreamHealthy.Delete(series)
		m.UpstreamDuration.Delete(series)
		m.UpstreamEjections.Delete(series)
		m.UpstreamRequests.DeletePartialMatch(series)
		m.UpstreamFailures.DeletePartialMatch(series)
	}
}

// endpointSeries is the labels of an upstream endpoint's metrics.
type endpointSeries struct{ version, endpoint string }

// dialCounts are an endpoint pool's connections opened, by result.
type dialCounts struct{ ok, connectErr, tlsErr int64 }

func dialsOf(c *http1.Client) dialCounts {
	dialErrs, tlsErrs := c.DialErrors.Load(), c.HandshakeErrors.Load()
	return dialCounts{c.Dials.Load() - dialErrs - tlsErrs, dialErrs, tlsErrs}
}

func (d *dialCounts) add(o dialCounts) {
	d.ok, d.connectErr, d.tlsErr = d.ok+o.ok, d.connectErr+o.connectErr, d.tlsErr+o.tlsErr
}

// upstreamSeries counts the endpoints (of pools, one a service) that
// share each upstream endpoint's metrics: services with the same upstream
// block have the same version, and their pools the same series, which go
// when the last of them does. What the closed ones dialled stays in the
// connections counter of those left (retired), so that it never goes
// down.
type upstreamSeries struct {
	mu   sync.Mutex
	refs map[endpointSeries]*seriesRef
}

type seriesRef struct {
	n       int
	retired dialCounts
}

func (s *upstreamSeries) acquire(version, endpoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := endpointSeries{version, endpoint}
	r := s.refs[k]
	if r == nil {
		if s.refs == nil {
			s.refs = map[endpointSeries]*seriesRef{}
		}
		r = &seriesRef{}
		s.refs[k] = r
	}
	r.n++
}

// release gives up a hold of the series, whose pool dialled dials, and
// reports whether it was the last.
func (s *upstreamSeries) release(version, endpoint string, dials dialCounts) (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := endpointSeries{version, endpoint}
	r := s.refs[k]
	if r == nil || r.n <= 1 {
		delete(s.refs, k)
		return true
	}
	r.n--
	r.retired.add(dials)
	return false
}

// retired is what the closed pools of the series dialled.
func (s *upstreamSeries) retired(k endpointSeries) dialCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.refs[k]; r != nil {
		return r.retired
	}
	return dialCounts{}
}

// resolveEvery resolves the pool's name each interval until the pool
// closes.
func (u *upstreamPool) resolveEvery(interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-u.ctx.Done():
			return
		case <-tick.C:
			u.resolve()
		}
	}
}

// CheckResolves resolves host as upstreams' dns names are (within 2 s):
// nil when it has addresses.
func (p *Plane) CheckResolves(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := p.resolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(addrs) == 0 {
		err = &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return err
}

// resolve makes the pool's endpoints its name's addresses: an address
// still there keeps its endpoint (connections, health, ejection), a new
// one gets one, a gone one's closes. When the name does not resolve the
// endpoints stay as they were, and the reason is logged.
func (u *upstreamPool) resolve() {
	name := u.spec.DNS
	ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
	addrs, err := u.p.resolver.LookupNetIP(ctx, "ip", name.Hostname())
	cancel()
	if err != nil || len(addrs) == 0 {
		if u.ctx.Err() != nil {
			return
		}
		// Why, as the clients of a version with no endpoints are told:
		// not the resolver's address, which a DNSError names.
		why := fmt.Sprintf("%s has no addresses", name.Hostname())
		var de *net.DNSError
		switch {
		case errors.As(err, &de):
			why = fmt.Sprintf("resolving %s: %s", name.Hostname(), de.Err)
		case err != nil:
			why = fmt.Sprintf("resolving %s: %v", name.Hostname(), err)
		}
		if len(u.eps()) == 0 {
			u.noEndpoints.Store(&why)
		}
		u.p.metrics.UpstreamDNSFailures.WithLabelValues(u.version).Inc()
		u.p.log.Warn("upstream name not resolved; endpoints kept as they were", "version", u.version, "dns", name.String(), "reason", why, "error", err, "endpoints", len(u.eps()))
		return
	}
	port := name.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[name.Scheme]
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	var hosts []string
	for _, a := range slices.Compact(addrs) {
		hosts = append(hosts, net.JoinHostPort(a.Unmap().String(), port))
	}
	u.setEndpoints(name.Scheme, hosts, "dns", name.String())
}

// setEndpoints makes the pool's endpoints scheme://host for hosts: one
// still there keeps its endpoint (connections, health, ejection), a new
// one gets one, a gone one's closes (its requests in flight finish).
// source and name say where they came from, in the log.
func (u *upstreamPool) setEndpoints(scheme string, hosts []string, source, name string) {
	old := u.eps()
	byHost := make(map[string]*endpoint, len(old))
	for _, ep := range old {
		byHost[ep.url.Host] = ep
	}
	var eps []*endpoint
	var added []*endpoint
	for _, host := range hosts {
		if ep := byHost[host]; ep != nil {
			eps = append(eps, ep)
			delete(byHost, host)
			continue
		}
		ep := u.newEndpoint(&url.URL{Scheme: scheme, Host: host})
		eps, added = append(eps, ep), append(added, ep)
	}
	u.noEndpoints.Store(nil)
	if len(added) == 0 && len(byHost) == 0 {
		return
	}
	for _, ep := range added {
		u.check(ep)
	}
	u.endpoints.Store(&eps)
	gone := make([]*endpoint, 0, len(byHost))
	for _, ep := range byHost {
		gone = append(gone, ep)
	}
	u.closeEndpoints(gone)
	if u.closed.Load() { // closed meanwhile, perhaps before it saw these
		u.closeEndpoints(added)
		return
	}
	u.p.log.Info("upstream endpoints changed", "version", u.version, source, name, "endpoints", len(eps), "added", len(added), "removed", len(gone))
}

// check starts the active health check of ep, if the upstream has one,
// until the pool or the endpoint is closed: a GET of the check's path
// every interval; Unhealthy failures in a row take the endpoint out,
// Healthy successes put it back (and end an ejection).
func (u *upstreamPool) check(ep *endpoint) {
	h := u.spec.Health
	if h == nil {
		return
	}
	var ctx context.Context
	ctx, ep.stop = context.WithCancel(u.ctx)
	p := u.p
	gauge := p.metrics.UpstreamHealthy.WithLabelValues(u.version, ep.url.Host)
	gauge.Set(1)
	go func() {
		var tr http.RoundTripper = ep.transport
		if ep.health != nil {
			tr = ep.health
		}
		client := &http.Client{Transport: tr, Timeout: h.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		target := ep.url.String() + h.Path
		tick := time.NewTicker(h.Interval)
		defer tick.Stop()
		good, bad := 0, 0
		for {
			why := ""
			req, _ := http.NewRequestWithContext(ctx, "GET", target, nil)
			req.Header.Set("User-Agent", "wasmesh-health-check")
			if u.spec.DNS != nil {
				req.Host = u.spec.DNS.Host // as a client names the service
			}
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
	}()
}

// upstreamCollector reports the upstream endpoints' connections, read from
// their pools when scraped.
type upstreamCollector struct {
	p            *Plane
	conns, dials *prometheus.Desc
}

func newUpstreamCollector(p *Plane) *upstreamCollector {
	labels := []string{"version", "endpoint"}
	return &upstreamCollector{p: p,
		conns: prometheus.NewDesc("wasmesh_upstream_connections",
			"Connections to an endpoint of an upstream version, by state: active (a request on it) or idle (kept alive). HTTP/1.1 endpoints only.",
			append(labels, "state"), nil),
		dials: prometheus.NewDesc("wasmesh_upstream_connects_total",
			"Connections opened to an endpoint of an upstream version, by result: ok, connect_error (refused, unreachable, timed out) or tls_error (the TLS handshake failed). HTTP/1.1 endpoints only.",
			append(labels, "result"), nil),
	}
}

func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.conns; ch <- c.dials }

func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	// One series per version and endpoint, summed over the services whose
	// pools share them, and the pools of theirs closed since.
	type counts struct {
		active, idle int64
		dialCounts
	}
	sums := map[endpointSeries]*counts{}
	var order []endpointSeries
	c.p.upstreams.Range(func(_, v any) bool {
		u := v.(*upstreamPool)
		for _, ep := range u.eps() {
			if ep.pool == nil {
				continue
			}
			k := endpointSeries{u.version, ep.url.Host}
			n := sums[k]
			if n == nil {
				n = &counts{dialCounts: c.p.upstreamSeries.retired(k)}
				sums[k] = n
				order = append(order, k)
			}
			active, idle := ep.pool.Conns()
			n.active += int64(active)
			n.idle += int64(idle)
			n.add(dialsOf(ep.pool))
		}
		return true
	})
	for _, k := range order {
		n := sums[k]
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(n.active), k.version, k.endpoint, "active")
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(n.idle), k.version, k.endpoint, "idle")
		ch <- prometheus.MustNewConstMetric(c.dials, prometheus.CounterValue, float64(n.ok), k.version, k.endpoint, "ok")
		ch <- prometheus.MustNewConstMetric(c.dials, prometheus.CounterValue, float64(n.connectErr), k.version, k.endpoint, "connect_error")
		ch <- prometheus.MustNewConstMetric(c.dials, prometheus.CounterValue, float64(n.tlsErr), k.version, k.endpoint, "tls_error")
	}
}
