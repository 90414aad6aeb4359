package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/control"
	"github.com/wasmesh/wasmesh/internal/heapfloor"
	"github.com/wasmesh/wasmesh/internal/kube"
	"github.com/wasmesh/wasmesh/internal/logbuf"
	"github.com/wasmesh/wasmesh/internal/rollout"
	"github.com/wasmesh/wasmesh/internal/telemetry"
	"github.com/wasmesh/wasmesh/mesh"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/modules/oci"
	"github.com/wasmesh/wasmesh/router"
)

func serveCmd(ctx context.Context, args []string, stdout io.Writer) error {
	// A SIGHUP from here on waits for reloadOnHangup, once the gateway
	// serves: its default action would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fs := newFlags("serve", "--config FILE")
	configFile := fs.String("config", "wasmesh.yaml", "config file (watched and reloaded on change)")
	listen := fs.String("listen", "", "gateway address, overriding the config's listen")
	admin := fs.String("admin", "", "admin API address, overriding the config's admin; \"off\" disables it")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFlush := fs.Duration("log-flush-interval", logbuf.DefaultDelay, "how long a log line may wait to be written to stderr with the lines after it (0: each line at once); a line after a quiet spell is written at once")
	cacheDir := fs.String("cache-dir", defaultCacheDir(), "wazero compilation cache directory")
	fresh := fs.Bool("fresh-instances", false, "create an instance for every request instead of resetting and reusing instances")
	netHTTP := fs.Bool("net-http", false, "serve HTTP/1 (plain or over mTLS) with Go's net/http server instead of wasmesh's leaner one")
	resume := fs.String("resume", "", "keep every config that loads in `FILE`, and serve it at start when the config file is refused (a replica restarted after a bad edit serves what the others do)")
	traceExporter := fs.String("trace-exporter", "", "where spans go: none, otlp, otlp-http, otlp-grpc or stdout (default $OTEL_TRACES_EXPORTER, else none)")
	sampleRatio := &optionalFloat{v: -1}
	fs.Var(sampleRatio, "trace-sample-ratio", "`fraction` of new traces recorded; sampled parents are always followed (default 1 with an exporter, else 0)")
	heapFloor := fs.Uint64("gc-heap-floor", 32, "MiB the Go heap may grow to before the collector runs, at least (0: Go's default; ignored when $GOGC is set)")
	var kf kubeFlags
	fs.StringVar(&kf.namespace, "kubernetes", "", "take services and routes from this namespace's WasmeshService and WasmeshRoute objects (the config file keeps the gateway's own settings)")
	fs.StringVar(&kf.kubeconfig, "kubeconfig", "", "with --kubernetes: the kubeconfig file (default $KUBECONFIG, ~/.kube/config, else the pod's service account)")
	fs.StringVar(&kf.replica, "replica", "", "with --kubernetes: this replica's name among the others (default $POD_NAME, else HOST-PID)")
	fs.DurationVar(&kf.leaseDuration, "lease-duration", 15*time.Second, "with --kubernetes: how soon another replica takes over the releases when their leader dies (at least 1s)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *logFlush < 0 || *logFlush > time.Second {
		return usageError("--log-flush-interval %s: want 0 to 1s", *logFlush)
	}
	logOut := logbuf.New(os.Stderr, *logFlush)
	defer logOut.Flush()
	log, err := newLogger(logOut, *logFormat, *logLevel)
	if err != nil {
		return usageError("%v", err)
	}
	if *heapFloor > 1<<20 {
		return usageError("--gc-heap-floor %d: more than 1 TiB (the value is in MiB)", *heapFloor)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case kf.namespace != "" && *resume != "":
		return usageError("--resume: not with --kubernetes (the cluster's objects are the config that replicas share)")
	case kf.namespace == "" && (set["kubeconfig"] || set["replica"] || set["lease-duration"]):
		return usageError("--kubeconfig, --replica and --lease-duration: only with --kubernetes")
	case kf.leaseDuration < time.Second:
		return usageError("--lease-duration %s: at least 1s", kf.leaseDuration)
	}
	for name, addr := range map[string]string{"--listen": *listen, "--admin": *admin} {
		if addr == "" || addr == "off" && name == "--admin" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil { // said now, not after the config loads
			return usageError("%s %s: want HOST:PORT or :PORT (%v)", name, addr, err)
		}
	}
	if os.Getenv("GOGC") == "" {
		defer heapfloor.Start(*heapFloor << 20)()
	} else if *heapFloor != 0 {
		log.Debug("GOGC is set: no heap floor", "GOGC", os.Getenv("GOGC"))
	}
	path, err := filepath.Abs(*configFile)
	if err != nil {
		return err
	}
	// The file is read once: the colourer, the identity and the first load
	// all see the same bytes.
	data, err := os.ReadFile(path)
	if err != nil {
		return exitWith(1, err)
	}
	cfg, err := config.Parse(path, data)
	var refused error // the file's, when the last good config stands in for it at start (--resume)
	if err != nil {
		if *resume == "" || kf.namespace != "" {
			log.Error("config rejected", "file", path, "error", err) // as a later stage's refusal is: in the log's format
			return exitWith(1, err)
		}
		last, rerr := os.ReadFile(*resume)
		if rerr == nil {
			cfg, rerr = config.Parse(path, last)
		}
		if rerr != nil {
			return exitWith(1, fmt.Errorf("%w (and the last good config, --resume %s: %v)", err, *resume, rerr))
		}
		refused = err
	}
	// OpenTelemetry's own errors (a failed export, spans dropped, a
	// baggage over its limit) go to the gateway's log, in its format,
	// rather than to the standard library's logger.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry", "error", err) }))
	tp, err := telemetry.NewTracerProvider(ctx, telemetry.TracingOptions{Exporter: *traceExporter, SampleRatio: sampleRatio.v})
	if err != nil {
		return usageError("%v", err)
	}
	defer func() { // flush the spans of the drain too
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(flushCtx); err != nil {
			log.Warn("flushing spans", "error", err)
		}
	}()
	colourer, markMask, err := newColourer(cfg, log)
	if err != nil {
		return err
	}
	if colourer != nil {
		defer colourer.Close()
	}
	id, err := newIdentity(ctx, cfg, log)
	if err != nil {
		return err
	}
	opts := mesh.Options{ConfigPath: path, LastGood: *resume, CacheDir: *cacheDir, Logger: log, TracerProvider: tp, Colourer: colourer, MarkMask: markMask, FreshInstances: *fresh, NetHTTP: *netHTTP}
	var g *mesh.Gateway
	var kubeSource *kube.Source
	var fleet *kube.Fleet
	if kf.namespace != "" {
		load := func(ctx context.Context, data []byte) error { return g.Reload(ctx, data) }
		if kubeSource, fleet, err = newKubeSource(kf, path, data, load, log); err != nil {
			return exitWith(1, err)
		}
		fleet.SetLocal(func(service, digest string) rollout.Count { return g.VersionCount(service, digest) })
		opts.External = "Kubernetes namespace " + kf.namespace
		opts.AdminAuth = &cfg.AdminAuth
		opts.Write = kubeSource.Write
		opts.Discovery = kubeSource
		f := fleet.Rollout()
		opts.Fleet = &f
	}
	if id != nil {
		defer id.Close()
		opts.Identity = id
	}
	g, err = mesh.New(ctx, opts)
	if err != nil {
		return err
	}
	defer g.Close(context.Background())
	if id != nil {
		go id.Watch(ctx, g.ObserveIdentity)
	}
	if cfg.Health != "" {
		// Up before the first config loads (compiling its modules may take
		// a while): /healthz says the process lives, /readyz says 503 "no
		// config loaded" until it serves, so that a liveness probe does not
		// restart a gateway that is still compiling.
		hl, err := net.Listen("tcp", cfg.Health)
		if err != nil {
			return err
		}
		health := &http.Server{Handler: g.HealthHandler(), ReadHeaderTimeout: 10 * time.Second}
		go health.Serve(hl)
		defer health.Close()
		log.Info("health endpoints", "addr", hl.Addr().String())
	}
	if kf.namespace != "" {
		// The cluster gives services and routes once its objects are
		// listed; until then /readyz says no config is loaded. The fleet
		// stands for the lead of releases once that config is loaded.
		go func() {
			if err := kubeSource.Run(ctx); err != nil {
				log.Error("kubernetes: the config source stopped", "error", err)
			}
		}()
		go func() {
			if err := fleet.Run(ctx, g.LeadReleases); err != nil {
				log.Error("kubernetes: the fleet stopped", "error", err)
			}
		}()
	} else {
		err := refused
		if err == nil {
			err = firstLoad(ctx, g, data, log)
		}
		if err != nil {
			if *resume == "" || errors.Is(err, errSignalled) {
				return exitWith(1, err)
			}
			if err := g.Resume(ctx, err); err != nil {
				return exitWith(1, err)
			}
		}
		cfg = g.Config()
	}
	ln, err := net.Listen("tcp", cmp.Or(*listen, cfg.Listen))
	if err != nil {
		return err
	}
	var adminLn net.Listener
	if a := cmp.Or(*admin, cfg.Admin); a != "" && a != "off" {
		if adminLn, err = net.Listen("tcp", a); err != nil {
			return err
		}
	}

	// ctx is done at the first SIGINT or SIGTERM, which starts the drain; a
	// second signal exits at once.
	go func() {
		<-ctx.Done()
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		<-again
		log.Warn("second signal: exiting without draining")
		os.Exit(1)
	}()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if kf.namespace == "" {
		if err := g.Watch(watchCtx); err != nil {
			log.Warn("config hot reload is off", "error", err)
		}
	}
	go reloadOnHangup(watchCtx, hup, g, log)
	if adminLn != nil {
		if err := g.PrepareAdmin(); err != nil { // the token file written before it is announced
			return err
		}
	}
	printURLs(stdout, ln.Addr(), adminLn, cfg)
	if adminLn != nil && cfg.AdminAuth.Insecure {
		log.Warn("the admin API takes every call, unauthenticated (admin.insecure): deploys, rollbacks, releases by anyone who reaches it", "admin", addrString(adminLn))
	}
	log.Info("serving", "listen", ln.Addr().String(), "admin", addrString(adminLn), "generation", g.Generation())
	return g.Serve(ctx, ln, adminLn)
}

