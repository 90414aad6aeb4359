package mesh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/modules/oci"
	"github.com/wasmesh/wasmesh/router"
)

// Options configure a Gateway.
type Options struct {
	// ConfigPath is the config file; deploy, promote and rollback rewrite it.
	ConfigPath string
	// CacheDir is wazero's compilation cache. Default "": none.
	CacheDir string
	// Logger receives the access log and events. Default slog.Default().
	Logger *slog.Logger
	// TracerProvider makes the gateway's spans. Default: an SDK provider that
	// exports nothing but still gives every request a trace id and carries
	// inbound trace context through guests to their outbound calls.
	TracerProvider trace.TracerProvider
	// HTTPClient sends guests' outbound calls to http(s) targets when their
	// connections are not coloured. Default: a client with a pooled transport.
	HTTPClient *http.Client
	// Colourer colours the sockets of each version's traffic. Default nil:
	// none. Colours are kept in the store's colours.json.
	Colourer bpf.Colourer
	// MarkMask is the Colourer's mark mask, which bounds the colours. Default
	// bpf.DefaultMarkMask.
	MarkMask uint32
	// Identity, when set, is the gateway's SPIFFE identity: Serve then speaks
	// mTLS (as the config's tls.client_auth says), services' allow_peers are
	// enforced, and http_calls to outbound entries with expect_id use it.
	Identity identity.X509Source
	// FreshInstances creates an instance for every request instead of
	// resetting and reusing them (host.Options.FreshInstances). Default
	// false: reused where the module allows it.
	FreshInstances bool
	// NetHTTP serves HTTP/1 (plain, or over the mTLS listener) with
	// net/http's server instead of internal/http1's (see its package doc).
	// Default false. HTTP/2 (h2c, or h2 by ALPN) is net/http's either way.
	NetHTTP bool
}

// Gateway routes requests to guests. Create it with New, then Reload a config.
type Gateway struct {
	opts    Options
	engine  *host.Engine
	log     *slog.Logger
	metrics *metrics
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator

	state    atomic.Pointer[state]
	draining atomic.Bool

	reloadMu sync.Mutex // serialises Reload and the release operations
	lastErr  atomic.Pointer[reloadError]
	history  map[string][][]*config.Version // per service: earlier version lists, for rollback

	stats    sync.Map // statsKey → *versionStats
	limiters sync.Map // service name → *limiter

	maxColour   bpf.Colour
	outbound    outboundClients
	connColours sync.Map // net.Conn → connColour, for client connections
}

// state is one generation of config: immutable once published.
type state struct {
	gen      int64
	hash     string
	loadedAt time.Time
	cfg      *config.Config
	table    *router.Table
	modules  map[string]*host.Module        // by digest
	colours  map[string]bpf.Colour          // by colourKey
	peers    map[string]*identity.AllowList // by service, for those with allow_peers
	series   sync.Map                       // seriesKey → *series, made as requests come
}

type reloadError struct {
	err error
	at  time.Time
}

// New returns a gateway with no config: it answers 503 until Reload succeeds.
// Close releases it.
func New(ctx context.Context, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = newClient(newTransport())
	}
	g := &Gateway{
		opts:    opts,
		log:     opts.Logger,
		history: map[string][][]*config.Version{},
		tracer:  opts.TracerProvider.Tracer("github.com/wasmesh/wasmesh/mesh"),
		prop:    propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	eng, err := host.New(ctx, host.Options{CacheDir: opts.CacheDir, Imports: imports{g}, FreshInstances: opts.FreshInstances})
	if err != nil {
		return nil, err
	}
	g.engine = eng
	g.maxColour = bpf.Options{MarkMask: opts.MarkMask}.MaxColour()
	g.metrics = newMetrics(g)
	return g, nil
}

// newClient is a client for guests' outbound calls. It does not follow
// redirects: a redirect could lead outside the service's outbound list, so
// the guest gets the 3xx and decides.
func newClient(tr http.RoundTripper) *http.Client {
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// newTransport is the transport of outbound calls.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
}

// Close releases the gateway's engine and compiled modules.
func (g *Gateway) Close(ctx context.Context) error { return g.engine.Close(ctx) }

// Registry is the gateway's Prometheus registry.
func (g *Gateway) Registry() *prometheus.Registry { return g.metrics.reg }

