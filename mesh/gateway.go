package mesh

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/admin"
	"github.com/wasmesh/wasmesh/internal/control"
	"github.com/wasmesh/wasmesh/internal/dataplane"
	"github.com/wasmesh/wasmesh/internal/rollout"
)

// ErrNotFound is wrapped by the errors of Deploy, Promote and Rollback for
// an unknown service or version.
var ErrNotFound = control.ErrNotFound

// ErrConflict is wrapped by the errors of Deploy, Promote and Rollback
// refused for the state the service or the config file is in: a release
// running, an edit of the file whose load failed.
var ErrConflict = control.ErrConflict

// Options configure a Gateway. The zero value of each field is its default.
type Options struct {
	// ConfigPath is the config file: LoadFile and Watch read it; Deploy,
	// Promote and Rollback rewrite it. Required for those.
	ConfigPath string
	// LastGood, when set, is a file every config that loads is written
	// to, for Resume. Default "": none.
	LastGood string
	// CacheDir is wazero's compilation cache directory. Default "": none.
	CacheDir string
	// RecordNothing makes loads leave no record in the store: not which
	// modules the config uses (which a gateway serving the same file keeps
	// there), as `wasmesh check` needs. Default false.
	RecordNothing bool
	// Logger receives the access log and events. Default slog.Default().
	Logger *slog.Logger
	// TracerProvider makes the gateway's spans. Default: a provider that
	// records nothing but still gives every request a trace id and carries
	// inbound trace context through guests to their outbound calls. Spans
	// under a request's follow its sampling decision (a parent-based
	// sampler's rule): an unsampled request starts no child spans.
	TracerProvider trace.TracerProvider
	// HTTPClient sends guests' outbound calls to http(s) targets when their
	// connections are not coloured. Default: a client with a pooled
	// transport that does not follow redirects.
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
	// Default nil: plain HTTP.
	Identity identity.X509Source
	// FreshInstances creates an instance for every request instead of
	// resetting and reusing them (host.Options.FreshInstances). Default
	// false: reused where the module allows it.
	FreshInstances bool
	// NetHTTP serves HTTP/1 (plain, or over the mTLS listener) with
	// net/http's server instead of wasmesh's own (internal/http1). Default
	// false. HTTP/2 (h2c, or h2 by ALPN) is net/http's either way.
	NetHTTP bool
	// External, when set, says where the config comes from instead of the
	// file (the cluster: internal/kube), given to Reload: edits through the
	// admin API and the file's reloads are refused, naming it. Default "".
	External string
	// AdminAuth is the admin API's authentication when PrepareAdmin runs
	// before a config is loaded (the cluster mode: the file's settings).
	// Default: the loaded config's.
	AdminAuth *config.AdminAuth
	// Write, with External, takes the admin API's edits to where the
	// config comes from (control.Options.Write). Default nil: refused.
	Write func(ctx context.Context, prev, data []byte) error
	// Fleet, with External, makes the gateway one of several replicas
	// whose releases one leads (LeadReleases), their state kept where
	// Fleet.State says. Default nil: releases are refused with External.
	Fleet *rollout.Fleet
	// Discovery follows the endpoints of the Kubernetes Services that
	// upstream versions name (dataplane.Options.Discovery). Default nil:
	// such versions have no endpoints, and say why.
	Discovery dataplane.Discovery
}

// Gateway routes requests to guests: the data plane (the request path) and
// the control plane (loads and releases) of one wasmesh process. Create it
// with New, then LoadFile or Reload a config; until then it answers 503.
type Gateway struct {
	opts    Options
	log     *slog.Logger
	plane   *dataplane.Plane
	control *control.Controller
	// releases runs progressive releases (Serve drives them).
	releases *rollout.Controller
	api      admin.API
	// adminAuth authenticates the admin listener's calls (PrepareAdmin);
	// adminAllowIDs says it takes mTLS callers.
	adminAuth     *admin.Auth
	adminAllowIDs bool
	// expiry says the SVID observed last expired, if no other came first
	// (ObserveIdentity).
	expiry struct {
		sync.Mutex
		timer *time.Timer
	}
}

