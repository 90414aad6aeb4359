// Package control is the gateway's control plane: it turns config bytes
// into a data plane snapshot and swaps it in, and it changes a service's
// versions (deploy, promote, rollback) by rewriting the config file.
//
// A load follows Caddy's order: decode strictly and validate (package
// config); provision — put `path:` modules into the store, pull `oci://`
// ones, compile every module into the plane's engine, warm it, assign the
// versions' colours; build the routing table; and only then swap. A config
// that fails any step leaves the old one serving, and the error is kept
// for GET /v1/config.
package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/atomicfile"
	"github.com/wasmesh/wasmesh/internal/dataplane"
)

// Options configure a Controller.
type Options struct {
	// ConfigPath is the config file; deploy, promote and rollback rewrite it.
	ConfigPath string
	// Logger receives the control plane's events. Default slog.Default().
	Logger *slog.Logger
	// Colours, when set, makes every load give each version a colour, kept
	// in the store's colours.json; MaxColour bounds them. Default false.
	Colours   bool
	MaxColour bpf.Colour
	// FreshInstances is the plane's setting, for the log: a module whose
	// instances cannot be reset is reported only when it matters.
	FreshInstances bool
	// External, when set, says where the config comes from instead of the
	// file ("Kubernetes namespace prod"): Load takes it from there, and
	// the file's edits (deploy, promote, rollback, lanes, releases) and
	// reloads are refused with an error wrapping ErrExternal that names
	// it, unless Write takes the edits. Default "": the file is the config.
	External string
	// Write, with External, takes an edit of the config (deploy, promote,
	// rollback, weights, lanes) to where it comes from: prev, the config
	// the edit was made to, edited into data, is written there, then
	// loaded here; the other replicas take it from there. An edit it
	// cannot write (the file's settings) is its error. Default nil: edits
	// are refused.
	Write func(ctx context.Context, prev, data []byte) error
	// LastGood, when set, is a file the bytes of every config that loads
	// are written to (atomically), for a gateway that starts to serve
	// when its config file is refused (Resume). Default "": none.
	LastGood string
	// RecordNothing leaves the store's record of the config's modules
	// (refs) as it is. Default false.
	RecordNothing bool
}

// Controller loads configs into a data plane and edits the config file.
type Controller struct {
	opts  Options
	plane *dataplane.Plane
	log   *slog.Logger

	mu      sync.Mutex                     // serialises loads and the release operations
	history map[string][][]*config.Version // per service: earlier version lists, for rollback
	guard   func(service string) error     // refuses release operations (Guard), before their slow steps
	// guardLocked refuses them again, c.mu held (Guard).
	guardLocked func(service string) error
	// laneGuardLocked refuses edits of a lane, c.mu held (GuardLanes).
	laneGuardLocked func(lane string) error
	lastErr         atomic.Pointer[LoadError]
	// known are the path modules of the last load that succeeded as far
	// as its modules, with their files' stamps and digests: a load into
	// the same store takes the compiled module of one whose file has not
	// changed without reading it. Written with mu held.
	known atomic.Pointer[knownPaths]
	// editing is set while an operation's edit loads (commitLocked): its
	// failure is its caller's answer, not the config's last error. mu
	// held.
	editing bool
	// operating is set while an operation's edit (a deploy, a release's
	// step) loads, through the file or an external source: the changes
	// its load logs are the API's. mu held.
	operating bool
	// pre is what the prefetch of the config being loaded did, while
	// loadPrefetchedLocked runs: its parsed config (not parsed again) and
	// the oci:// modules whose pull failed (not asked for again with c.mu
	// held).
	pre *prefetched
	// parser parses configs, reusing the pieces of the last it parsed.
	parser config.Parser
	// started is the first config loaded, whose settings read at start
	// only (restartOnly) stay in force. mu held.
	started *config.Config
	// colours is the colour table the last load saved. mu held.
	colours savedColours
}

// knownPaths are a load's path modules, by absolute path, and the store
// they were put in.
type knownPaths struct {
	store  string
	stamps map[string]pathStamp
}

// in is the stamps of the path modules known in store; nil for none.
func (k *knownPaths) in(store string) map[string]pathStamp {
	if k == nil || k.store != store {
		return nil
	}
	return k.stamps
}

// LoadError is the last load that failed, and when.
type LoadError struct {
	Err error
	At  time.Time
	// File says the load was of the config file (not of bytes given to
	// Load): the file then holds what was refused.
	File bool
}

// New returns a controller of plane's snapshots.
func New(plane *dataplane.Plane, opts Options) *Controller {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Controller{opts: opts, plane: plane, log: opts.Logger, history: map[string][][]*config.Version{}}
}