// Generation is the number of the active config, 0 before the first load.
func (g *Gateway) Generation() int64 {
	if st := g.state.Load(); st != nil {
		return st.gen
	}
	return 0
}

// Config returns the active config, nil before the first load.
func (g *Gateway) Config() *config.Config {
	if st := g.state.Load(); st != nil {
		return st.cfg
	}
	return nil
}

// LoadFile reads the config file and reloads it.
func (g *Gateway) LoadFile(ctx context.Context) error {
	data, err := os.ReadFile(g.opts.ConfigPath)
	if err != nil {
		return g.failReload(err)
	}
	return g.Reload(ctx, data)
}

// Reload applies config bytes: parse and validate, put `path:` modules into
// the store, resolve and compile every version's module, and only then swap
// the routing table. On any error the active config keeps serving and the
// error is kept for /v1/config. Bytes equal to the active config's are a no-op.
func (g *Gateway) Reload(ctx context.Context, data []byte) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	return g.reloadLocked(ctx, data)
}

func (g *Gateway) reloadLocked(ctx context.Context, data []byte) error {
	hash := contentHash(data)
	old := g.state.Load()
	if old != nil && old.hash == hash {
		return nil
	}
	st, err := g.provision(ctx, data)
	if err != nil {
		return g.failReload(err)
	}
	st.hash = hash
	st.gen = 1
	if old != nil {
		st.gen = old.gen + 1
	}
	g.state.Store(st)
	g.lastErr.Store(nil)
	g.metrics.reloads.WithLabelValues("success").Inc()
	g.metrics.generation.Set(float64(st.gen))
	g.log.Info("config loaded", "generation", st.gen, "file", g.opts.ConfigPath,
		"services", len(st.cfg.Services), "routes", len(st.cfg.Routes))
	if old != nil {
		g.checkRestartOnly(old.cfg, st.cfg)
		g.releaseUnused(old, st)
	}
	return nil
}

func (g *Gateway) failReload(err error) error {
	g.lastErr.Store(&reloadError{err: err, at: time.Now()})
	g.metrics.reloads.WithLabelValues("error").Inc()
	g.log.Error("config rejected; the previous config keeps serving", "file", g.opts.ConfigPath,
		"generation", g.Generation(), "error", err)
	return err
}

// provision builds a state from config bytes without publishing it.
func (g *Gateway) provision(ctx context.Context, data []byte) (*state, error) {
	cfg, err := config.Parse(g.opts.ConfigPath, data)
	if err != nil {
		return nil, err
	}
	store, err := modules.Open(cfg.Store, modules.Options{Validate: g.engine.Validate})
	if err != nil {
		return nil, err
	}
	st := &state{cfg: cfg, loadedAt: time.Now(), modules: map[string]*host.Module{}, peers: map[string]*identity.AllowList{}}
	for name, s := range cfg.Services {
		if len(s.AllowPeers) > 0 {
			if st.peers[name], err = identity.ParseAllowPeers(s.AllowPeers); err != nil {
				return nil, fmt.Errorf("services.%s: %w", name, err)
			}
		}
	}
	var registry *oci.Client // made at the first oci:// version
	resolve := func(v *config.Version) (string, error) {
		if v.IsOCI() && registry == nil {
			if registry, err = newRegistryClient(cfg); err != nil {
				return "", err
			}
		}
		wasm, err := g.moduleBytes(ctx, store, registry, v)
		if err != nil {
			return "", err
		}
		digest := modules.DigestOf(wasm)
		mod, err := g.engine.Compile(ctx, digest, wasm)
		if err != nil {
			return "", err
		}
		if !mod.Reusable && !g.opts.FreshInstances {
			g.log.Info("module's instances cannot be reset: every request creates one", "module", digest, "why", mod.NotReusable)
		}
		// Before the version takes traffic: one synthetic run sizes the
		// memory its reused instances start with.
		if err := g.engine.Warm(ctx, mod); err != nil {
			g.log.Warn("warm-up run failed: instances start with the module's initial memory", "module", digest, "error", err)
		}
		st.modules[digest] = mod
		return digest, nil
	}
	if st.table, err = router.NewTable(cfg, resolve); err != nil {
		return nil, err
	}
	st.cfg = st.table.Config() // with every version's digest
	if g.opts.Colourer != nil {
		if st.colours, err = g.assignColours(st.cfg); err != nil {
			return nil, fmt.Errorf("colours: %w", err)
		}
	}
	digests := make([]string, 0, len(st.modules))
	for d := range st.modules {
		digests = append(digests, d)
	}
	if err := store.SetRefs(g.opts.ConfigPath, digests); err != nil {
		g.log.Warn("could not record the config's artifacts in the store", "error", err)
	}
	return st, nil
}

