package config

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Upstream is a version served by proxying to a native HTTP service
// instead of running a module: a set of endpoints, one chosen per request
// by LB.
type Upstream struct {
	// Endpoints are http:// or https:// origins (scheme, host, port; no
	// path, query or user).
	Endpoints []*url.URL
	// LB is how an endpoint is chosen: "least_request" (the default: the
	// fewer requests in flight of two chosen at random, as Envoy does),
	// "round_robin", or "consistent_hash" (by HashOn: a key keeps its
	// endpoint while it is up, and only the keys of an endpoint that goes
	// or comes move).
	LB string
	// HashOn is the key of consistent_hash: "header:NAME" or
	// "cookie:NAME". A request without it is balanced by least request.
	HashOn Sticky
	// Health, when set, checks each endpoint actively: an endpoint is left
	// out while unhealthy. Default nil: no active checks.
	Health *HealthCheck
	// ExpectID, when set, makes the calls to https endpoints mTLS: the
	// gateway presents its SVID and accepts only this SPIFFE ID. Needs tls.
	// Default "": https verified against the system roots.
	ExpectID string
	// MaxRequests is the circuit breaker: the most requests in flight to
	// the upstream, all endpoints together; past it a request is answered
	// 503 at once rather than queued on a struggling service. Default 0:
	// no limit.
	MaxRequests int
	// CA, when set (ca: FILE, a PEM bundle, relative to the config's
	// directory), is what https endpoints' certificates are checked
	// against instead of the system's roots: an upstream behind a private
	// CA. Not with ExpectID, whose trust bundle is the gateway's.
	CA    *x509.CertPool
	caSum string // the bundle's sha256, in the version's digest
	// HTTP2 makes the calls h2: over TLS for https endpoints, h2c with
	// prior knowledge for http ones. Default false: HTTP/1.1, the
	// gateway's own client (internal/http1), kept-alive connections.
	HTTP2 bool
	// DNS, when set, takes the endpoints from a name's addresses instead
	// of Endpoints: every address is an endpoint, the name re-resolved
	// each DNSInterval (a Kubernetes headless Service). An
	// http(s)://name:port origin.
	DNS *url.URL
	// DNSInterval is how often DNS is resolved again. Default 5s.
	DNSInterval time.Duration
	// Kubernetes, when set, takes the endpoints from a Kubernetes
	// Service's EndpointSlices instead of Endpoints, following their
	// changes; the gateway must run from the cluster (wasmesh serve
	// --kubernetes).
	Kubernetes *KubernetesService
	// ConnectTimeout bounds a connection's TCP and TLS handshakes.
	// Default 5s.
	ConnectTimeout time.Duration
	// Retries says when a request is tried again on another endpoint.
	Retries Retries
	// Pool sizes each endpoint's connection pool.
	Pool Pool

	node *yaml.Node // as decoded, its comments left out, written back by config edits
}

// KubernetesService names a Kubernetes Service whose endpoints an upstream
// version proxies to: those its EndpointSlices say are ready (when none is,
// those serving while terminating), at the port Port names.
type KubernetesService struct {
	// Service is the Service's name, in the gateway's namespace.
	// Required.
	Service string
	// Port is the Service's port, by name or number. Default: its only
	// port.
	Port string
	// Scheme is how the endpoints are spoken to: "http" (the default) or
	// "https".
	Scheme string
}

// Retries is an upstream's retry policy. Only idempotent requests without
// a body are tried again, within a budget: retries in flight at most Budget
// of the requests in flight (and 10 more), so that retries cannot storm.
type Retries struct {
	// Attempts is how many times a request may be tried again. Default 2;
	// 0 turns retries off.
	Attempts int
	// On are the failures tried again: "connect_failure" (refused,
	// unreachable, TLS handshake failed), "reset" (the connection closed
	// or reset before an answer), "timeout" (the try's PerTryTimeout
	// passed) and HTTP status codes (such as 503). Default
	// [connect_failure, reset].
	On []string
	// PerTryTimeout bounds one try, within the service's timeout. Default
	// 0: none but the service's.
	PerTryTimeout time.Duration
	// Budget is the fraction of requests that may be retries. Default 0.2.
	Budget float64
}

