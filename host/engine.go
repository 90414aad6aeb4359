package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"golang.org/x/sync/singleflight"

	"github.com/wasmesh/wasmesh/internal/wasmbin"
)

// Options configure an Engine. The zero value is valid.
type Options struct {
	// CacheDir holds wazero's compilation cache, so that a module compiled once
	// is loaded, not compiled, by later processes. Default "": no file cache.
	CacheDir string
	// Imports implements the "wasmesh" host functions. Default: no trace
	// context, logs to slog.Default, every http_call refused.
	Imports Imports
}

// Engine compiles and runs guests. It is safe for concurrent use.
type Engine struct {
	rt wazero.Runtime

	// hostFuncs are the functions guests may import, by module and name.
	hostFuncs map[string]map[string]api.FunctionDefinition

	group    singleflight.Group
	mu       sync.Mutex
	compiled map[string]*Module

	hits, misses, active atomic.Int64
}

// Stats are counters of an engine's work since it started.
type Stats struct {
	// CompileHits counts Compile calls answered by a module already compiled,
	// CompileMisses those that compiled (or loaded from the file cache).
	CompileHits, CompileMisses int64
	// Active is the number of instances running now.
	Active int64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{CompileHits: e.hits.Load(), CompileMisses: e.misses.Load(), Active: e.active.Load()}
}

// New starts an engine: a wazero runtime with the optimizing compiler where the
// platform has one, contexts that stop guests when done, and WASI preview 1.
func New(ctx context.Context, opts Options) (*Engine, error) {
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithCustomSections(true)
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
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if err := instantiateWASI(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	if opts.Imports == nil {
		opts.Imports = noImports{}
	}
	if err := instantiateImports(ctx, rt, opts.Imports); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("instantiate the %s host module: %w", ImportModule, err)
	}
	return &Engine{
		rt: rt,
		hostFuncs: map[string]map[string]api.FunctionDefinition{
			wasi_snapshot_preview1.ModuleName: rt.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions(),
			ImportModule:                      rt.Module(ImportModule).ExportedFunctionDefinitions(),
		},
		compiled: map[string]*Module{},
	}, nil
}

// instantiateWASI instantiates wazero's WASI preview 1 with the environment
// functions replaced by ones that read the run's context (see environ.go).
func instantiateWASI(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(environSizesGet), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("result.environc", "result.environv_len").
		Export("environ_sizes_get")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(environGet), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("environ", "environ_buf").
		Export("environ_get")
	_, err := b.Instantiate(ctx)
	return err
}

// Close releases every compiled module and the runtime.
func (e *Engine) Close(ctx context.Context) error {
	return e.rt.Close(ctx)
}

// Module is a compiled guest, ready to run any number of times concurrently.
type Module struct {
	// Digest is "sha256:<64 hex>" of the module's bytes.
	Digest string

	compiled wazero.CompiledModule
	minPages uint32
	hasStart bool
}

// Digest returns "sha256:<64 hex>" of wasm.
func Digest(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Compile compiles wasm, whose digest is digest, or returns the module compiled
// earlier under that digest. Concurrent calls for one digest compile once.
// An empty digest is computed from wasm.
func (e *Engine) Compile(ctx context.Context, digest string, wasm []byte) (*Module, error) {
	if digest == "" {
		digest = Digest(wasm)
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

// Validate compiles wasm and checks its imports without keeping the result.
func (e *Engine) Validate(ctx context.Context, wasm []byte) error {
	m, err := e.compile(ctx, "", wasm)
	if err != nil {
		return err
	}
	return m.compiled.Close(ctx)
}

// Release forgets the module compiled under digest, freeing its code once no
// instance uses it.
func (e *Engine) Release(ctx context.Context, digest string) {
	e.mu.Lock()
	m, ok := e.compiled[digest]
	delete(e.compiled, digest)
	e.mu.Unlock()
	if ok {
		_ = m.compiled.Close(ctx)
	}
}

func (e *Engine) compile(ctx context.Context, digest string, wasm []byte) (*Module, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly binary (no \\0asm magic)")
	}
	compiled, err := e.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("invalid WebAssembly module: %w", err)
	}
	if err := e.checkImports(compiled); err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	m := &Module{Digest: digest, compiled: compiled}
	_, m.hasStart = compiled.ExportedFunctions()["_start"]
	// The initial memory, exported or not, so that Run can refuse a module
	// whose start alone exceeds the memory limit.
	if info, err := wasmbin.Parse(wasm); err == nil {
		for _, mem := range info.Memories {
			if !mem.Imported {
				m.minPages = uint32(mem.Min)
			}
		}
	}
	return m, nil
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
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("unknown imports: %s", strings.Join(bad, ", "))
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