// newIdentity opens the SPIFFE identity the config's tls block names, nil
// without one.
func newIdentity(ctx context.Context, cfg *config.Config, log *slog.Logger) (*identity.Source, error) {
	t := cfg.TLS
	if t == nil {
		return nil, nil
	}
	var src *identity.Source
	var err error
	if t.SVID != "" {
		src, err = identity.NewFileSource(identity.FileOptions{CertFile: t.SVID, KeyFile: t.Key, BundleFile: t.Bundle, Logger: log})
	} else {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		src, err = identity.NewWorkloadSource(wctx, identity.WorkloadOptions{Addr: t.SpiffeSocket, Logger: log})
	}
	if err != nil {
		return nil, exitWith(1, fmt.Errorf("tls identity: %w", err))
	}
	if st, err := src.Status(); err == nil {
		log.Info("mTLS identity", "spiffe_id", st.ID.String(), "expires", st.NotAfter, "client_auth", t.ClientAuth)
	}
	return src, nil
}

// newColourer starts packet colouring as the config's bpf setting asks:
// "require" makes an eBPF failure fatal, "off" uses setsockopt only, "auto"
// falls back and says why.
func newColourer(cfg *config.Config, log *slog.Logger) (bpf.Colourer, uint32, error) {
	c, err := bpf.New(bpf.Options{Mode: cfg.BPF.Mode, MarkMask: cfg.BPF.MarkMask, CgroupPath: cfg.BPF.Cgroup})
	if err != nil {
		return nil, 0, exitWith(1, fmt.Errorf("bpf: %s: %w", cfg.BPF.Mode, err))
	}
	level := slog.LevelInfo
	if strings.Contains(c.Reason(), bpf.RootCgroupWarning) || strings.Contains(c.Reason(), bpf.OutsideCgroupWarning) {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "packet colouring", "mode", c.Mode(), "reason", c.Reason())
	return c, cfg.BPF.MarkMask, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %s: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want text or json, got %q", format)
}