// noReleases refuses releases when the config comes from elsewhere (the
// cluster): every replica would drive them at once.
type noReleases struct {
	from  string
	plane *dataplane.Plane
}

func (n noReleases) refuse() error {
	return fmt.Errorf("%w: the config comes from %s, where releases need a fleet with one replica leading them (Options.Fleet): move the weights with the objects", rollout.ErrConflict, n.from)
}

func (n noReleases) Shift(context.Context, string, string, int) ([]*config.Version, error) {
	return nil, n.refuse()
}

func (n noReleases) SetWeights(context.Context, string, map[string]int) ([]*config.Version, error) {
	return nil, n.refuse()
}

func (n noReleases) SetLaneVersion(context.Context, string, string, string) error { return n.refuse() }

func (n noReleases) Settled() *dataplane.Snapshot { return n.plane.Snapshot() }

func (n noReleases) Editable() error { return nil } // Shift refuses

// New returns a gateway with no config. Close releases it.
func New(ctx context.Context, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	plane, err := dataplane.New(ctx, dataplane.Options{
		CacheDir: opts.CacheDir, FreshInstances: opts.FreshInstances, Logger: opts.Logger,
		TracerProvider: opts.TracerProvider, HTTPClient: opts.HTTPClient,
		Colourer: opts.Colourer, Identity: opts.Identity, Discovery: opts.Discovery, NetHTTP: opts.NetHTTP,
	})
	if err != nil {
		return nil, err
	}
	ctrl := control.New(plane, control.Options{
		ConfigPath: opts.ConfigPath, Logger: opts.Logger, FreshInstances: opts.FreshInstances, External: opts.External, Write: opts.Write,
		LastGood: opts.LastGood, RecordNothing: opts.RecordNothing,
		Colours: opts.Colourer != nil, MaxColour: bpf.Options{MarkMask: opts.MarkMask}.MaxColour(),
	})
	var traffic rollout.Traffic = ctrl
	if opts.External != "" && opts.Fleet == nil {
		traffic = noReleases{from: opts.External, plane: plane}
	}
	releases := rollout.New(plane, traffic, opts.Logger, opts.TracerProvider)
	if opts.Fleet != nil {
		releases.JoinFleet(*opts.Fleet)
	}
	ctrl.Guard(releases.Busy, releases.BusyHere)
	ctrl.GuardLanes(releases.LaneBusyHere)
	return &Gateway{opts: opts, log: opts.Logger, plane: plane, control: ctrl, releases: releases,
		api: admin.API{Plane: plane, Control: ctrl, Releases: releases}}, nil
}

// LeadReleases drives the releases as the fleet's leader (Options.Fleet)
// until ctx ends: those recorded go on at their step, then every running
// one is judged each second.
func (g *Gateway) LeadReleases(ctx context.Context) { g.releases.Lead(ctx, time.Second) }

// VersionCount is what this gateway has served of a service's version
// since it started: its errors and latency histogram, which a fleet's
// replicas publish to the one leading releases.
func (g *Gateway) VersionCount(service, digest string) rollout.Count {
	return g.releases.Count(service, digest)
}

// Close releases the gateway's engine and compiled modules.
func (g *Gateway) Close(ctx context.Context) error {
	g.expiry.Lock()
	if g.expiry.timer != nil {
		g.expiry.timer.Stop()
	}
	g.expiry.Unlock()
	return g.plane.Close(ctx)
}

// ServeHTTP routes r to a service version and runs its guest. Serve puts
// it behind the gateway's listeners; an embedder may mount it anywhere.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.plane.ServeHTTP(w, r) }