// RetriesOn reports whether failure (a reason above or a status code) is
// tried again.
func (r *Retries) RetriesOn(failure string) bool {
	for _, on := range r.On {
		if on == failure {
			return true
		}
	}
	return false
}

// Pool sizes an endpoint's connection pool.
type Pool struct {
	// MaxConnections is the most connections to an endpoint; past it a
	// request waits for one. Default 0: no limit.
	MaxConnections int
	// MaxPending is how many requests may wait for a connection to an
	// endpoint at MaxConnections; past it a request is answered 503.
	// Default 0: no limit.
	MaxPending int
	// MaxIdle is the most idle connections kept, at least 1. Default 64.
	MaxIdle int
	// IdleTimeout closes a connection idle that long. Default 90s.
	IdleTimeout time.Duration
}

// HealthCheck is an upstream's active health check: a GET of Path on every
// endpoint each Interval, answered within Timeout with Status; Unhealthy
// failures in a row take an endpoint out, Healthy successes in a row put
// it back.
type HealthCheck struct {
	// Path is what is asked for. Required, starting with "/".
	Path string
	// Interval between checks of an endpoint. Default 5s, at least 100ms.
	Interval time.Duration
	// Timeout of one check. Default 2s; at most Interval.
	Timeout time.Duration
	// Status is the status a healthy endpoint answers. Default 200.
	Status int
	// Healthy and Unhealthy are the thresholds. Defaults 2 and 3.
	Healthy, Unhealthy int
}

var (
	upstreamFields = []string{"endpoints", "dns", "dns_interval", "kubernetes", "lb", "hash_on", "health", "max_requests", "expect_id", "ca", "http2", "connect_timeout", "retries", "pool"}
	retryFields    = []string{"attempts", "on", "per_try_timeout", "budget"}
	poolFields     = []string{"max_connections", "max_pending", "max_idle", "idle_timeout"}
	healthFields   = []string{"path", "interval", "timeout", "status", "healthy", "unhealthy"}
)

// IsUpstream reports whether the version proxies to an upstream.
func (v *Version) IsUpstream() bool { return v.Upstream != nil }

// UpstreamDigest is an upstream version's address, as a module version's
// is the sha256 of its module: the sha256 of its settings (endpoints or
// name, balancing, retries, pool, health, TLS), so that the same upstream
// is the same version in every config, and a changed one a new version.
func (u *Upstream) UpstreamDigest() string {
	var b strings.Builder
	b.WriteString("wasmesh-upstream\nlb " + u.LB + "\n")
	if u.MaxRequests > 0 {
		fmt.Fprintf(&b, "max_requests %d\n", u.MaxRequests)
	}
	if u.ExpectID != "" {
		b.WriteString("expect_id " + u.ExpectID + "\n")
	}
	if u.caSum != "" {
		b.WriteString("ca " + u.caSum + "\n")
	}
	if u.HTTP2 {
		b.WriteString("http2\n")
	}
	if u.HashOn.Kind != "" {
		fmt.Fprintf(&b, "hash_on %s:%s\n", u.HashOn.Kind, u.HashOn.Name)
	}
	if u.DNS != nil {
		fmt.Fprintf(&b, "dns %s %s\n", u.DNS, u.DNSInterval)
	}
	if k := u.Kubernetes; k != nil {
		fmt.Fprintf(&b, "kubernetes %s %q %s\n", k.Service, k.Port, k.Scheme)
	}
	if u.ConnectTimeout != DefaultConnectTimeout {
		fmt.Fprintf(&b, "connect_timeout %s\n", u.ConnectTimeout)
	}
	if r := u.Retries; !reflect.DeepEqual(r, DefaultRetries()) {
		fmt.Fprintf(&b, "retries %d %q %s %g\n", r.Attempts, r.On, r.PerTryTimeout, r.Budget)
	}
	if p := u.Pool; p != DefaultPool {
		fmt.Fprintf(&b, "pool %d %d %d %s\n", p.MaxConnections, p.MaxPending, p.MaxIdle, p.IdleTimeout)
	}
	if h := u.Health; h != nil {
		fmt.Fprintf(&b, "health %s %s %s %d %d %d\n", h.Path, h.Interval, h.Timeout, h.Status, h.Healthy, h.Unhealthy)
	}
	for _, e := range u.Endpoints {
		b.WriteString(e.String() + "\n")
	}
	sum := sha256.Sum256([]byte(b.String()))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Defaults of an upstream.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultDNSInterval    = 5 * time.Second
)

