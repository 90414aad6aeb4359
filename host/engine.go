package host

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"golang.org/x/sync/singleflight"

	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasip1"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
	"github.com/wasmesh/wasmesh/modules"
)

// Options configure an Engine. The zero value is valid.
type Options struct {
	// CacheDir holds wazero's compilation cache, so that a module compiled once
	// is loaded, not compiled, by later processes. Default "": no file cache.
	CacheDir string
	// Imports implements the "wasmesh" host functions. Default: no trace
	// context, logs to slog.Default, every http_call refused.
	Imports Imports
	// FreshInstances turns off reused instances (see reuse.go): every run
	// then creates an instance and closes it. Default false: a module whose
	// state can be reset runs in instances reset after each run.
	FreshInstances bool
	// MaxIdle is how many reset instances a module keeps ready per memory
	// limit and arguments. Default 0: DefaultMaxIdle.
	MaxIdle int
	// IdleTimeout is how long a reset instance (or a freed memory mapping)
	// is kept unused before it is closed, so that a version nobody calls
	// costs only its compiled code and memory image. Default 0:
	// DefaultIdleTimeout; negative: kept until the module is released.
	IdleTimeout time.Duration
	// Logger gets what the engine decides on its own: a component's
	// warm-up set aside. Default nil: slog.Default().
	Logger *slog.Logger
}

// DefaultIdleTimeout is Options.IdleTimeout's default.
const DefaultIdleTimeout = 30 * time.Second

// Engine compiles and runs guests. It is safe for concurrent use.
type Engine struct {
	rt       wazero.Runtime // fresh instances of modules as given
	stopRT   wazero.Runtime // fresh instances of instrumented modules
	reuseRT  wazero.Runtime // reused instances, with its own WASI (reuse.go)
	fresh    bool
	maxIdle  int
	log      *slog.Logger
	stop     chan struct{} // closed by Close: ends the idle trimmer
	stopOnce sync.Once
	trimmed  sync.WaitGroup

	// hostFuncs are the functions guests may import, by module and name.
	hostFuncs map[string]map[string]api.FunctionDefinition
	// snapshots are the components' core modules as rewritten before,
	// nil without a cache directory.
	snapshots *snapshotCache

	group    singleflight.Group
	mu       sync.Mutex
	compiled map[string]*Module

	hits, misses, active       atomic.Int64
	created, reused, discarded atomic.Int64
	expired                    atomic.Int64
}

// Stats are counters of an engine's work since it started.
type Stats struct {
	// CompileHits counts Compile calls answered by a module already compiled,
	// CompileMisses those that compiled (or loaded from the file cache).
	CompileHits, CompileMisses int64
	// Active is the number of instances running now.
	Active int64
	// InstancesCreated counts reusable instances created, InstancesReused
	// runs served by an instance reset after an earlier run, and
	// InstancesDiscarded instances closed after a run that could not be
	// reset (a trap, a deadline, grown memory) or found the pool full;
	// InstancesExpired idle instances closed after Options.IdleTimeout.
	InstancesCreated, InstancesReused, InstancesDiscarded, InstancesExpired int64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		CompileHits: e.hits.Load(), CompileMisses: e.misses.Load(), Active: e.active.Load(),
		InstancesCreated: e.created.Load(), InstancesReused: e.reused.Load(), InstancesDiscarded: e.discarded.Load(),
		InstancesExpired: e.expired.Load(),
	}
}

// New starts an engine: a wazero runtime with the optimizing compiler where the
// platform has one, contexts that stop guests when done, and WASI preview 1.
func New(ctx context.Context, opts Options) (*Engine, error) {
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithCustomSections(true).
		// Extended constant expressions (i32.add in an initialiser), which
		// componentize-py's output uses; wazero keeps them experimental.
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExtendedConst)
	if opts.CacheDir != "" {
		if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", opts.CacheDir, err)
		}
		cache, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", opts.CacheDir, err)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	if opts.Imports == nil {
		opts.Imports = noImports{}
	}
	e := &Engine{fresh: opts.FreshInstances, maxIdle: opts.MaxIdle, compiled: map[string]*Module{},
		snapshots: newSnapshotCache(opts.CacheDir), log: cmp.Or(opts.Logger, slog.Default())}
	if e.maxIdle <= 0 {
		e.maxIdle = DefaultMaxIdle
	}
	var err error
	if e.rt, err = newRuntime(ctx, cfg, instantiateWASI, opts.Imports); err != nil {
		return nil, err
	}
	// Prepared and instrumented modules stop themselves (reuse.go,
	// wasmbin.Instrument): no closing on context.
	if e.reuseRT, err = newRuntime(ctx, cfg.WithCloseOnContextDone(false), instantiateReuseWASI, opts.Imports); err != nil {
		_ = e.rt.Close(ctx)
		return nil, err
	}
	if e.stopRT, err = newRuntime(ctx, cfg.WithCloseOnContextDone(false), instantiateWASI, opts.Imports); err != nil {
		_ = e.rt.Close(ctx)
		_ = e.reuseRT.Close(ctx)
		return nil, err
	}
	e.hostFuncs = map[string]map[string]api.FunctionDefinition{
		wasi_snapshot_preview1.ModuleName: e.rt.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions(),
		ImportModule:                      e.rt.Module(ImportModule).ExportedFunctionDefinitions(),
	}
	e.stop = make(chan struct{})
	if idle := cmp.Or(opts.IdleTimeout, DefaultIdleTimeout); idle > 0 && !e.fresh {
		e.trimmed.Add(1)
		go e.trimIdle(idle)
	}
	return e, nil
}

