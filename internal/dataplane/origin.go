package dataplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/wasmesh/wasmesh/internal/http1"
)

// newTransport is the transport of outbound calls.
func newTransport() *originTransport {
	return &originTransport{fallback: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
}

// originTransport sends guests' calls to http(s) targets with the client
// of upstream versions (internal/http1: a pool of kept-alive connections
// per origin, bounded response heads, a stale connection's request sent
// again), but through an HTTP proxy ($HTTPS_PROXY, $HTTP_PROXY), which
// goes by net/http's Transport.
type originTransport struct {
	tls      *tls.Config // the https targets', default the system roots
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	fallback *http.Transport

	mu      sync.Mutex
	origins map[string]*http1.Client // by scheme://host:port
}

func (t *originTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "http" && r.URL.Scheme != "https" {
		return nil, fmt.Errorf("unsupported scheme %q", r.URL.Scheme)
	}
	if px, err := t.fallback.Proxy(r); px != nil || err != nil {
		return t.fallback.RoundTrip(r)
	}
	addr := hostPort(r.URL)
	key := r.URL.Scheme + "://" + addr
	t.mu.Lock()
	c := t.origins[key]
	if c == nil {
		c = &http1.Client{Addr: addr, DialContext: t.dial, MaxIdle: 64}
		if r.URL.Scheme == "https" {
			c.TLS = t.tls
			if c.TLS == nil {
				c.TLS = &tls.Config{}
			}
		}
		if t.origins == nil {
			t.origins = map[string]*http1.Client{}
		}
		t.origins[key] = c
	}
	t.mu.Unlock()
	return c.RoundTrip(r)
}

// CloseIdleConnections closes every origin's idle connections.
func (t *originTransport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.origins {
		c.CloseIdleConnections()
	}
	t.fallback.CloseIdleConnections()
}