// DefaultPool is an endpoint's connection pool unless the config says.
var DefaultPool = Pool{MaxIdle: 64, IdleTimeout: 90 * time.Second}

// DefaultRetries is an upstream's retry policy unless the config says.
func DefaultRetries() Retries {
	return Retries{Attempts: 2, On: []string{"connect_failure", "reset"}, Budget: 0.2}
}

// upstream decodes a version's upstream block.
func (d *decoder) upstream(n *yaml.Node, path string) *Upstream {
	u := &Upstream{LB: "least_request", ConnectTimeout: DefaultConnectTimeout, DNSInterval: DefaultDNSInterval,
		Retries: DefaultRetries(), Pool: DefaultPool, node: uncommented(deref(n))}
	listed := false // endpoints written, whether or not they parse
	d.fields(n, path, upstreamFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "endpoints":
			items, _ := d.list(v, f)
			listed = len(items) > 0
			for i, item := range items {
				fi := fmt.Sprintf("%s[%d]", f, i)
				if s, ok := d.str(item, fi); ok {
					e, err := parseEndpoint(s)
					if d.check(err != nil, item, fi, "%v", err) {
						dup := slices.IndexFunc(u.Endpoints, func(o *url.URL) bool { return origin(o) == origin(e) })
						if d.check(dup >= 0, item, fi, "%s is endpoints[%d] again", e, dup) {
							u.Endpoints = append(u.Endpoints, e)
						}
					}
				}
			}
		case "lb":
			if s, ok := d.str(v, f); ok && d.check(s != "least_request" && s != "round_robin" && s != "consistent_hash", v, f,
				`must be "least_request", "round_robin" or "consistent_hash", got %q`, s) {
				u.LB = s
			}
		case "hash_on":
			if s, ok := d.str(v, f); ok {
				u.HashOn = d.sticky(v, f, s)
			}
		case "health":
			u.Health = d.health(v, f)
		case "expect_id":
			if id, ok := d.str(v, f); ok {
				err := checkSpiffeID(id)
				d.check(err != nil, v, f, "%v", err)
				u.ExpectID = id
				d.expectIDs = append(d.expectIDs, fieldPos{posOf(deref(v)), f})
			}
		case "ca":
			if file, ok := d.str(v, f); ok {
				path := d.relPath(file)
				d.reads++
				pem, err := os.ReadFile(path)
				if d.check(err != nil, v, f, "%v", err) {
					pool := x509.NewCertPool()
					if d.check(!pool.AppendCertsFromPEM(pem), v, f, "%s holds no PEM certificate", path) {
						sum := sha256.Sum256(pem)
						u.CA, u.caSum = pool, hex.EncodeToString(sum[:])
					}
				}
			}
		case "http2":
			u.HTTP2, _ = d.boolean(v, f)
		case "dns":
			if s, ok := d.str(v, f); ok {
				e, err := parseEndpoint(s)
				if d.check(err != nil, v, f, "%v", err) {
					_, isIP := netip.ParseAddr(e.Hostname())
					if d.check(isIP == nil, v, f, "names an address, %s: list it in endpoints", e.Hostname()) {
						u.DNS = e
					}
				}
			}
		case "dns_interval":
			d.durationAtLeast(v, f, 100*time.Millisecond, &u.DNSInterval)
		case "kubernetes":
			u.Kubernetes = d.kubernetesService(v, f)
		case "connect_timeout":
			d.durationAtLeast(v, f, 0, &u.ConnectTimeout)
		case "retries":
			u.Retries = d.retries(v, f)
		case "pool":
			u.Pool = d.pool(v, f)
		case "max_requests":
			if m, ok := d.integer(v, f); ok && d.check(m < 1, v, f, "must be at least 1, got %d", m) {
				u.MaxRequests = m
			}
		}
	})
	d.check(u.LB == "consistent_hash" && u.HashOn.Kind == "", d.key(n, "lb"), join(path, "lb"), `consistent_hash needs hash_on ("header:NAME" or "cookie:NAME")`)
	d.check(u.LB != "consistent_hash" && u.HashOn.Kind != "", d.key(n, "hash_on"), join(path, "hash_on"), `needs lb: consistent_hash`)
	sources := 0
	for _, set := range []bool{len(u.Endpoints) > 0, u.DNS != nil, u.Kubernetes != nil} {
		if set {
			sources++
		}
	}
	switch {
	case sources > 1:
		d.errorf(n, path, "has more than one of endpoints, dns and kubernetes: one of them")
	case sources == 0 && !listed: // else each endpoint's problem is said
		d.errorf(n, path, "needs at least one endpoint (endpoints: [http://host:port, …]), a name to resolve (dns: http://name:port) or a Kubernetes Service (kubernetes: { service: NAME })")
	}
	if u.DNS != nil {
		d.check(u.ExpectID != "" && u.DNS.Scheme != "https", d.key(n, "expect_id"), join(path, "expect_id"), "needs an https:// dns name, dns is %s", u.DNS)
	}
	if k := u.Kubernetes; k != nil {
		d.check(u.ExpectID != "" && k.Scheme != "https", d.key(n, "expect_id"), join(path, "expect_id"), "needs kubernetes' scheme: https")
	}
	for i, e := range u.Endpoints {
		d.check(u.ExpectID != "" && e.Scheme != "https", d.key(n, "expect_id"), join(path, "expect_id"), "needs https:// endpoints, endpoints[%d] is %s", i, e)
	}
	d.check(u.CA != nil && u.ExpectID != "", d.key(n, "ca"), join(path, "ca"), "and expect_id: one of them (with expect_id the trust bundle is the gateway's, from tls)")
	d.check(u.CA != nil && !u.https(), d.key(n, "ca"), join(path, "ca"), "is for https: the endpoints are all http://")
	return u
}

