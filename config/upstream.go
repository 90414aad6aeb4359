package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
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
	// fewer requests in flight of two chosen at random, as Envoy does) or
	// "round_robin".
	LB string
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
	// HTTP2 makes the calls h2: over TLS for https endpoints, h2c with
	// prior knowledge for http ones. Default false: HTTP/1.1, the
	// gateway's own client (internal/http1), kept-alive connections.
	HTTP2 bool
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
	upstreamFields = []string{"endpoints", "lb", "health", "max_requests", "expect_id", "http2"}
	healthFields   = []string{"path", "interval", "timeout", "status", "healthy", "unhealthy"}
)

// IsUpstream reports whether the version proxies to an upstream.
func (v *Version) IsUpstream() bool { return v.Upstream != nil }

// UpstreamDigest is an upstream version's address, as a module version's
// is the sha256 of its module: the sha256 of its endpoints and balancing,
// so that the same upstream is the same version in every config.
func (u *Upstream) UpstreamDigest() string {
	var b strings.Builder
	b.WriteString("wasmesh-upstream\nlb " + u.LB + "\n")
	if u.MaxRequests > 0 {
		fmt.Fprintf(&b, "max_requests %d\n", u.MaxRequests)
	}
	if u.ExpectID != "" {
		b.WriteString("expect_id " + u.ExpectID + "\n")
	}
	if u.HTTP2 {
		b.WriteString("http2\n")
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

// upstream decodes a version's upstream block.
func (d *decoder) upstream(n *yaml.Node, path string) *Upstream {
	u := &Upstream{LB: "least_request"}
	d.fields(n, path, upstreamFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "endpoints":
			items, _ := d.list(v, f)
			for i, item := range items {
				fi := fmt.Sprintf("%s[%d]", f, i)
				if s, ok := d.str(item, fi); ok {
					e, err := parseEndpoint(s)
					if d.check(err != nil, item, fi, "%v", err) {
						u.Endpoints = append(u.Endpoints, e)
					}
				}
			}
		case "lb":
			if s, ok := d.str(v, f); ok && d.check(s != "least_request" && s != "round_robin", v, f, `must be "least_request" or "round_robin", got %q`, s) {
				u.LB = s
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
		case "http2":
			u.HTTP2, _ = d.boolean(v, f)
		case "max_requests":
			if m, ok := d.integer(v, f); ok && d.check(m < 1, v, f, "must be at least 1, got %d", m) {
				u.MaxRequests = m
			}
		}
	})
	if len(u.Endpoints) == 0 {
		d.errorf(n, path, "needs at least one endpoint (endpoints: [http://host:port, …])")
	}
	for i, e := range u.Endpoints {
		d.check(u.ExpectID != "" && e.Scheme != "https", d.key(n, "expect_id"), join(path, "expect_id"), "needs https:// endpoints, endpoints[%d] is %s", i, e)
	}
	return u
}

// health decodes an upstream's health check.
func (d *decoder) health(n *yaml.Node, path string) *HealthCheck {
	h := &HealthCheck{Interval: 5 * time.Second, Timeout: 2 * time.Second, Status: 200, Healthy: 2, Unhealthy: 3}
	d.fields(n, path, healthFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "path":
			if p, ok := d.str(v, f); ok && d.check(!strings.HasPrefix(p, "/"), v, f, `must start with "/", got %q`, p) {
				h.Path = p
			}
		case "interval":
			if t, ok := d.duration(v, f); ok && d.check(t < 100*time.Millisecond, v, f, "must be at least 100ms, got %s", t) {
				h.Interval = t
			}
		case "timeout":
			if t, ok := d.duration(v, f); ok && d.check(t <= 0, v, f, "must be greater than 0") {
				h.Timeout = t
			}
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
	if h.Path == "" {
		d.errorf(n, path, `missing field "path"`)
	}
	h.Timeout = min(h.Timeout, h.Interval)
	return h
}

// parseEndpoint checks an upstream endpoint: an http(s) origin.
func parseEndpoint(s string) (*url.URL, error) {
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
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}