// trimIdle closes, every half timeout, what has been idle longer than
// timeout, until the engine closes.
func (e *Engine) trimIdle(timeout time.Duration) {
	defer e.trimmed.Done()
	t := time.NewTicker(timeout / 2)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.mu.Lock()
			var rs []*reusable
			var cs []*components
			for _, m := range e.compiled {
				if m.reusable != nil {
					rs = append(rs, m.reusable)
				}
				if m.components != nil {
					cs = append(cs, m.components)
				}
			}
			e.mu.Unlock()
			for _, r := range rs {
				e.expired.Add(int64(r.trim(context.Background(), now.Add(-timeout))))
			}
			for _, c := range cs {
				e.expired.Add(int64(c.trim(now.Add(-timeout))))
			}
		}
	}
}

// newRuntime makes a runtime with WASI (as wasi instantiates it) and the
// wasmesh host module.
func newRuntime(ctx context.Context, cfg wazero.RuntimeConfig, wasi func(context.Context, wazero.Runtime) error, imp Imports) (wazero.Runtime, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if err := wasi(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	if err := instantiateImports(ctx, rt, imp); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiate the %s host module: %w", ImportModule, err)
	}
	return rt, nil
}

// instantiateWASI instantiates wazero's WASI preview 1 with the environment
// functions replaced by ones that read the run's context (see environ.go),
// and the descriptor functions by wasip1's, over the run's own table.
func instantiateWASI(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	exportEnviron(b)
	wasip1.Export(b, wasip1Host)
	_, err := b.Instantiate(ctx)
	return err
}

// Close releases every compiled module and the runtimes.
func (e *Engine) Close(ctx context.Context) error {
	e.stopOnce.Do(func() { close(e.stop) })
	e.trimmed.Wait()
	e.mu.Lock()
	mods := e.compiled
	e.compiled = map[string]*Module{}
	e.mu.Unlock()
	for _, m := range mods {
		m.close(ctx)
	}
	return errors.Join(e.reuseRT.Close(ctx), e.stopRT.Close(ctx), e.rt.Close(ctx))
}

// Module is a compiled guest, ready to run any number of times concurrently.
type Module struct {
	// Digest is "sha256:<64 hex>" of the module's bytes.
	Digest string
	// Reusable says whether runs are served by reset instances; when not,
	// NotReusable says why.
	Reusable    bool
	NotReusable string

	minPages uint32
	// minMemory is a component's largest memory at start, in bytes.
	minMemory uint64
	// notHandler says why a component that exports no wasi:http handler
	// is not one, when its exports tell ("" otherwise).
	notHandler string
	// entry is the export each run calls: "_start" for a command, or
	// ReactorEntry for a reactor, which initialize says to prepare by
	// calling "_initialize" first. "" when the module has neither.
	entry      string
	initialize bool

	// reusable is the module prepared for reused instances, nil when its
	// instances cannot be reset or the engine creates fresh ones.
	reusable *reusable
	// fresh is the module compiled for fresh instances. For a reusable
	// module it is compiled on its first fresh run (one with mounts, or a
	// terminal's stdin), from wasm.
	freshMu sync.Mutex
	fresh   *freshModule
	wasm    []byte

	// component is a wasi:http/proxy component linked in the engine (nil
	// for a core module), served by HandleHTTP; handler is its
	// wasi:http/incoming-handler export.
	component *component.Linked
	handler   string
	// exports are its exported interfaces that are not WASI's, by
	// interface (as component.Interface gives it): their export names.
	exports map[string]string
	// components are its reset instances, nil when they are not reused.
	components *components
}

// IsComponent reports whether m is a component, served by HandleHTTP
// rather than Run.
func (m *Module) IsComponent() bool { return m.component != nil }

// MinMemory is the memory the guest has at start, in bytes: a module's
// initial memory (after its _initialize, for a reactor), a component's
// largest.
func (m *Module) MinMemory() uint64 {
	if m.component != nil {
		return m.minMemory
	}
	return uint64(m.minPages) * pageSize
}