// https reports whether u's connections may be TLS: an https:// endpoint,
// dns name or Kubernetes Service scheme.
func (u *Upstream) https() bool {
	if u.DNS != nil && u.DNS.Scheme == "https" || u.Kubernetes != nil && u.Kubernetes.Scheme == "https" {
		return true
	}
	return slices.ContainsFunc(u.Endpoints, func(e *url.URL) bool { return e.Scheme == "https" })
}

// kubernetesService decodes an upstream's kubernetes block.
func (d *decoder) kubernetesService(n *yaml.Node, path string) *KubernetesService {
	k := &KubernetesService{Scheme: "http"}
	d.fields(n, path, []string{"service", "port", "scheme"}, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "service":
			if s, ok := d.str(v, f); ok && d.check(!dnsLabel.MatchString(s), v, f, "must be a Service's name (a DNS label: a-z, 0-9 and '-', at most 63), got %q", s) {
				k.Service = s
			}
		case "port":
			s := deref(v).Value
			if num, err := strconv.Atoi(s); err == nil {
				d.check(num < 1 || num > 65535, v, f, "must be a port's name or a number from 1 to 65535, got %d", num)
			} else {
				d.check(!dnsLabel.MatchString(s) || len(s) > 15, v, f, "must be a port's name (a DNS label of at most 15 characters) or number, got %q", s)
			}
			k.Port = s
		case "scheme":
			if s, ok := d.str(v, f); ok && d.check(s != "http" && s != "https", v, f, `must be "http" or "https", got %q`, s) {
				k.Scheme = s
			}
		}
	})
	d.check(k.Service == "" && deref(n).Kind == yaml.MappingNode, n, path, "needs service: the name of a Kubernetes Service in the gateway's namespace")
	return k
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// retries decodes an upstream's retry policy.
func (d *decoder) retries(n *yaml.Node, path string) Retries {
	r := DefaultRetries()
	d.fields(n, path, retryFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "attempts":
			if a, ok := d.integer(v, f); ok && d.check(a < 0 || a > 10, v, f, "must be 0 to 10, got %d", a) {
				r.Attempts = a
			}
		case "on":
			items, _ := d.list(v, f)
			r.On = nil
			for i, item := range items {
				fi := fmt.Sprintf("%s[%d]", f, i)
				s, ok := d.str(item, fi)
				if !ok {
					continue
				}
				code, err := strconv.Atoi(s)
				switch {
				case s == "connect_failure" || s == "reset" || s == "timeout":
				case err == nil && code >= 500 && code <= 599:
				default:
					d.errorf(item, fi, `must be "connect_failure", "reset", "timeout" or a 5xx status code, got %q`, s)
					continue
				}
				r.On = append(r.On, s)
			}
		case "per_try_timeout":
			d.durationAtLeast(v, f, 0, &r.PerTryTimeout)
		case "budget":
			if s, ok := d.str(v, f); ok {
				b, err := ParseFraction(s)
				if d.check(err != nil || b < 0 || b > 1, v, f, `must be a fraction in [0, 1] or a percentage ("20%%"), got %q`, s) {
					r.Budget = b
				}
			}
		}
	})
	return r
}

