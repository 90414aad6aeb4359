package dataplane

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/modules"
)

// The sockets that carry a version's traffic are coloured through the
// bpf.Colourer: the client connection while it answers one of the version's
// requests, and the connections of the version's http_calls. An in-process
// call has no socket: it colours nothing, but the callee's own http_calls
// carry the callee's colour. The control plane assigns the colours
// (Snapshot.Colours).

// connKey finds the client connection of a request in its context.
type connKey struct{}

// WithConn records c as the client connection of the requests served with
// ctx: the ConnContext of the gateway's servers.
func WithConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &clientConn{Conn: c})
}

func connFrom(ctx context.Context) *clientConn {
	c, _ := ctx.Value(connKey{}).(*clientConn)
	return c
}

// clientConn is a client connection and the colour its requests last gave
// it, kept with the connection (its context) rather than in a map of all
// of them, which with 10,000 connections cost a cache miss or two a
// request.
type clientConn struct {
	net.Conn

	mu     sync.Mutex // HTTP/2 streams colour their connection at once
	colour connColour // none (zero) until a request colours it
}

// connColour is what a client connection was last coloured with.
type connColour struct {
	colour bpf.Colour
	dscp   int
}

// colourConn colours req's client connection with its version's colour
// and DSCP: a version without a colour (none left) takes the colour an
// earlier request gave the connection off it, not that version's.
func (p *Plane) colourConn(req *Request) {
	if p.opts.Colourer == nil || req.Conn == nil {
		return
	}
	if err := p.setConnColour(req.Conn, connColour{req.colour, req.Version.DSCP}); err != nil {
		p.log.Warn("colouring a connection", "service", req.Service.Name, "version", modules.Short(req.Version.Digest), "error", err)
	}
}

// countConn records a client's request's traffic for the fallback's
// userspace counters; an in-process call has no socket to count.
func (p *Plane) countConn(req *Request) {
	if req.Caller == nil {
		p.count(req.colour, req.BodyLen, req.Bytes)
	}
}

// setConnColour colours conn unless it already has that colour: a
// keep-alive connection serving one version skips the syscalls.
func (p *Plane) setConnColour(conn *clientConn, want connColour) error {
	sc := syscallConn(conn.Conn)
	if sc == nil {
		return nil
	}
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if conn.colour == want {
		return nil
	}
	if err := p.opts.Colourer.SetColour(sc, want.colour, want.dscp); err != nil {
		return err
	}
	conn.colour = want
	return nil
}

// uncolourConn removes any colour (and DSCP) req's client connection
// carries from an earlier request.
func (p *Plane) uncolourConn(req *Request) {
	if p.opts.Colourer == nil || req.Conn == nil {
		return
	}
	_ = p.setConnColour(req.Conn, connColour{}) // nothing done for one never coloured
}

// syscallConn finds the socket under c (through TLS).
func syscallConn(c net.Conn) syscall.Conn {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	sc, _ := c.(syscall.Conn)
	return sc
}

// count records traffic for the fallback's userspace counters; the eBPF
// colourer counts in the kernel and ignores it.
func (p *Plane) count(c bpf.Colour, in, out int) {
	if p.opts.Colourer == nil || c == 0 {
		return
	}
	p.opts.Colourer.Count(c, bpf.Ingress, in)
	p.opts.Colourer.Count(c, bpf.Egress, out)
}

// outboundClients holds one HTTP client per (colour, expected peer), so that
// pooled connections never carry another version's colour nor another
// target's identity check.
type outboundClients struct {
	mu      sync.Mutex
	clients map[clientKey]*http.Client
}

type clientKey struct {
	colour   bpf.Colour
	dscp     int // a reload may change a version's, or give its colour to another version
	expectID string
}

// clientFor returns the client for the http_calls of a version with colour c
// and dscp to a target that must present expectID ("" for ordinary TLS).
func (p *Plane) clientFor(c bpf.Colour, dscp int, expectID string) (*http.Client, error) {
	if p.opts.Colourer == nil {
		c = 0
	}
	if c == 0 && expectID == "" {
		return p.opts.HTTPClient, nil
	}
	key := clientKey{c, dscp, expectID}
	if c == 0 {
		key.dscp = 0 // uncoloured: not set
	}
	p.outbound.mu.Lock()
	defer p.outbound.mu.Unlock()
	if cl, ok := p.outbound.clients[key]; ok {
		return cl, nil
	}
	tr := newTransport()
	if expectID != "" {
		if p.opts.Identity == nil {
			return nil, fmt.Errorf("expect_id %s needs the gateway's tls identity", expectID)
		}
		id, err := spiffeid.FromString(expectID)
		if err != nil {
			return nil, err
		}
		tr.tls = identity.ClientConfig(p.opts.Identity, id)
		tr.fallback.TLSClientConfig = tr.tls
	}
	if c != 0 {
		tr.dial = p.colouringDialer(config.DefaultConnectTimeout, func() (bpf.Colour, int) { return c, dscp }).DialContext
		tr.fallback.DialContext = tr.dial
	}
	cl := newClient(tr)
	if p.outbound.clients == nil {
		p.outbound.clients = map[clientKey]*http.Client{}
	}
	p.outbound.clients[key] = cl
	return cl, nil
}