// freshModule is a module compiled for fresh instances: instrumented
// (wasmbin.Instrument) in the engine's stopRT when it can be, so that it
// stops itself through its stop global, else as given in rt, which closes
// instances when their context is done.
type freshModule struct {
	compiled wazero.CompiledModule
	rt       wazero.Runtime
	stop     string // the stop global's export, "" in rt
	// start is the export of the module's start function, which the
	// instrumented module does not run at instantiation: Run calls it
	// first, once the stop is armed. "" for none (or in rt).
	start string
}

// freshCompiled returns the module compiled for fresh instances.
func (m *Module) freshCompiled(ctx context.Context, e *Engine) (*freshModule, error) {
	m.freshMu.Lock()
	defer m.freshMu.Unlock()
	if m.fresh == nil {
		f, err := e.compileFresh(ctx, m.wasm)
		if err != nil {
			return nil, err
		}
		m.fresh = f
	}
	return m.fresh, nil
}

func (m *Module) close(ctx context.Context) {
	if m.components != nil {
		m.components.close()
	}
	if m.component != nil {
		_ = m.component.Close(ctx)
	}
	if m.reusable != nil {
		m.reusable.close(ctx)
	}
	m.freshMu.Lock()
	defer m.freshMu.Unlock()
	if m.fresh != nil {
		_ = m.fresh.compiled.Close(ctx)
	}
}

// Compile compiles wasm, whose digest is digest, or returns the module compiled
// earlier under that digest. Concurrent calls for one digest compile once.
// An empty digest is computed from wasm (modules.DigestOf). The digest must
// be wasm's (modules.DigestOf): it names the compiled module here, and a
// component's rewritten core modules in the cache directory, which later
// processes read too.
func (e *Engine) Compile(ctx context.Context, digest string, wasm []byte) (*Module, error) {
	if digest == "" {
		digest = modules.DigestOf(wasm)
	}
	e.mu.Lock()
	m, ok := e.compiled[digest]
	e.mu.Unlock()
	if ok {
		e.hits.Add(1)
		return m, nil
	}
	v, err, _ := e.group.Do(digest, func() (any, error) {
		e.misses.Add(1)
		m, err := e.compile(ctx, digest, wasm)
		if err != nil {
			return nil, err
		}
		e.mu.Lock()
		e.compiled[digest] = m
		e.mu.Unlock()
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Module), nil
}

// Validate compiles wasm and checks its imports without keeping the result;
// bytes the engine has compiled already are valid.
func (e *Engine) Validate(ctx context.Context, wasm []byte) error {
	digest := modules.DigestOf(wasm)
	e.mu.Lock()
	_, compiled := e.compiled[digest]
	e.mu.Unlock()
	if compiled {
		return nil
	}
	if component.IsComponent(wasm) {
		m, err := e.compileComponent(ctx, digest, wasm)
		if err == nil {
			m.close(ctx)
		}
		return err
	}
	if err := checkLimits(wasm); err != nil {
		return err
	}
	f, err := e.compileFresh(ctx, wasm)
	if err != nil {
		return err
	}
	return f.compiled.Close(ctx)
}

// checkLimits is wasmbin.CheckLimits for a module that has the magic (what
// has not, compileFresh names).
func checkLimits(wasm []byte) error {
	if len(wasm) >= 8 && string(wasm[:4]) == "\x00asm" {
		if err := wasmbin.CheckLimits(wasm); err != nil {
			return fmt.Errorf("invalid WebAssembly module: %w", err)
		}
	}
	return nil
}

// Compiled returns the module compiled under digest, nil when there is
// none (not compiled yet, or released).
func (e *Engine) Compiled(digest string) *Module {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.compiled[digest]
}

// Release forgets the module compiled under digest, freeing its code and
// idle instances once no run uses them.
func (e *Engine) Release(ctx context.Context, digest string) {
	e.mu.Lock()
	m, ok := e.compiled[digest]
	delete(e.compiled, digest)
	e.mu.Unlock()
	if ok {
		m.close(ctx)
	}
}

func (e *Engine) compile(ctx context.Context, digest string, wasm []byte) (*Module, error) {
	if component.IsComponent(wasm) {
		return e.compileComponent(ctx, digest, wasm)
	}
	if err := checkLimits(wasm); err != nil {
		return nil, err
	}
	m := &Module{Digest: digest}
	// The initial memory, exported or not, so that Run can refuse a module
	// whose start alone exceeds the memory limit.
	if info, err := wasmbin.Parse(wasm); err == nil {
		for _, mem := range info.Memories {
			if !mem.Imported {
				m.minPages = uint32(mem.Min)
			}
		}
	}
	p, perr := wasmbin.Prepare(wasm)
	if errors.Is(perr, wasmbin.ErrCannotInstantiate) {
		return nil, perr
	}
	if !e.fresh {
		if perr != nil {
			m.NotReusable = perr.Error()
		} else if r, err := e.prepareReusable(ctx, p); err != nil {
			m.NotReusable = err.Error()
		} else if err := e.checkImports(r.compiled); err != nil {
			r.close(ctx)
			return nil, err
		} else {
			m.entry, m.initialize = entryOf(r.compiled)
			if m.initialize {
				if err := e.snapshot(ctx, r); err != nil {
					r.close(ctx)
					return nil, err
				}
				m.minPages = r.minPages
			}
			m.reusable, m.Reusable, m.wasm = r, true, wasm
			return m, nil
		}
	} else {
		m.NotReusable = "the engine creates fresh instances"
	}
	fresh, err := e.compileFresh(ctx, wasm)
	if err != nil {
		return nil, err
	}
	m.fresh = fresh
	m.entry, m.initialize = entryOf(fresh.compiled)
	return m, nil
}

// ReactorEntry is the export a reactor module's runs call; see
// docs/abi.md.
const ReactorEntry = "wasmesh_handle"

// entryOf returns the export each run calls: ReactorEntry when the module
// exports it (with initialize set when it also exports "_initialize"),
// else "_start" when it exports that.
func entryOf(m wazero.CompiledModule) (entry string, initialize bool) {
	exports := m.ExportedFunctions()
	if _, ok := exports[ReactorEntry]; ok {
		_, initialize = exports["_initialize"]
		return ReactorEntry, initialize
	}
	if _, ok := exports["_start"]; ok {
		return "_start", false
	}
	return "", false
}

// compileFresh compiles wasm as given, for fresh instances.
func (e *Engine) compileFresh(ctx context.Context, wasm []byte) (*freshModule, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly binary (no \\0asm magic)")
	}
	// Instrumented, it stops itself; as given (when it cannot be, or does
	// not compile so: then the error is the original's), wazero stops it.
	f := &freshModule{}
	if code, stop, start, err := wasmbin.Instrument(wasm); err == nil {
		if c, err := compileModule(ctx, e.stopRT, code); err == nil {
			f.compiled, f.rt, f.stop, f.start = c, e.stopRT, stop, start
		}
	}
	if f.compiled == nil {
		c, err := compileModule(ctx, e.rt, wasm)
		if err != nil {
			return nil, fmt.Errorf("invalid WebAssembly module: %w", err)
		}
		f.compiled, f.rt = c, e.rt
	}
	compiled := f.compiled
	if err := e.checkImports(compiled); err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	return f, nil
}