// pool decodes an upstream's connection pool.
func (d *decoder) pool(n *yaml.Node, path string) Pool {
	p := DefaultPool
	d.fields(n, path, poolFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "max_connections", "max_pending", "max_idle":
			least := map[string]int{"max_idle": 1}[key]
			if m, ok := d.integer(v, f); ok && d.check(m < least, v, f, "must be %d or more, got %d", least, m) {
				switch key {
				case "max_connections":
					p.MaxConnections = m
				case "max_pending":
					p.MaxPending = m
				default:
					p.MaxIdle = m
				}
			}
		case "idle_timeout":
			d.durationAtLeast(v, f, 0, &p.IdleTimeout)
		}
	})
	d.check(p.MaxPending > 0 && p.MaxConnections == 0, d.key(n, "max_pending"), join(path, "max_pending"), "needs max_connections")
	return p
}

// health decodes an upstream's health check.
func (d *decoder) health(n *yaml.Node, path string) *HealthCheck {
	h := &HealthCheck{Interval: 5 * time.Second, Timeout: 2 * time.Second, Status: 200, Healthy: 2, Unhealthy: 3}
	hasPath := false
	d.fields(n, path, healthFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "path":
			hasPath = true
			if p, ok := d.str(v, f); ok && d.check(!strings.HasPrefix(p, "/"), v, f, `must start with "/", got %q`, p) {
				h.Path = p
			}
		case "interval":
			d.durationAtLeast(v, f, 100*time.Millisecond, &h.Interval)
		case "timeout":
			d.durationAtLeast(v, f, 0, &h.Timeout)
		case "status":
			if s, ok := d.integer(v, f); ok && d.check(s < 100 || s > 599, v, f, "must be an HTTP status, got %d", s) {
				h.Status = s
			}
		case "healthy", "unhealthy":
			if c, ok := d.integer(v, f); ok && d.check(c < 1, v, f, "must be at least 1, got %d", c) {
				if key == "healthy" {
					h.Healthy = c
				} else {
					h.Unhealthy = c
				}
			}
		}
	})
	if !hasPath {
		d.errorf(n, path, `missing field "path"`)
	}
	h.Timeout = min(h.Timeout, h.Interval)
	return h
}

// origin is an endpoint as it is dialled: its scheme, host and port, the
// scheme's default port when it names none (http://a is http://a:80).
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port)
}

// parseEndpoint checks an upstream endpoint: an http(s) origin.
func parseEndpoint(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		return nil, fmt.Errorf("endpoint %q: want http://host:port or https://host:port", s)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("invalid endpoint %q: %v", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("endpoint %q: want http:// or https://", s)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("endpoint %q: no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return nil, fmt.Errorf("endpoint %q: want an origin (scheme://host:port), without path, query or user", s)
	}
	host := u.Host
	if p := u.Port(); p != "" {
		// Written as the port it is (09102 is 9102: the same endpoint).
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("endpoint %q: port %s is not one from 1 to 65535", s, p)
		}
		host = net.JoinHostPort(u.Hostname(), strconv.Itoa(n))
	}
	return &url.URL{Scheme: u.Scheme, Host: strings.ToLower(host)}, nil
}

// uncommented is a copy of the tree at n without its comments: which node
// of a file's tree holds a comment depends on how much of the file was
// parsed with it (config.Parser parses pieces), and an edit writes this
// node back.
func uncommented(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	c := *n
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	if len(n.Content) > 0 {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, k := range n.Content {
			c.Content[i] = uncommented(k)
		}
	}
	return &c
}