// ConfigPath is the config file the controller loads and rewrites.
func (c *Controller) ConfigPath() string { return c.opts.ConfigPath }

// LastError is the last failed load since the last good one, nil if none.
func (c *Controller) LastError() *LoadError { return c.lastErr.Load() }

// LoadFile reads the config file and loads it. The file is read under the
// lock that edits (deploy, lanes) hold while they write it: what is loaded
// is never older than an edit already applied. What it needs pulled or
// compiled is, first, without the lock (prefetch).
func (c *Controller) LoadFile(ctx context.Context) error {
	if err := c.external(); err != nil {
		return err
	}
	return c.loadFile(ctx)
}

// loadFile is LoadFile, but for a ctx that ends before the lock is taken
// (a watched load stopped by a newer one): nothing is loaded, ctx's error
// returned.
func (c *Controller) loadFile(ctx context.Context) error {
	var pre *prefetched
	if data, err := os.ReadFile(c.opts.ConfigPath); err == nil {
		pre = c.prefetch(ctx, data)
	}
	defer c.releasePrefetched(pre)
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	data, err := os.ReadFile(c.opts.ConfigPath)
	if err != nil {
		return c.failLoad(err, true)
	}
	return c.loadPrefetchedLocked(ctx, data, pre, true)
}

// Load applies config bytes (see the package documentation). Bytes equal
// to the active config's are a no-op.
func (c *Controller) Load(ctx context.Context, data []byte) error {
	pre := c.prefetch(ctx, data)
	defer c.releasePrefetched(pre)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loadPrefetchedLocked(ctx, data, pre, false)
}

// loadPrefetchedLocked is loadLocked of data, which pre prefetched when
// it is of the same bytes: a pull that failed there fails the load
// without asking the registry again with the lock held.
func (c *Controller) loadPrefetchedLocked(ctx context.Context, data []byte, pre *prefetched, file bool) error {
	if pre.of(data) {
		c.pre = pre
		defer func() { c.pre = nil }()
	}
	return c.loadLocked(ctx, data, file)
}

// Watch loads the config file whenever it changes, until ctx is done. See
// config.Watch for what counts as a change. It loads the file once more as
// the watch begins: a change made while the config before it loaded
// (compiling, pulling) is no change to the watcher, which compares with
// the file as it reads it then. A load that fails after its config parsed
// (a path module not there yet, a registry that did not answer), or that
// could not read the file, is tried again after the waits of NextRetry,
// until one succeeds or the file changes.
func (c *Controller) Watch(ctx context.Context) error {
	if err := c.external(); err != nil {
		return err
	}
	w := &watchedLoads{c: c, ctx: ctx}
	// Every burst of events loads the file, changed or not since the
	// watch last read it: a reload through the API may have read (and
	// refused) what the watch never saw, and a file put back as it was
	// then clears that error (the load of the bytes serving is a no-op).
	err := config.WatchBursts(ctx, c.opts.ConfigPath, 0, func([]byte) { w.change() }, func(err error) {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			// The file could not be read after a change (removed, made
			// unreadable): a failed load, for /v1/config and the
			// metrics, while the config before it keeps serving.
			c.mu.Lock()
			c.failLoad(err, true)
			c.mu.Unlock()
			return
		}
		c.log.Warn("watching the config file", "file", c.opts.ConfigPath, "error", err)
	})
	if err != nil {
		return err
	}
	w.change()
	return nil
}

// NextRetry is the wait before the next try of a load that failed for
// what may come later (Retryable), given the wait before the last try (0
// for none): 1 s, then twice as long each time, up to 30 s.
func NextRetry(last time.Duration) time.Duration {
	const first, most = time.Second, 30 * time.Second
	return min(max(2*last, first), most)
}

// watchedLoads are Watch's loads of the file, and its retries.
type watchedLoads struct {
	c   *Controller
	ctx context.Context

	mu    sync.Mutex
	retry *time.Timer
	wait  time.Duration // before the next retry; 0 after a load that succeeded
	// latest is the newest load's number; stop ends the one in progress
	// (its pulls and compiles), which a newer change makes moot.
	latest int
	stop   context.CancelFunc
}

// change starts a load of the file, in a goroutine of its own, stopping
// one in progress: a load that waits on a registry that does not answer
// (PullTimeout, a minute a pull) does not hold back the file written to
// fix it.
func (w *watchedLoads) change() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		w.stop()
	}
	ctx, stop := context.WithCancel(w.ctx)
	w.latest++
	w.stop = stop
	go w.load(ctx, w.latest)
}