// colouringDialer is a dialer (timeout, TCP keep-alives every 30 s) whose
// sockets take the colour and DSCP that colour returns at each dial (colour
// 0: none) before they connect, so that the handshake carries them too. A
// socket the Colourer refuses connects uncoloured: colouring marks
// traffic, it does not decide whether it flows.
func (p *Plane) colouringDialer(timeout time.Duration, colour func() (bpf.Colour, int)) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if col := p.opts.Colourer; col != nil {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			if c, dscp := colour(); c != 0 {
				_ = col.SetColour(bpf.RawConn{RawConn: rc}, c, dscp)
			}
			return nil
		}
	}
	return d
}

// ColourStatus is one colour with its live counters.
type ColourStatus struct {
	Colour  bpf.Colour `json:"colour"`
	Service string     `json:"service"`
	Version string     `json:"version"`
	DSCP    int        `json:"dscp,omitempty"`
	bpf.Counter
}

// rebaseColours notes, for each colour s gives a version that old did not
// give it to (freed by another version and given again), the colour's
// counters now: the kernel's counters are the colour's since the process
// started, and the version's figures start from them (Colours).
func (p *Plane) rebaseColours(old, s *Snapshot) {
	if p.opts.Colourer == nil || len(s.Colours) == 0 {
		return
	}
	var was map[bpf.Colour]string
	if old != nil {
		was = make(map[bpf.Colour]string, len(old.Colours))
		for k, c := range old.Colours {
			was[c] = k
		}
	}
	var changed []bpf.Colour
	for k, c := range s.Colours {
		if c != 0 && was[c] != k {
			changed = append(changed, c)
		}
	}
	if len(changed) == 0 {
		return
	}
	counters, err := p.opts.Colourer.Counters()
	if err != nil {
		return
	}
	for _, c := range changed {
		p.colourBase.Store(c, counters[c])
	}
}

// since is what n counted past base.
func since(n, base bpf.Counter) bpf.Counter {
	sub := func(a, b uint64) uint64 { return a - min(a, b) }
	return bpf.Counter{EgressPackets: sub(n.EgressPackets, base.EgressPackets), EgressBytes: sub(n.EgressBytes, base.EgressBytes),
		IngressPackets: sub(n.IngressPackets, base.IngressPackets), IngressBytes: sub(n.IngressBytes, base.IngressBytes)}
}

// Colours describes the colours of the snapshot being served, with live
// counters (a version's since it was given its colour): mode and reason
// are the Colourer's ("off" without one).
func (p *Plane) Colours() (mode, reason string, out []ColourStatus, err error) {
	if p.opts.Colourer == nil {
		return "off", "no colourer", nil, nil
	}
	counters, err := p.opts.Colourer.Counters()
	if err != nil {
		return "", "", nil, err
	}
	if st := p.snap.Load(); st != nil {
		for _, s := range st.Config.Services {
			for _, v := range s.Versions {
				if c := st.Colours[ColourKey(s.Name, v.Digest)]; c != 0 {
					n := counters[c]
					if base, ok := p.colourBase.Load(c); ok {
						n = since(n, base.(bpf.Counter))
					}
					out = append(out, ColourStatus{Colour: c, Service: s.Name, Version: v.Digest, DSCP: v.DSCP, Counter: n})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Colour < out[j].Colour })
	return p.opts.Colourer.Mode(), p.opts.Colourer.Reason(), out, nil
}

// colourCollector exports the colour counters to Prometheus.
type colourCollector struct {
	p              *Plane
	packets, bytes *prometheus.Desc
	mode           *prometheus.Desc
}

func newColourCollector(p *Plane) *colourCollector {
	labels := []string{"service", "version", "direction"}
	return &colourCollector{p: p,
		packets: prometheus.NewDesc("wasmesh_colour_packets_total", "Packets of a version's connections (in fallback mode: reads and writes).", labels, nil),
		bytes:   prometheus.NewDesc("wasmesh_colour_bytes_total", "Bytes of a version's connections.", labels, nil),
		mode:    prometheus.NewDesc("wasmesh_colour_mode", "1 for the colouring mode in use: ebpf, fallback or off.", []string{"mode"}, nil),
	}
}

func (c *colourCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.packets
	ch <- c.bytes
	ch <- c.mode
}

func (c *colourCollector) Collect(ch chan<- prometheus.Metric) {
	mode, _, colours, err := c.p.Colours()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.mode, prometheus.GaugeValue, 1, mode)
	for _, s := range colours {
		v := modules.Short(s.Version)
		for _, m := range []struct {
			dir            string
			packets, bytes uint64
		}{{"egress", s.EgressPackets, s.EgressBytes}, {"ingress", s.IngressPackets, s.IngressBytes}} {
			ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(m.packets), s.Service, v, m.dir)
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(m.bytes), s.Service, v, m.dir)
		}
	}
}