func addrString(ln net.Listener) string {
	if ln == nil {
		return "off"
	}
	return ln.Addr().String()
}

// printURLs shows what to try: one curl per route.
func printURLs(w io.Writer, addr net.Addr, admin net.Listener, cfg *config.Config) {
	base := "http://" + hostPort(addr)
	if cfg.TLS != nil { // the gateway's SVID: https, and a client SVID unless tls.client_auth says otherwise
		base = "https://" + hostPort(addr)
	}
	fmt.Fprintf(w, "wasmesh gateway on %s", base)
	if admin != nil {
		a := cfg.AdminAuth
		scheme := "http"
		if len(a.AllowIDs) > 0 {
			scheme = "https"
		}
		fmt.Fprintf(w, ", admin API on %s://%s", scheme, hostPort(admin.Addr()))
		switch {
		case a.Insecure:
			fmt.Fprint(w, " (no authentication)")
		case a.TokenFile != "":
			fmt.Fprintf(w, " (token in %s)", a.TokenFile)
		}
	}
	fmt.Fprintln(w, "\ntry:")
	var lines []string
	for _, r := range cfg.Routes {
		p := cmp.Or(r.Match.Path, r.Match.PathPrefix)
		if p == "" {
			p = "/"
		}
		line := "  curl"
		if m := r.Match.Method; m != "" && m != "GET" {
			line += " -X " + m
		}
		if h := r.Match.Host; h != "" {
			// A wildcard's "*" stands for any label: "www" is one.
			line += " -H 'Host: " + strings.Replace(h, "*", "www", 1) + "'"
		}
		for _, k := range slices.Sorted(maps.Keys(r.Match.Headers)) {
			line += " -H '" + k + ": " + r.Match.Headers[k] + "'"
		}
		line += " " + base + p
		lines = append(lines, fmt.Sprintf("%-60s # %s", line, r.Service))
	}
	sort.Strings(lines)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

func hostPort(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", tcp.Port)
	}
	return a.String()
}

