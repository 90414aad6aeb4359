package dataplane

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/telemetry"
	"github.com/wasmesh/wasmesh/router"
	"github.com/wasmesh/wasmesh/wasi"
)

// Options configure a Plane.
type Options struct {
	// CacheDir is wazero's compilation cache. Default "": none.
	CacheDir string
	// FreshInstances creates an instance for every request instead of
	// resetting and reusing them (host.Options.FreshInstances). Default false.
	FreshInstances bool
	// Logger receives the access log and events. Default slog.Default().
	Logger *slog.Logger
	// TracerProvider makes the request path's spans. Default: a provider
	// that records nothing (telemetry.NewUnrecordedProvider) but still gives
	// every request a trace id and carries inbound trace context through
	// guests to their calls.
	// Spans under a request's follow its sampling decision (a parent-based
	// sampler's rule): an unsampled request starts no child spans.
	TracerProvider trace.TracerProvider
	// HTTPClient sends guests' calls to http(s) targets when their
	// connections are not coloured. Default: a client with a pooled
	// transport that does not follow redirects.
	HTTPClient *http.Client
	// Colourer colours the sockets of each version's traffic. Default nil:
	// none.
	Colourer bpf.Colourer
	// Identity is the gateway's SPIFFE identity, for calls to outbound
	// entries with expect_id. Default nil.
	Identity identity.X509Source
	// NetHTTP says HTTP/1 requests come from net/http's server (serve
	// --net-http), which bounds a head's bytes only: the request path then
	// checks http.max_headers and http.max_request_line for them, as it
	// checks the first for HTTP/2's. Default false: wasmesh's own HTTP/1
	// server checks both.
	NetHTTP bool
	// Discovery follows the endpoints of the Kubernetes Services that
	// upstream versions name. Default nil: such versions have no
	// endpoints, and say why.
	Discovery Discovery
}

// Discovery follows Kubernetes Services' endpoints (internal/kube).
type Discovery interface {
	// Follow calls update with svc's endpoints, "host:port" each, at once
	// and whenever they change, until ctx ends: those ready, or, when
	// none is, those still serving while they terminate. With none, why
	// says why.
	Follow(ctx context.Context, svc config.KubernetesService, update func(hosts []string, why string))
}

// Snapshot is one generation of config as the request path serves it:
// immutable once published with Swap, and shared by every request that
// started on it.
type Snapshot struct {
	Gen      int64
	Hash     string // sha256 of the config's bytes
	LoadedAt time.Time
	Config   *config.Config // with every version's digest (router.Table.Config)
	Table    *router.Table
	Modules  map[string]*host.Module        // by digest
	Colours  map[string]bpf.Colour          // by ColourKey
	Peers    map[string]*identity.AllowList // by service, for those with allow_peers
	// LanePeers are the peers whose requests' lane is honoured (lane_peers);
	// nil for none.
	LanePeers *identity.AllowList
	// Links are, by service and by the interface its components import
	// (as component.Interface gives it), the service that serves their
	// typed calls: checked at load (control), the types of both sides the
	// same.
	Links map[string]map[string]string

	calls  map[string]*config.Route // by service: the route of in-process calls to it
	series sync.Map                 // seriesKey → *series, made as requests come
	envs   sync.Map                 // service → its env for components ([][2]string), made at first use
	links  sync.Map                 // linkSeriesKey → *linkSeries, made as link calls come
}

// ColourKey names a version of a service in Snapshot.Colours.
func ColourKey(service, digest string) string { return service + "@" + digest }

// Plane is the request path: it serves requests by the current Snapshot,
// runs their guests in its engine, and makes their outbound calls.
type Plane struct {
	opts    Options
	engine  *host.Engine
	log     *slog.Logger
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	metrics *telemetry.Metrics

	snap     atomic.Pointer[Snapshot]
	draining atomic.Bool
	// bodyMemory is what requests' bodies read into memory hold, all
	// together (heldBody), bounded by http.max_body_memory.
	bodyMemory atomic.Int64
	// noFigures leaves the versions' figures (VersionStats) uncounted:
	// only the benchmark that measures what they cost sets it.
	noFigures bool

	stats      sync.Map // service+"\x00"+digest → *VersionStats
	laneHealth sync.Map // laneHealthKey → *laneHealth
	upstreams  sync.Map // ColourKey(service, digest) → *upstreamPool, of upstream versions
	// upstreamSeries counts the pools that share each upstream endpoint's
	// metrics.
	upstreamSeries upstreamSeries
	// resolver resolves upstreams' dns names: net.DefaultResolver but in tests.
	resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
	limiters sync.Map // service name → *limiter

	outbound outboundClients
	// colourBase is, by colour, its counters when it was last given to a
	// version that did not have it (a colour freed and given again): what
	// that version's figures start from.
	colourBase sync.Map // bpf.Colour → bpf.Counter

	// A component's outgoing requests and typed calls go to these (made
	// once: a method value per request would be an allocation).
	outboundFn func(context.Context, *wasi.OutboundRequest) (*wasi.OutboundResponse, int)
	admitFn    func(context.Context, *wasi.OutboundRequest) int
	linkFn     func(ctx context.Context, iface, fn string, args []any) (any, error)
}