// Generation is the number of the active config, 0 before the first load.
func (g *Gateway) Generation() int64 {
	if st := g.plane.Snapshot(); st != nil {
		return st.Gen
	}
	return 0
}

// Config returns the active config, with every version's digest; nil
// before the first load.
func (g *Gateway) Config() *config.Config {
	if st := g.plane.Snapshot(); st != nil {
		return st.Config
	}
	return nil
}

// LoadFile reads the config file and loads it, as Reload.
func (g *Gateway) LoadFile(ctx context.Context) error { return g.control.LoadFile(ctx) }

// Reload applies config bytes: parse and validate, put `path:` modules into
// the store, pull `oci://` ones, compile every version's module, and only
// then swap the routing table. On any error the active config keeps
// serving and the error is kept for GET /v1/config. Bytes equal to the
// active config's are a no-op.
func (g *Gateway) Reload(ctx context.Context, data []byte) error { return g.control.Load(ctx, data) }

// Resume serves the last config that loaded (Options.LastGood) after the
// config file was refused at start with refused, which it reports as the
// last failed load until the file loads. Without Options.LastGood, or
// with no such file or one that does not load either, it returns an error
// wrapping refused.
func (g *Gateway) Resume(ctx context.Context, refused error) error {
	return g.control.Resume(ctx, refused)
}

// Watch reloads the config whenever its file changes, until ctx is done.
// See config.Watch for what counts as a change.
func (g *Gateway) Watch(ctx context.Context) error { return g.control.Watch(ctx) }

// Deploy adds the module ref names (a digest or prefix in the store, a
// version's name, or an oci:// reference, which is pulled into the store
// first and written to the config pinned to its manifest digest) to a
// service at weight percent, scaling the other versions down in
// proportion; if it already is a version, its weight changes. name, if not
// "", labels the version. The config file is rewritten and reloaded; it
// returns the service's new versions.
func (g *Gateway) Deploy(ctx context.Context, service, ref string, weight int, name string) ([]*config.Version, error) {
	return g.control.Deploy(ctx, service, ref, weight, name)
}

// Promote sends all of a service's traffic to the version ref names,
// removing the others from the config (Rollback brings them back).
func (g *Gateway) Promote(ctx context.Context, service, ref string) ([]*config.Version, error) {
	return g.control.Promote(ctx, service, ref)
}

// Rollback restores the service's split from before its last Deploy or
// Promote made by this gateway process; repeated, it goes further back.
func (g *Gateway) Rollback(ctx context.Context, service string) ([]*config.Version, error) {
	return g.control.Rollback(ctx, service)
}

// AdminHandler serves the admin API; docs/admin-api.md describes it.
func (g *Gateway) AdminHandler() http.Handler { return g.api.Handler() }

// HealthHandler serves /healthz, /readyz and /metrics only: safe to expose
// to probes and scrapers on a pod's address.
func (g *Gateway) HealthHandler() http.Handler { return g.api.HealthHandler() }

// ObserveIdentity records the gateway's current SVID: its expiry as a metric,
// and a warning once less than a third of its lifetime remains without a
// rotation. identity.Source.Watch calls it at each change.
func (g *Gateway) ObserveIdentity(st identity.Status) {
	g.plane.Metrics().ObserveSVIDExpiry(st.NotAfter)
	g.expiry.Lock()
	if g.expiry.timer != nil {
		g.expiry.timer.Stop()
	}
	// At its expiry, unless another came first: peers refuse it from then.
	g.expiry.timer = time.AfterFunc(time.Until(st.NotAfter), func() {
		g.log.Error("SVID expired and not rotated: mTLS peers refuse the gateway's handshakes until a new one comes", "svid", st.String())
	})
	g.expiry.Unlock()
	if st.Expiring(time.Now()) {
		g.log.Warn("SVID expiring and not rotated", "svid", st.String())
		return
	}
	g.log.Info("SVID in use", "svid", st.String())
}