// load loads the file (read again under the controller's lock rather than
// what the watcher read: an edit applied between its read and now wrote
// a newer file, and loading the older bytes would undo it), and sets the
// next retry if it failed after its config parsed or could not read the
// file. Failures are logged and kept for /v1/config. A load stopped by a
// newer one (n is no longer the latest) leaves the rest to it.
func (w *watchedLoads) load(ctx context.Context, n int) {
	if ctx.Err() != nil {
		return
	}
	err := w.c.loadFile(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if n != w.latest {
		return
	}
	if w.retry != nil {
		w.retry.Stop()
	}
	var pe *provisionError
	var fe *fs.PathError // the file itself could not be read
	if err == nil || !errors.As(err, &pe) && !errors.As(err, &fe) || w.ctx.Err() != nil {
		w.wait = 0
		return
	}
	w.wait = NextRetry(w.wait)
	w.retry = time.AfterFunc(w.wait, w.change)
	w.c.log.Info("the config file's load to be tried again", "file", w.c.opts.ConfigPath, "in", w.wait)
}

// errEmptyConfig refuses a config with no YAML document in place of one
// that had one: most likely a file read while it was being rewritten.
var errEmptyConfig = errors.New("the new config is empty (no YAML document, or a null one such as a lone ---), the serving one is not: refused, " +
	"as a file read while it is rewritten in place reads empty; write the new config beside the old and rename it over")

// loadLocked loads data, c.mu held; file says the bytes are the config
// file's (LoadFile's), for LoadError.File.
func (c *Controller) loadLocked(ctx context.Context, data []byte, file bool) error {
	hash := contentHash(data)
	old := c.plane.Snapshot()
	if old != nil && old.Hash == hash {
		c.lastErr.Store(nil) // the config serving is the one asked for
		c.plane.Metrics().LastLoadOK.Set(1)
		return nil
	}
	if old != nil && config.Empty(data) && !config.Empty(old.Config.Raw) {
		return c.failLoad(errEmptyConfig, file)
	}
	began := time.Now()
	if c.pre.of(data) && !c.pre.began.IsZero() {
		began = c.pre.began // its pulls and compiles, done before the lock, are the load's
	}
	st, record, err := c.provision(ctx, data)
	if err != nil && ctx.Err() != nil {
		// Stopped (a newer change of the watched file, a caller gone):
		// not a failed load of the config, which a later one decides.
		c.log.Info("config load stopped before it finished", "file", c.opts.ConfigPath, "error", err)
		return ctx.Err()
	}
	if err != nil {
		return c.failLoad(err, file)
	}
	st.Hash, st.Gen = hash, 1
	if old != nil {
		st.Gen = old.Gen + 1
	}
	c.plane.Swap(st)
	took := time.Since(began)
	c.lastErr.Store(nil)
	m := c.plane.Metrics()
	m.Reloads.WithLabelValues("success").Inc()
	m.LastLoadOK.Set(1)
	m.LoadTime.Set(took.Seconds())
	m.Generation.Set(float64(st.Gen))
	c.log.Info("config loaded", "generation", st.Gen, "file", c.opts.ConfigPath,
		"services", len(st.Config.Services), "routes", len(st.Config.Routes), "took", took.Round(time.Microsecond))
	record()
	c.keepLastGood(data)
	if c.started == nil {
		c.started = st.Config
	}
	if old != nil {
		c.logSplits(old.Config, st.Config, st.Gen)
		c.checkRestartOnly(old.Config, st.Config)
		c.releaseUnused(old)
	}
	return nil
}

// logSplits logs each service whose versions the load of generation gen
// changed (or added, or removed), and by what: an edit of the file, or a
// release operation through the API. c.mu held.
func (c *Controller) logSplits(old, cur *config.Config, gen int64) {
	by := "file"
	switch {
	case c.operating:
		by = "api"
	case c.opts.External != "":
		by = c.opts.External // the cluster's objects, as every replica loads them
	}
	for _, name := range cur.ServiceNames() {
		was, now := old.Services[name], cur.Services[name]
		switch {
		case was == nil:
			c.log.Info("service added", "service", name, "generation", gen, "versions", describe(now.Versions), "by", by)
		case !sameSplit(was.Versions, now.Versions):
			c.log.Info("service versions changed", "service", name, "generation", gen, "versions", describe(now.Versions), "by", by)
		}
	}
	for _, name := range old.ServiceNames() {
		if cur.Services[name] == nil {
			c.log.Info("service removed", "service", name, "generation", gen, "by", by)
		}
	}
}

// keepLastGood writes data, a config that loaded, to Options.LastGood; a
// failure is logged (the config serves all the same).
func (c *Controller) keepLastGood(data []byte) {
	if c.opts.LastGood == "" {
		return
	}
	mode := modeOf(c.opts.ConfigPath, 0o600) // the config's own: it may hold secrets (env)
	if err := atomicfile.WriteFile(c.opts.LastGood, data, mode, ""); err != nil {
		c.log.Warn("could not keep the config as the last good one", "file", c.opts.LastGood, "error", err)
	}
}

// Resume serves the config in Options.LastGood, the last that loaded,
// after the config file's own load failed with refused (at start): the
// gateway serves what it served before rather than nothing, and says why
// (the log, /v1/config's last_error) until the file loads. Its relative
// paths resolve against the config file's directory, as the file's do.
func (c *Controller) Resume(ctx context.Context, refused error) error {
	if c.opts.LastGood == "" {
		return refused
	}
	data, err := os.ReadFile(c.opts.LastGood)
	if err != nil {
		return fmt.Errorf("%w (and no last good config to resume: %v)", refused, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadLocked(ctx, data, false); err != nil {
		return fmt.Errorf("%w (and the last good config, %s: %v)", refused, c.opts.LastGood, err)
	}
	c.lastErr.Store(&LoadError{Err: refused, At: time.Now(), File: true})
	c.plane.Metrics().LastLoadOK.Set(0) // the file's load failed; the last good one serves
	c.log.Error("the config file was refused at start: serving the last good config until the file loads",
		"file", c.opts.ConfigPath, "last_good", c.opts.LastGood, "error", refused)
	return nil
}

// failLoad records a failed load; file says it was of the config file.
func (c *Controller) failLoad(err error, file bool) error {
	if c.editing {
		// An operation's edit (deploy, promote, rollback, lanes) refused:
		// its caller is told; the config serving is the file's, whose
		// last load did not fail.
		c.log.Info("edit refused; the config serving is unchanged", "file", c.opts.ConfigPath, "error", err)
		return err
	}
	c.lastErr.Store(&LoadError{Err: err, At: time.Now(), File: file})
	c.plane.Metrics().Reloads.WithLabelValues("error").Inc()
	c.plane.Metrics().LastLoadOK.Set(0)
	st := c.plane.Snapshot()
	if st == nil { // the first load: nothing serves
		c.log.Error("config rejected", "file", c.opts.ConfigPath, "error", err)
		return err
	}
	c.log.Error("config rejected; the previous config keeps serving", "file", c.opts.ConfigPath,
		"generation", st.Gen, "error", err)
	return err
}

// checkRestartOnly warns about settings a load cannot change.
func (c *Controller) checkRestartOnly(old, cur *config.Config) {
	var changed []string
	for _, f := range restartOnly {
		if v := f.of(cur); !reflect.DeepEqual(v, f.of(c.started)) && !reflect.DeepEqual(v, f.of(old)) {
			changed = append(changed, f.name)
		}
	}
	if len(changed) > 0 {
		c.log.Warn("the config changed settings read at start only: they take effect at the next restart, and those the gateway started with stay in force",
			"fields", strings.Join(changed, ","))
	}
}

// restartOnly are the config's fields read at start only.
var restartOnly = []struct {
	name string
	of   func(*config.Config) any
}{
	{"listen", func(c *config.Config) any { return c.Listen }},
	{"admin", func(c *config.Config) any { return [2]any{c.Admin, c.AdminAuth} }},
	{"health", func(c *config.Config) any { return c.Health }},
	{"tls", func(c *config.Config) any { return c.TLS }},
	{"bpf", func(c *config.Config) any { return c.BPF }},
	{"http", func(c *config.Config) any { h := c.HTTP; h.MaxBodyMemory = 0; return h }}, // max_body_memory is a load's
}

// releaseUnused frees the compiled code of old's modules that the served
// snapshot no longer uses, once every request that may still run them has
// hit its deadline.
func (c *Controller) releaseUnused(old *dataplane.Snapshot) {
	cur := c.plane.Snapshot()
	var unused []string
	for d := range old.Modules {
		if _, ok := cur.Modules[d]; !ok {
			unused = append(unused, d)
		}
	}
	if len(unused) == 0 {
		return
	}
	var longest time.Duration
	for _, s := range old.Config.Services {
		longest = max(longest, s.Limits.Timeout)
	}
	// A request may wait for a slot, read its body and run, each up to the
	// service's timeout.
	time.AfterFunc(3*longest+time.Second, func() { c.releaseIfUnused(unused) })
}

// releaseIfUnused frees the compiled code of the modules of digests that
// the served snapshot does not use. It takes c.mu: a load in progress
// may have taken one of them up again, and would serve it freed.
func (c *Controller) releaseIfUnused(digests []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.plane.Snapshot()
	for _, d := range digests {
		if st == nil || st.Modules[d] == nil {
			c.plane.Engine().Release(context.Background(), d)
		}
	}
}

func contentHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