// New returns a plane with no snapshot: it answers 503 until Swap. Its
// engine holds the compiled modules; Close releases it.
func New(ctx context.Context, opts Options) (*Plane, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = telemetry.NewUnrecordedProvider()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = newClient(newTransport())
	}
	p := &Plane{
		opts:   opts,
		log:    opts.Logger,
		tracer: opts.TracerProvider.Tracer("github.com/wasmesh/wasmesh/mesh"),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	p.resolver = net.DefaultResolver
	p.outboundFn, p.admitFn, p.linkFn = p.componentOutbound, p.componentAdmit, p.linkCall
	eng, err := host.New(ctx, host.Options{CacheDir: opts.CacheDir, Imports: imports{p}, FreshInstances: opts.FreshInstances, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	p.engine = eng
	p.metrics = telemetry.NewMetrics(p.collectors()...)
	return p, nil
}

// Close stops the upstreams' health checks and releases the engine and
// the compiled modules.
func (p *Plane) Close(ctx context.Context) error {
	p.upstreams.Range(func(_, u any) bool {
		u.(*upstreamPool).close()
		return true
	})
	return p.engine.Close(ctx)
}

// Engine is the engine that runs the plane's guests: the control plane
// compiles modules into it.
func (p *Plane) Engine() *host.Engine { return p.engine }

// Metrics are the gateway's Prometheus series.
func (p *Plane) Metrics() *telemetry.Metrics { return p.metrics }

// Snapshot returns the snapshot being served, nil before the first Swap.
func (p *Plane) Snapshot() *Snapshot { return p.snap.Load() }

// Swap makes s the snapshot that requests from now on are served by and
// returns the one it replaces. Requests in flight finish on theirs.
func (p *Plane) Swap(s *Snapshot) (old *Snapshot) {
	if s.calls == nil { // not yet published: nothing reads it
		s.calls = make(map[string]*config.Route, len(s.Config.Services))
		for name := range s.Config.Services {
			s.calls[name] = &config.Route{Name: "wasmesh://" + name, Service: name}
		}
	}
	p.shareEvictions(s)
	p.startUpstreams(s)
	p.rebaseColours(p.snap.Load(), s)
	old = p.snap.Swap(s)
	p.dropUpstreams(s)
	return old
}

// Drain marks the plane as draining: /readyz fails (a request stopped by
// the drain deadline is told by its context's cause, ErrDrainDeadline).
func (p *Plane) Drain() {
	p.draining.Store(true)
	p.metrics.Draining.Set(1)
}

// Idle waits until no request is in the request path (their access log
// lines written), or ctx ends. A drain calls it after closing the
// connections, whose handlers return as they find them closed: net/http's
// Close does not wait for them.
func (p *Plane) Idle(ctx context.Context) error {
	for p.metrics.Inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// ErrDrainDeadline is the cause the gateway cancels its requests' base
// context with when the drain's deadline passes: a request whose context
// ended with it was stopped by the drain (503, neither the client's fault
// nor the version's), one whose context ended otherwise lost its client.
var ErrDrainDeadline = errors.New("stopped at the drain's deadline")

// drainStopped reports whether ctx ended at the drain's deadline.
func drainStopped(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), ErrDrainDeadline)
}

// Draining reports whether Drain was called.
func (p *Plane) Draining() bool { return p.draining.Load() }

// VersionStats counts what one version of a service served since the
// process started: requests, those answered 500 or more, and their
// latencies.
type VersionStats struct {
	Requests, Errors atomic.Int64
	Latency          Latencies
}

// Latencies is a histogram of request durations: bucket i counts those up
// to latencyBase × latencyGrowth^i (50 µs growing by a quarter: about a
// minute at the last), the last bucket those above.
type Latencies struct {
	buckets [latencyBuckets + 1]atomic.Int64
}

const (
	latencyBuckets = 64
	latencyBase    = 50 * time.Microsecond
	latencyGrowth  = 1.25
)

var latencyBounds = func() (b [latencyBuckets]time.Duration) {
	f := float64(latencyBase)
	for i := range b {
		b[i] = time.Duration(f)
		f *= latencyGrowth
	}
	return b
}()

// Observe counts a request that took d.
func (l *Latencies) Observe(d time.Duration) {
	i, _ := slices.BinarySearch(latencyBounds[:], d)
	l.buckets[i].Add(1)
}

// LatencySnapshot is what a Latencies had counted at one time.
type LatencySnapshot [latencyBuckets + 1]int64

// Snapshot reads the counts.
func (l *Latencies) Snapshot() (s LatencySnapshot) {
	for i := range l.buckets {
		s[i] = l.buckets[i].Load()
	}
	return s
}

// Count is how many requests were counted between snapshots from and to.
func Count(from, to LatencySnapshot) int64 {
	var n int64
	for i := range to {
		n += to[i] - from[i]
	}
	return n
}

// Quantile is the q quantile (0.99 for p99) of the requests counted
// between snapshots from and to: the upper bound of the bucket it falls
// in; 0 when there were none.
func Quantile(from, to LatencySnapshot, q float64) time.Duration {
	total := Count(from, to)
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range to {
		if seen += to[i] - from[i]; seen >= rank {
			if i == latencyBuckets {
				return latencyBounds[latencyBuckets-1] * 2
			}
			return latencyBounds[i]
		}
	}
	return latencyBounds[latencyBuckets-1] * 2
}

// Stats returns the counts of version digest of service.
func (p *Plane) Stats(service, digest string) *VersionStats {
	key := service + "\x00" + digest
	if s, ok := p.stats.Load(key); ok {
		return s.(*VersionStats)
	}
	s, _ := p.stats.LoadOrStore(key, &VersionStats{})
	return s.(*VersionStats)
}

// collectors read the plane's live state for Prometheus.
func (p *Plane) collectors() []prometheus.Collector {
	engineStat := func(stat func(host.Stats) int64) func() float64 {
		return func() float64 { return float64(stat(p.engine.Stats())) }
	}
	counter := func(name, help, label, value string, stat func(host.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{label: value}}, engineStat(stat))
	}
	const (
		instancesHelp = "Guest instances of reusable modules, by event: created, reused, discarded, expired (closed after the idle timeout)."
		compilesHelp  = "Module compilations asked of the engine, by result: hit (already compiled) or miss."
	)
	instances := func(event string, stat func(host.Stats) int64) prometheus.Collector {
		return counter("wasmesh_instances_total", instancesHelp, "event", event, stat)
	}
	compiles := func(result string, stat func(host.Stats) int64) prometheus.Collector {
		return counter("wasmesh_compile_total", compilesHelp, "result", result, stat)
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wasmesh_guest_instances",
			Help: "Guest instances running now.",
		}, engineStat(func(s host.Stats) int64 { return s.Active })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wasmesh_request_body_memory_bytes",
			Help: "Bytes of requests' bodies held in memory now, all requests' together (bounded by http.max_body_memory).",
		}, func() float64 { return float64(p.bodyMemory.Load()) }),
		compiles("hit", func(s host.Stats) int64 { return s.CompileHits }),
		compiles("miss", func(s host.Stats) int64 { return s.CompileMisses }),
		instances("created", func(s host.Stats) int64 { return s.InstancesCreated }),
		instances("reused", func(s host.Stats) int64 { return s.InstancesReused }),
		instances("discarded", func(s host.Stats) int64 { return s.InstancesDiscarded }),
		instances("expired", func(s host.Stats) int64 { return s.InstancesExpired }),
		&queueCollector{p: p, desc: prometheus.NewDesc("wasmesh_queue_depth",
			"Requests waiting for a slot of a service's max_concurrency.", []string{"service"}, nil)},
		newColourCollector(p),
		newUpstreamCollector(p),
	}
	if c, ok := p.opts.TracerProvider.(prometheus.Collector); ok { // telemetry.Provider: its spans' fate
		cs = append(cs, c)
	}
	return cs
}
