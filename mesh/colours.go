package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/atomicfile"
	"github.com/wasmesh/wasmesh/modules"
)

// Colours: each (service, version) gets the lowest free colour when it first
// appears in a config, kept in <store>/colours.json so that it stays the
// same across reloads and restarts while the version exists; a colour is
// freed when its version leaves the config. The sockets that carry a
// version's traffic — the client connection while it answers one of the
// version's requests, and the connections of the version's http_calls — are
// coloured through a bpf.Colourer.

// colourFile is where a store keeps the colour table.
const colourFile = "colours.json"

func colourKey(service, digest string) string { return service + "@" + digest }

// assignColours gives every version of cfg a colour, keeping those already
// assigned, and saves the table. Versions beyond the colourer's range get
// none (0), with a warning.
func (g *Gateway) assignColours(cfg *config.Config) (map[string]bpf.Colour, error) {
	path := filepath.Join(cfg.Store, colourFile)
	old := map[string]bpf.Colour{}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &old); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	var keys []string
	for _, s := range cfg.Services {
		for _, v := range s.Versions {
			keys = append(keys, colourKey(s.Name, v.Digest))
		}
	}
	sort.Strings(keys)
	table, used := map[string]bpf.Colour{}, map[bpf.Colour]bool{}
	for _, k := range keys {
		if c, ok := old[k]; ok && c != 0 && c <= g.maxColour {
			table[k], used[c] = c, true
		}
	}
	next := bpf.Colour(1)
	for _, k := range keys {
		if _, ok := table[k]; ok {
			continue
		}
		for used[next] {
			next++
		}
		if next > g.maxColour {
			g.log.Warn("no colour left for a version: its packets are not coloured", "version", k, "max", g.maxColour)
			continue
		}
		table[k], used[next] = next, true
	}
	out, _ := json.MarshalIndent(table, "", "  ")
	if err := atomicfile.WriteFile(path, append(out, '\n'), 0o644, ""); err != nil {
		return nil, err
	}
	return table, nil
}

// connKey finds the client connection of a request in its context.
type connKey struct{}

func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// colourConn colours the connection r arrived on with c, version v of
// service s's colour (0: none, nothing done).
func (g *Gateway) colourConn(r *http.Request, s *config.Service, v *config.Version, c bpf.Colour) {
	if g.opts.Colourer == nil || c == 0 {
		return
	}
	conn, _ := r.Context().Value(connKey{}).(net.Conn)
	if err := g.setConnColour(conn, connColour{c, v.DSCP}); err != nil {
		g.log.Warn("colouring a connection", "service", s.Name, "version", modules.Short(v.Digest), "error", err)
	}
}

// connColour is what a client connection was last coloured with.
type connColour struct {
	colour bpf.Colour
	dscp   int
}

// setConnColour colours conn unless it already has that colour: a
// keep-alive connection serving one version skips the syscalls.
func (g *Gateway) setConnColour(conn net.Conn, want connColour) error {
	sc := syscallConn(conn)
	if sc == nil {
		return nil
	}
	if have, ok := g.connColours.Load(conn); ok && have.(connColour) == want {
		return nil
	}
	if err := g.opts.Colourer.SetColour(sc, want.colour, want.dscp); err != nil {
		return err
	}
	g.connColours.Store(conn, want)
	return nil
}

// forgetConn drops what setConnColour remembers of a closed connection.
func (g *Gateway) forgetConn(c net.Conn, state http.ConnState) {
	if state == http.StateClosed || state == http.StateHijacked {
		g.connColours.Delete(c)
	}
}

// uncolourConn removes any colour (and DSCP) the connection r arrived on
// carries from an earlier request.
func (g *Gateway) uncolourConn(r *http.Request) {
	if g.opts.Colourer == nil || r == nil {
		return
	}
	conn, _ := r.Context().Value(connKey{}).(net.Conn)
	if _, coloured := g.connColours.Load(conn); coloured {
		_ = g.setConnColour(conn, connColour{0, 0})
	}
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
func (g *Gateway) count(c bpf.Colour, in, out int) {
	if g.opts.Colourer == nil || c == 0 {
		return
	}
	g.opts.Colourer.Count(c, bpf.Ingress, in)
	g.opts.Colourer.Count(c, bpf.Egress, out)
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
	expectID string
}

// clientFor returns the client for the http_calls of a version with colour c
// and dscp to a target that must present expectID ("" for ordinary TLS).
func (g *Gateway) clientFor(c bpf.Colour, dscp int, expectID string) (*http.Client, error) {
	if g.opts.Colourer == nil {
		c = 0
	}
	if c == 0 && expectID == "" {
		return g.opts.HTTPClient, nil
	}
	key := clientKey{c, expectID}
	g.outbound.mu.Lock()
	defer g.outbound.mu.Unlock()
	if cl, ok := g.outbound.clients[key]; ok {
		return cl, nil
	}
	tr := newTransport()
	if expectID != "" {
		if g.opts.Identity == nil {
			return nil, fmt.Errorf("expect_id %s needs the gateway's tls identity", expectID)
		}
		id, err := spiffeid.FromString(expectID)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = identity.ClientConfig(g.opts.Identity, id)
		tr.ForceAttemptHTTP2 = true
	}
	if c != 0 {
		dialer := &net.Dialer{}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				if sc := syscallConn(conn); sc != nil {
					_ = g.opts.Colourer.SetColour(sc, c, dscp)
				}
			}
			return conn, err
		}
	}
	cl := newClient(tr)
	if g.outbound.clients == nil {
		g.outbound.clients = map[clientKey]*http.Client{}
	}
	g.outbound.clients[key] = cl
	return cl, nil
}

// ColourStatus is one colour in GET /v1/colours.
type ColourStatus struct {
	Colour  bpf.Colour `json:"colour"`
	Service string     `json:"service"`
	Version string     `json:"version"`
	DSCP    int        `json:"dscp,omitempty"`
	bpf.Counter
}

// Colours describes the active colour table with live counters.
func (g *Gateway) Colours() (mode, reason string, out []ColourStatus, err error) {
	if g.opts.Colourer == nil {
		return "off", "no colourer", nil, nil
	}
	counters, err := g.opts.Colourer.Counters()
	if err != nil {
		return "", "", nil, err
	}
	st := g.state.Load()
	if st != nil {
		for _, s := range st.cfg.Services {
			for _, v := range s.Versions {
				if c := st.colours[colourKey(s.Name, v.Digest)]; c != 0 {
					out = append(out, ColourStatus{Colour: c, Service: s.Name, Version: v.Digest, DSCP: v.DSCP, Counter: counters[c]})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Colour < out[j].Colour })
	return g.opts.Colourer.Mode(), g.opts.Colourer.Reason(), out, nil
}

// colourCollector exports the colour counters to Prometheus.
type colourCollector struct {
	g              *Gateway
	packets, bytes *prometheus.Desc
	mode           *prometheus.Desc
}

func newColourCollector(g *Gateway) *colourCollector {
	labels := []string{"service", "version", "direction"}
	return &colourCollector{g: g,
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
	mode, _, colours, err := c.g.Colours()
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