// routesCmd prints the resolved route table without compiling anything
// but the oci:// modules it has to pull.
func routesCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("routes", "--config FILE")
	configFile := fs.String("config", "wasmesh.yaml", "config file")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		return exitWith(2, err)
	}
	var store *modules.Store // opened at the first module: version (a check makes no store)
	var puller *routesPuller // made at the first oci:// version
	defer func() {
		if puller != nil {
			puller.close()
		}
	}()
	table, err := router.NewTable(cfg, func(v *config.Version) (string, error) {
		if v.Upstream != nil { // named by its spec, as serve names it
			return v.Upstream.UpstreamDigest(), nil
		}
		if v.IsOCI() {
			if puller == nil {
				if puller, err = newRoutesPuller(ctx, cfg); err != nil {
					return "", err
				}
			}
			return puller.pull(ctx, v.Module)
		}
		if v.Path == "" {
			if store == nil {
				if store, err = modules.OpenExisting(cfg.Store, modules.Options{}); err != nil {
					return "", err
				}
			}
			return store.Resolve(v.Module)
		}
		wasm, err := modules.ReadFile(v.AbsPath())
		if err != nil {
			return "", fmt.Errorf("%s: %w", v.AbsPath(), errors.Unwrap(err))
		}
		if err := modules.Check(wasm); err != nil { // as serve's load refuses it
			return "", err
		}
		return modules.DigestOf(wasm), nil
	})
	if err != nil {
		return exitWith(2, err)
	}
	table.Format(stdout)
	return nil
}

// routesPuller resolves oci:// versions to their modules' digests as serve
// would: from the store's index when a manifest was pulled before, else by
// pulling it into the store (validated by compiling, as every put is). One
// store and one registry client serve every version.
type routesPuller struct {
	store  *modules.Store
	client *oci.Client
	close  func()
}

func newRoutesPuller(ctx context.Context, cfg *config.Config) (*routesPuller, error) {
	store, done, err := openStore(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	c, err := oci.New(oci.Options{PlainHTTP: cfg.PlainHTTPRegistries()})
	if err != nil {
		done()
		return nil, err
	}
	return &routesPuller{store: store, client: c, close: done}, nil
}

func (p *routesPuller) pull(ctx context.Context, module string) (string, error) {
	ref, err := oci.ParseReference(module)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, control.PullTimeout)
	defer cancel()
	got, err := p.client.Pull(ctx, p.store, ref) // answered by the index when pulled before
	return got.Module, err
}

// reloadOnHangup loads the config file again at each SIGHUP on hup (kill
// -HUP, systemd's ExecReload), as POST /v1/config/reload does, until ctx
// is done: a file refused is logged, and the config before it serves on.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, g *mesh.Gateway, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: loading the config file again")
			if err := g.LoadFile(ctx); errors.Is(err, control.ErrExternal) {
				log.Warn("SIGHUP: nothing to load", "error", err)
			}
		}
	}
}

// firstLoad is g's load of data before the gateway serves, given up on at
// a SIGINT or SIGTERM (ctx done): what stops at the signal (a pull) makes
// it return; a compile does not stop once begun (a large component's
// takes seconds), and after a second the process exits without waiting
// for it, as nothing serves yet.
func firstLoad(ctx context.Context, g *mesh.Gateway, data []byte, log *slog.Logger) error {
	loaded := make(chan error, 1)
	go func() { loaded <- g.Reload(ctx, data) }()
	select {
	case err := <-loaded:
		return err
	case <-ctx.Done():
	}
	select {
	case <-loaded:
	case <-time.After(time.Second):
		log.Warn("signal before the first config loaded: exiting without waiting for its compiles")
		os.Exit(1)
	}
	return errSignalled
}

// errSignalled is firstLoad's error for a load given up on at a signal:
// the process stops, nothing resumed.
var errSignalled = errors.New("stopped by a signal before the first config loaded")