// PullTimeout bounds the pull of one oci:// version during a load.
const PullTimeout = time.Minute

// newRegistryClient is the client that pulls a config's oci:// versions,
// with its registries' settings. Credentials come from the Docker config
// file, read again at each load.
func newRegistryClient(cfg *config.Config) (*oci.Client, error) {
	return oci.New(oci.Options{PlainHTTP: cfg.PlainHTTPRegistries()})
}

// pull brings the oci:// reference ref into store, within PullTimeout, and
// logs what a registry sent.
func (g *Gateway) pull(ctx context.Context, store *modules.Store, registry *oci.Client, ref string) (oci.Pulled, error) {
	r, err := oci.ParseReference(ref)
	if err != nil {
		return oci.Pulled{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, PullTimeout)
	defer cancel()
	got, err := registry.Pull(ctx, store, r)
	if err == nil && !got.Cached {
		g.log.Info("pulled module", "ref", got.Ref.String(), "module", got.Module, "signatures", got.Signatures)
	}
	return got, err
}

// moduleBytes returns a version's module: a `path:` file is put into the
// store first (so it can be pinned and rolled back to by digest); an
// `oci://` module is pulled into the store unless the store's index shows
// that its manifest was pulled before.
func (g *Gateway) moduleBytes(ctx context.Context, store *modules.Store, registry *oci.Client, v *config.Version) ([]byte, error) {
	if v.IsOCI() {
		got, err := g.pull(ctx, store, registry, v.Module)
		if err != nil {
			return nil, err
		}
		_, wasm, err := store.Get(got.Module)
		return wasm, err
	}
	if v.Path == "" {
		_, wasm, err := store.Get(v.Module)
		return wasm, err
	}
	wasm, err := os.ReadFile(v.AbsPath())
	if err != nil {
		return nil, err
	}
	if _, err := store.Put(ctx, bytes.NewReader(wasm)); err != nil {
		return nil, fmt.Errorf("%s: %w", v.Path, err)
	}
	return wasm, nil
}

// checkRestartOnly warns about settings a reload cannot change.
func (g *Gateway) checkRestartOnly(old, cur *config.Config) {
	if old.Listen != cur.Listen || old.Admin != cur.Admin {
		g.log.Warn("listen and admin addresses change only on restart",
			"listen", old.Listen, "admin", old.Admin)
	}
}

// releaseUnused frees the compiled code of modules the new state no longer
// uses, once every request that may still run them has hit its deadline.
func (g *Gateway) releaseUnused(old, cur *state) {
	var unused []string
	for d := range old.modules {
		if _, ok := cur.modules[d]; !ok {
			unused = append(unused, d)
		}
	}
	if len(unused) == 0 {
		return
	}
	var longest time.Duration
	for _, s := range old.cfg.Services {
		longest = max(longest, s.Limits.Timeout)
	}
	// A request may wait for a slot, read its body and run, each up to the
	// service's timeout.
	time.AfterFunc(3*longest+time.Second, func() {
		for _, d := range unused {
			if st := g.state.Load(); st != nil && st.modules[d] != nil {
				continue // back in use
			}
			g.engine.Release(context.Background(), d)
		}
	})
}

func contentHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// versionStats counts what one version served.
type versionStats struct {
	requests, errors atomic.Int64
}

func (g *Gateway) statsFor(service, digest string) *versionStats {
	key := service + "\x00" + digest
	if s, ok := g.stats.Load(key); ok {
		return s.(*versionStats)
	}
	s, _ := g.stats.LoadOrStore(key, &versionStats{})
	return s.(*versionStats)
}

// ObserveIdentity records the gateway's current SVID: its expiry as a metric,
// and a warning once less than a third of its lifetime remains without a
// rotation. identity.Source.Watch calls it at each change.
func (g *Gateway) ObserveIdentity(st identity.Status) {
	g.metrics.svidExpiry.Set(float64(st.NotAfter.Unix()))
	if st.Expiring(time.Now()) {
		g.log.Warn("SVID expiring and not rotated", "svid", st.String())
		return
	}
	g.log.Info("SVID in use", "svid", st.String())
}