// compileModule is rt.CompileModule, with a panic of wazero's turned into
// an error: its validator has panicked on malformed modules (a load's
// alignment read as a memory index, found by FuzzPrepare), and a module
// must never bring the process down.
func compileModule(ctx context.Context, rt wazero.Runtime, wasm []byte) (m wazero.CompiledModule, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("the WebAssembly runtime failed on it: %v", r)
		}
	}()
	if m, err = rt.CompileModule(ctx, wasm); err != nil {
		err = withBodyOffset(err, wasm) // which function wazero refused, and where
	}
	return m, err
}

// checkImports refuses a module that imports anything the engine does not
// provide, or with another signature, naming every such import.
func (e *Engine) checkImports(m wazero.CompiledModule) error {
	var bad []string
	for _, f := range m.ImportedFunctions() {
		mod, name, _ := f.Import()
		def, ok := e.hostFuncs[mod][name]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s.%s", mod, name))
		case !slices.Equal(def.ParamTypes(), f.ParamTypes()) || !slices.Equal(def.ResultTypes(), f.ResultTypes()):
			bad = append(bad, fmt.Sprintf("%s.%s (signature %s, want %s)", mod, name, signature(f), signature(def)))
		}
	}
	for _, mem := range m.ImportedMemories() {
		mod, name, _ := mem.Import()
		bad = append(bad, fmt.Sprintf("%s.%s (memory)", mod, name))
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("unknown imports: %s", strings.Join(bad, ", "))
	}
	// The exports the host calls take and return nothing: one called with
	// the wrong signature would fail every run.
	exports := m.ExportedFunctions()
	for _, name := range []string{ReactorEntry, "_start", "_initialize"} {
		if f, ok := exports[name]; ok && (len(f.ParamTypes()) > 0 || len(f.ResultTypes()) > 0) {
			bad = append(bad, fmt.Sprintf("%s (signature %s, want ()->())", name, signature(f)))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("exports the host calls with another signature: %s", strings.Join(bad, ", "))
	}
	return nil
}

func signature(f api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ",")
	}
	return "(" + names(f.ParamTypes()) + ")->(" + names(f.ResultTypes()) + ")"
}
