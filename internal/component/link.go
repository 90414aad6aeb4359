package component

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
)

// HostFunc implements a function a component imports. Its arguments and
// its result are cabi values (a function has at most one result; the value
// returned for a function without one is ignored); the Instance is the
// calling instance, for its host objects. An error traps the guest's call.
type HostFunc func(ctx context.Context, inst *Instance, args []any) (any, error)

// Host is what a host provides for components to import.
type Host struct {
	// Funcs by "<interface>#<function>" with the interface as Interface
	// gives it ("wasi:io/streams@0.2#[method]output-stream.write"), or by
	// the bare name for a function the world imports itself ("log").
	Funcs map[string]HostFunc
	// Fallback, when set, is asked for a function Funcs lacks: given its
	// key and result types, it returns an implementation (a WASI host
	// denies what it does not grant with the interface's own error), or
	// nil for a missing import.
	Fallback func(key string, results []*cabi.Type) HostFunc
	// Flat are functions written on core values, by the keys of Funcs:
	// one serves an import whose type is its own (FlatFunc.Type), Funcs'
	// the others.
	Flat map[string]FlatFunc
	// Drops release the host objects behind resources the host provides, by
	// "<interface>#<resource>" ("wasi:io/streams@0.2#output-stream"), when
	// the guest drops its handle. A resource without one is dropped by
	// forgetting its object.
	Drops map[string]func(inst *Instance, rep uint32)
}

// ErrMissingImport is wrapped by Link's errors for an import the host does
// not provide.
var ErrMissingImport = errors.New("the host does not provide an import")

// Linked is a component made ready to instantiate on a wazero runtime: its
// core modules compiled with their imports pointed at the instances that
// provide them, and its imports bound to the host's functions.
type Linked struct {
	c          *Component
	top        *scope
	rt         wazero.Runtime
	host       *Host
	modules    []wazero.CompiledModule // by core instance; nil for bundles
	canons     []*canonFunc            // by canon definition; nil for lifts
	lifts      map[int]*funcType       // the types of the canon lifts, by canon definition
	hostModule *sharedHost             // the host module its core modules import from
	hostName   string
	hostFuncs  []hostFunc
	ids        resourceIDs
	// globals are the export names of each core instance's mutable
	// globals (wasmbin.Resettable), and notResettable why the instances
	// cannot be reset, nil when they can. stops are the export names of
	// their stop globals ("" for a module without loops), nil when the
	// component is not linked in LinkOptions.Stoppable.
	globals       [][]string
	stops         []string
	notResettable error
	opts          LinkOptions
}

// canonFunc is a core function the component's canon definitions make: a
// lowered import, or a resource built-in.
type canonFunc struct {
	op       byte
	name     string // what it lowers, for errors
	fn       HostFunc
	plan     *flatPlan // set when a FlatFunc serves it
	ft       *funcType
	opts     CanonOpts
	resource int
	drop     func(inst *Instance, rep uint32)
	dtor     *uint32 // a local resource's destructor: a core function index
	// nparams is how many core parameters carry a lowered import's
	// arguments; outParam says a last one points where its results go
	// (they flatten to more than cabi.MaxFlatResults values).
	nparams  int
	outParam bool
	index    int // of the canon definition
}

// Link prepares component c for runtime rt, with host's functions as its
// imports. An import the host lacks is an error wrapping ErrMissingImport
// that names it: refused at deploy, not at the first call.
func Link(ctx context.Context, rt wazero.Runtime, c *Component, host *Host) (*Linked, error) {
	return LinkWith(ctx, rt, c, host, LinkOptions{})
}

// LinkOptions are Link's optional settings.
type LinkOptions struct {
	// Cache keeps the core modules as wasmbin.Resettable rewrote them, by
	// a sha256: of their bytes as linked, or of the component's Digest and
	// the module's place (with linkKeyVersion), so that a later link of
	// the same bytes (a restart, a reload, a validation) does not read
	// megabytes of code again. Default nil: every link rewrites every
	// module.
	Cache interface {
		Load(sum [sha256.Size]byte) (*wasmbin.Snapshot, bool)
		Store(sum [sha256.Size]byte, s *wasmbin.Snapshot)
	}
	// Digest is the component's sha256 digest (modules.DigestOf of the
	// bytes decoded), when the caller has it: the Cache then keys a core
	// module by it and the module's place instead of by the module's own
	// bytes, so that a cached one is neither copied with its imports
	// renamed nor hashed (27 ms for componentize-js's 12 MB engine). A
	// digest of other bytes would have the cache hand out another
	// component's modules. Default "": keyed by the bytes.
	Digest string
	// Stoppable is a runtime that does not close instances when their
	// context is done (wazero's WithCloseOnContextDone(false): no exit to
	// Go at every loop iteration, no goroutine per call). The component is
	// linked in it when every core module that loops could be given the
	// yield check (wasmbin.Snapshot.Stop): a call then stops when its
	// context is done by setting the modules' stop globals. Default nil:
	// the runtime given to LinkWith, which must close instances when their
	// context is done.
	Stoppable wazero.Runtime
}

// LinkWith is Link with options.
func LinkWith(ctx context.Context, rt wazero.Runtime, c *Component, host *Host, opts LinkOptions) (*Linked, error) {
	l := &Linked{c: c, top: newScope(c, nil), rt: rt, host: host, lifts: map[int]*funcType{}, opts: opts}
	l.canons = make([]*canonFunc, len(c.Canons))
	for i, cn := range c.Canons {
		if cn.Op == CanonLift {
			// Every type is converted here, once: Call and FuncType only
			// read them, from any goroutine.
			ft, err := l.top.cabiFunc(cn.Type, &l.ids)
			if err != nil {
				return nil, fmt.Errorf("canon lift %d: %w", i, err)
			}
			l.lifts[i] = ft
			continue
		}
		cf, err := l.canonFunc(cn)
		if err != nil {
			return nil, fmt.Errorf("canon definition %d: %w", i, err)
		}
		cf.index = i
		l.canons[i] = cf
	}
	l.hostShape()
	// Rewritten first: which runtime the modules go to depends on all of
	// them, and the host module lives in that runtime.
	instances := c.Space[Sort{Core: true, Kind: CoreInstance}]
	code := make([][]byte, len(instances))
	l.globals = make([][]string, len(instances))
	l.stops = make([]string, len(instances))
	unstoppable := opts.Stoppable == nil
	for i, d := range instances {
		if d.From != FromDefinition {
			return nil, fmt.Errorf("core instance %d: only instances defined in the component are supported", i)
		}
		ci := c.CoreInstances[d.N]
		if ci.Module == nil {
			continue
		}
		s, err := l.rewrite(i, ci)
		if err != nil {
			return nil, fmt.Errorf("core instance %d: %w", i, err)
		}
		code[i] = s.Module
		l.globals[i], l.stops[i] = s.Globals, s.Stop
		unstoppable = unstoppable || l.notResettable != nil || s.Unstoppable != ""
	}
	if !unstoppable {
		l.rt = opts.Stoppable
	} else {
		// wazero's check stops them: the modules given ours are rewritten
		// again without it (rare: a module that loops without a memory, or
		// with a start function).
		for i, stop := range l.stops {
			if stop == "" || l.notResettable != nil {
				continue
			}
			ci := c.CoreInstances[instances[i].N]
			renamed, err := l.rename(ci)
			if err == nil {
				var s *wasmbin.Snapshot
				if s, err = wasmbin.ResettableUnchecked(renamed); err == nil {
					code[i], l.globals[i] = s.Module, s.Globals
				}
			}
			if err != nil {
				return nil, fmt.Errorf("core instance %d: %w", i, err)
			}
		}
		l.stops = nil
	}
	if err := l.instantiateHost(ctx); err != nil {
		return nil, err
	}
	l.modules = make([]wazero.CompiledModule, len(instances))
	for i, b := range code {
		if b == nil {
			continue
		}
		// Checked as a module version is (host's checkLimits): sizes the
		// runtime would allocate as declared, nesting it would take
		// minutes to compile.
		if err := wasmbin.CheckLimits(b); err != nil {
			l.Close(ctx)
			return nil, fmt.Errorf("core instance %d: %w", i, err)
		}
		cm, err := compileModule(ctx, l.rt, b)
		if err != nil {
			l.Close(ctx)
			return nil, fmt.Errorf("core instance %d: %w", i, err)
		}
		l.modules[i] = cm
	}
	return l, nil
}

// Close releases the compiled modules and the host module.
func (l *Linked) Close(ctx context.Context) error {
	for _, m := range l.modules {
		if m != nil {
			m.Close(ctx)
		}
	}
	if l.hostModule != nil {
		return l.hostModule.release(ctx)
	}
	return nil
}

// target is where a core definition lives: an export of an instantiated
// core instance, or a function of the host module.
type target struct {
	inst  int    // core instance index, or -1 for the host module
	name  string // its export name
	canon int    // for the host module: the canon definition
}

func (t target) module() string {
	if t.inst < 0 {
		return "host"
	}
	return "ci:" + strconv.Itoa(t.inst)
}

// coreExport resolves export name of core instance i to where it lives.
func (l *Linked) coreExport(i uint32, name string, depth int) (target, error) {
	if depth > maxNesting {
		return target{}, fmt.Errorf("aliases nested more than %d deep", maxNesting)
	}
	defs := l.c.Space[Sort{Core: true, Kind: CoreInstance}]
	if int(i) >= len(defs) || defs[i].From != FromDefinition {
		return target{}, fmt.Errorf("core instance %d does not exist", i)
	}
	ci := l.c.CoreInstances[defs[i].N]
	if ci.Module != nil {
		return target{inst: int(i), name: name}, nil
	}
	for _, e := range ci.Exports {
		if e.Name == name {
			return l.coreIndex(e.Sort, e.Idx, depth+1)
		}
	}
	return target{}, fmt.Errorf("core instance %d exports no %q", i, name)
}

// coreIndex resolves index idx of core sort s.
func (l *Linked) coreIndex(s byte, idx uint32, depth int) (target, error) {
	defs := l.c.Space[Sort{Core: true, Kind: s}]
	if int(idx) >= len(defs) {
		return target{}, fmt.Errorf("%s %d does not exist", Sort{Core: true, Kind: s}, idx)
	}
	switch d := defs[idx]; d.From {
	case FromAlias:
		a := l.c.Aliases[d.N]
		if a.Kind != AliasCoreExport {
			return target{}, fmt.Errorf("%s %d: an outer alias", Sort{Core: true, Kind: s}, idx)
		}
		return l.coreExport(a.Instance, a.Name, depth+1)
	case FromCanon:
		return target{inst: -1, name: "canon:" + strconv.Itoa(d.N), canon: d.N}, nil
	}
	return target{}, fmt.Errorf("%s %d is neither an alias nor a canon definition", Sort{Core: true, Kind: s}, idx)
}

// rename returns the module core instance ci instantiates, its imports
// renamed to "ci:<instance>" or "host" and the name of the export there.
func (l *Linked) rename(ci CoreInstanceDef) ([]byte, error) {
	mods := l.c.Space[Sort{Core: true, Kind: CoreModule}]
	if int(*ci.Module) >= len(mods) || mods[*ci.Module].From != FromDefinition {
		return nil, fmt.Errorf("module %d: only modules defined in the component are supported", *ci.Module)
	}
	m := l.c.Modules[mods[*ci.Module].N]
	args := map[string]uint32{}
	for _, a := range ci.Args {
		args[a.Name] = a.Instance
	}
	return wasmbin.RenameImports(m.Bytes, func(mod, name string, _ byte) (string, string, error) {
		inst, ok := args[mod]
		if !ok {
			return "", "", fmt.Errorf("module %d imports %s.%s, and the instantiation has no %q argument", *ci.Module, mod, name, mod)
		}
		t, err := l.coreExport(inst, name, 0)
		if err != nil {
			return "", "", fmt.Errorf("import %s.%s: %w", mod, name, err)
		}
		if t.inst < 0 {
			return l.hostName, t.name, nil
		}
		return t.module(), t.name, nil
	})
}

// linkKeyVersion is in a cache key made from a component's digest: it
// changes whenever what rename makes of a component does (the names it
// gives imports, which exports it binds them to), since such a key, unlike
// one of the renamed bytes, would not change with it.
const linkKeyVersion = "wasmesh-link-v1"

// rewrite returns the module core instance i instantiates (rename),
// rewritten by wasmbin.Resettable while every module so far could be
// (else as it is, with l.notResettable saying why).
func (l *Linked) rewrite(i int, ci CoreInstanceDef) (*wasmbin.Snapshot, error) {
	// Without a runtime where guests stop themselves, no yield check:
	// wazero's stops them (and the cache holds checked rewrites only).
	prepare, cache := wasmbin.Resettable, l.opts.Cache
	if l.opts.Stoppable == nil || l.notResettable != nil {
		prepare, cache = wasmbin.ResettableUnchecked, nil
	}
	var sum [sha256.Size]byte
	if cache != nil && l.opts.Digest != "" {
		// The renamed module is the component's module i with the imports
		// its instantiation gives it, named after the host's shape.
		sum = sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00core instance %d\x00%s", linkKeyVersion, l.opts.Digest, i, l.hostName))
		if s, ok := cache.Load(sum); ok {
			return s, nil
		}
	}
	renamed, err := l.rename(ci)
	if err != nil {
		return nil, err
	}
	if l.notResettable != nil {
		return &wasmbin.Snapshot{Module: renamed}, nil
	}
	if cache != nil && l.opts.Digest == "" {
		sum = sha256.Sum256(renamed)
		if s, ok := cache.Load(sum); ok {
			return s, nil
		}
	}
	s, err := prepare(renamed)
	if err != nil {
		l.notResettable = fmt.Errorf("core instance %d: %w", i, err)
		return &wasmbin.Snapshot{Module: renamed}, nil
	}
	if cache != nil {
		cache.Store(sum, s)
	}
	return s, nil
}

// Resettable says whether the component's instances can be reset to the
// state instantiation left them in (Instance.Snapshot, Instance.Reset):
// nil when every core module keeps its state in linear memory and mutable
// globals, else what stands in the way (an error wrapping
// wasmbin.ErrNotReusable).
func (l *Linked) Resettable() error { return l.notResettable }

// MinMemory is the initial size in bytes of the largest memory its core
// modules export (the memories the canonical ABI uses; each is limited on
// its own).
func (l *Linked) MinMemory() uint64 {
	var most uint64
	for _, m := range l.modules {
		if m == nil {
			continue
		}
		for _, mem := range m.ExportedMemories() {
			most = max(most, uint64(mem.Min())*wasmbin.PageSize)
		}
	}
	return most
}

// canonFunc binds a lower or a resource built-in to what it calls.
func (l *Linked) canonFunc(cn Canon) (*canonFunc, error) {
	cf := &canonFunc{op: cn.Op, opts: cn.Opts}
	switch cn.Op {
	case CanonLower:
		key, sc, ti, err := l.importedFunc(cn.Func)
		if err != nil {
			return nil, err
		}
		if cf.ft, err = sc.cabiFunc(ti, &l.ids); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		fn, ok := l.host.Funcs[key]
		if !ok && l.host.Fallback != nil {
			fn = l.host.Fallback(key, cf.ft.results)
		}
		if fn == nil {
			return nil, fmt.Errorf("%w: %s", ErrMissingImport, key)
		}
		cf.fn, cf.name = fn, key
		ps, _ := cabi.FlattenFunc(cf.ft.params, cf.ft.results, false)
		var nresults int
		for _, t := range cf.ft.results {
			nresults += len(cabi.Flatten(t))
		}
		cf.nparams, cf.outParam = len(ps), nresults > cabi.MaxFlatResults
		if cf.outParam {
			cf.nparams--
		}
		if ff, ok := l.host.Flat[key]; ok {
			cf.plan = planFlat(cf, ff, l.ids.names)
		}
		return cf, nil
	case CanonResourceNew, CanonResourceDrop, CanonResourceRep:
		e := l.top.at(cn.Type)
		if !e.resource || e.id == "" {
			return nil, fmt.Errorf("resource built-in on type %d, which is not a resource", cn.Type)
		}
		cf.resource, cf.name = l.ids.of(e.id), e.id
		if cn.Op != CanonResourceDrop && !strings.HasPrefix(e.id, "local#") {
			return nil, fmt.Errorf("resource.new or resource.rep of %s, a resource the component imports (only its own resources)", e.id)
		}
		if cn.Op == CanonResourceDrop && !strings.HasPrefix(e.id, "local#") {
			iface, res, _ := strings.Cut(e.id, "#")
			cf.drop = l.host.Drops[Interface(iface)+"#"+res]
		}
		if cn.Op == CanonResourceDrop && strings.HasPrefix(e.id, "local#") && e.def.Resource.Dtor != nil {
			if e.scope == nil || e.scope.comp != l.c {
				return nil, fmt.Errorf("the destructor of %s, a resource of a nested component, is not supported", e.id)
			}
			cf.dtor = e.def.Resource.Dtor
		}
		return cf, nil
	}
	return nil, fmt.Errorf("canonical built-in 0x%02x is not supported", cn.Op)
}

// importedFunc finds the component function f imports: its host key, and
// its type (index ti in scope sc).
func (l *Linked) importedFunc(f uint32) (key string, sc *scope, ti uint32, err error) {
	c := l.c
	defs := c.Space[Sort{Kind: SortFunc}]
	if int(f) >= len(defs) {
		return "", nil, 0, fmt.Errorf("func %d does not exist", f)
	}
	switch d := defs[f]; d.From {
	case FromImport:
		im := c.Imports[d.N]
		return im.Name, l.top, im.Type.Idx, nil
	case FromAlias:
		a := c.Aliases[d.N]
		if a.Kind != AliasExport {
			break
		}
		idefs := c.Space[Sort{Kind: SortInstance}]
		if int(a.Instance) >= len(idefs) || idefs[a.Instance].From != FromImport {
			return "", nil, 0, fmt.Errorf("func %d: %q of an instance the component makes (calls between its own components are not supported)", f, a.Name)
		}
		name := c.Imports[idefs[a.Instance].N].Name
		ds := l.top.instanceType(a.Instance)
		if ds == nil {
			return "", nil, 0, fmt.Errorf("import %s: its type is not an instance type", name)
		}
		ti, ok := ds.funcTypes[a.Name]
		if !ok {
			return "", nil, 0, fmt.Errorf("import %s has no function %q", name, a.Name)
		}
		return Interface(name) + "#" + a.Name, ds.scope, ti, nil
	}
	return "", nil, 0, fmt.Errorf("func %d is not an imported function (lowering the component's own functions is not supported)", f)
}

// The host module a component's core modules import their canon-made
// functions from ("canon:<definition index>") exports one function per
// canon definition, each of which calls the calling instance's definition.
// It depends only on those functions' core signatures, so links of
// components with the same signatures share one, named after them: the
// rewritten core modules of a component are then the same bytes in every
// link and every process, and the compilation cache finds them again.
type sharedHost struct {
	rt   wazero.Runtime
	name string
	mod  api.Module
	refs int
}

var sharedHosts = struct {
	sync.Mutex
	m map[wazero.Runtime]map[string]*sharedHost
}{m: map[wazero.Runtime]map[string]*sharedHost{}}

func (h *sharedHost) release(ctx context.Context) error {
	sharedHosts.Lock()
	defer sharedHosts.Unlock()
	if h.refs--; h.refs > 0 {
		return nil
	}
	delete(sharedHosts.m[h.rt], h.name)
	if len(sharedHosts.m[h.rt]) == 0 {
		delete(sharedHosts.m, h.rt)
	}
	return h.mod.Close(ctx)
}

// hostFunc is a function of the host module: the canon definition it
// runs, and its core signature.
type hostFunc struct {
	index           int
	params, results []api.ValueType
}

// hostShape lists the host module's functions and names the module after
// their signatures.
func (l *Linked) hostShape() {
	shape := sha256.New()
	for i, cf := range l.canons {
		if cf == nil {
			continue
		}
		var params, results []api.ValueType
		switch cf.op {
		case CanonLower:
			ps, rs := cabi.FlattenFunc(cf.ft.params, cf.ft.results, false)
			params, results = valueTypes(ps), valueTypes(rs)
		case CanonResourceNew, CanonResourceRep:
			params, results = []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}
		case CanonResourceDrop:
			params = []api.ValueType{api.ValueTypeI32}
		}
		l.hostFuncs = append(l.hostFuncs, hostFunc{i, params, results})
		fmt.Fprintf(shape, "%d:%v>%v;", i, params, results)
	}
	l.hostName = "wasmesh-canon-" + hex.EncodeToString(shape.Sum(nil)[:12])
}

// instantiateHost finds or defines the host module for the component's
// canon definitions (hostShape), in its runtime.
func (l *Linked) instantiateHost(ctx context.Context) error {
	sharedHosts.Lock()
	defer sharedHosts.Unlock()
	if h := sharedHosts.m[l.rt][l.hostName]; h != nil {
		h.refs++
		l.hostModule = h
		return nil
	}
	b := l.rt.NewHostModuleBuilder(l.hostName)
	for _, f := range l.hostFuncs {
		i := f.index
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
			inst := instanceFrom(ctx)
			if inst == nil {
				panic(fmt.Errorf("component: canon definition %d called outside an instance", i))
			}
			if err := inst.canon(ctx, inst.l.canons[i], stack); err != nil {
				panic(err)
			}
		}), f.params, f.results).Export("canon:" + strconv.Itoa(i))
	}
	mod, err := b.Instantiate(ctx)
	if err != nil {
		return err
	}
	l.hostModule = &sharedHost{rt: l.rt, name: l.hostName, mod: mod, refs: 1}
	if sharedHosts.m[l.rt] == nil {
		sharedHosts.m[l.rt] = map[string]*sharedHost{}
	}
	sharedHosts.m[l.rt][l.hostName] = l.hostModule
	return nil
}

func valueTypes(cs []cabi.CoreType) []api.ValueType {
	out := make([]api.ValueType, len(cs))
	for i, c := range cs {
		switch c {
		case cabi.I32:
			out[i] = api.ValueTypeI32
		case cabi.I64:
			out[i] = api.ValueTypeI64
		case cabi.F32Core:
			out[i] = api.ValueTypeF32
		case cabi.F64Core:
			out[i] = api.ValueTypeF64
		}
	}
	return out
}

// instanceKey finds the Instance a host function serves in its context.
type instanceKey struct{}

func instanceFrom(ctx context.Context) *Instance {
	inst, _ := ctx.Value(instanceKey{}).(*Instance)
	return inst
}

// Instance is an instance of a linked component: its core instances, its
// handle table and the host objects behind its handles.
type Instance struct {
	l       *Linked
	mods    []api.Module
	handles handleTable
	objects objectTable
	// State is the host's, for its functions (a WASI context).
	State any
	// globals are the mutable globals of the core instances and initial
	// their values when Snapshot was called.
	globals []api.MutableGlobal
	initial []uint64
	// funcs are the core functions the instance has called, by target:
	// wazero makes a new call engine (and its stack) for every
	// ExportedFunction, so each is made once.
	funcs map[target]api.Function
	// calls are the export functions Call has called, resolved.
	calls map[[2]string]*callTarget
	// args is the buffer canon lifts a host function's arguments into,
	// argsTaken while they are in it.
	args      []any
	argsTaken bool
	flatCall  FlatCall // FlatFunc's calls'

	// opts are the canon definitions' options resolved in this instance,
	// by definition index, made on first use; callCtx is the context of
	// the call under way, which their reallocs run in.
	opts    []*resolvedOpts
	callCtx context.Context
	// stops are the core instances' stop globals when the component is
	// linked in LinkOptions.Stoppable: Call sets them when its context is
	// done (watch).
	stops    []api.MutableGlobal
	watch    watch
	deadline time.Time // SetDeadline's
	// noLeave is the canonical ABI's may_leave, negated: set while the
	// guest's realloc or post-return runs, which may not call the host.
	noLeave bool
}

// resolvedOpts are canon options resolved to the instance's memory and
// realloc, and the canonical ABI context made of them.
type resolvedOpts struct {
	memory   api.Memory
	encoding cabi.Encoding
	realloc  func(old, oldSize, align, size uint32) (uint32, error)
	cx       *cabi.Context
}

// Instantiate makes an instance: every core instance in order, each
// import resolved to the instance or host function that provides it.
func (l *Linked) Instantiate(ctx context.Context, state any) (*Instance, error) {
	inst := &Instance{l: l, mods: make([]api.Module, len(l.modules)), State: state}
	inst.watch.alarm.Init(inst.check)
	ctx = inst.context(ctx)
	for i, cm := range l.modules {
		if cm == nil {
			continue
		}
		m, err := l.rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
		if err != nil {
			inst.Close(context.Background())
			return nil, fmt.Errorf("core instance %d: %w", i, err)
		}
		inst.mods[i] = m
		if len(l.stops) > i && l.stops[i] != "" {
			g, ok := m.ExportedGlobal(l.stops[i]).(api.MutableGlobal)
			if !ok {
				inst.Close(context.Background())
				return nil, fmt.Errorf("core instance %d: its stop global %s is not exported mutable", i, l.stops[i])
			}
			inst.stops = append(inst.stops, g)
		}
	}
	return inst, nil
}

// Stoppable says whether the component is linked in LinkOptions.Stoppable,
// where its calls stop themselves when their context is done.
func (l *Linked) Stoppable() bool { return l.stops != nil }

// SetDeadline makes the calls of a Stoppable component's instance that
// follow stop at t as well as when their context is done: a caller with a
// deadline need not make a context with it (a timer each). Zero: only when
// their context is done.
func (inst *Instance) SetDeadline(t time.Time) { inst.deadline = t }

// stop sets the stop globals: the guest traps at its next yield check.
func (inst *Instance) stop() {
	for _, g := range inst.stops {
		g.Set(1)
	}
}

// context is ctx with the instance, for its host functions, and the
// resolver of its core modules' imports (Call needs only the first).
func (inst *Instance) context(ctx context.Context) context.Context {
	ctx = context.WithValue(ctx, instanceKey{}, inst)
	return experimental.WithImportResolver(ctx, func(name string) api.Module {
		if n, ok := strings.CutPrefix(name, "ci:"); ok {
			if i, err := strconv.Atoi(n); err == nil && i >= 0 && i < len(inst.mods) {
				return inst.mods[i]
			}
		}
		return nil
	})
}

// Snapshot records the instance's state for Reset: the values of its core
// instances' mutable globals. Its linear memories are the caller's to
// record (they are allocated through the context's
// experimental.MemoryAllocator). It fails when the component is not
// Resettable, or when instantiation left handles or host objects in the
// instance (a start function that called the host): those would outlive
// a reset.
func (inst *Instance) Snapshot() error {
	if err := inst.l.notResettable; err != nil {
		return err
	}
	if inst.objects.live > 0 || len(inst.handles.entries) > 0 {
		return fmt.Errorf("instantiation left %d handles and %d host objects: %w", len(inst.handles.entries), inst.objects.live, wasmbin.ErrNotReusable)
	}
	inst.globals, inst.initial = inst.globals[:0], inst.initial[:0]
	for i, names := range inst.l.globals {
		for _, name := range names {
			g, ok := inst.mods[i].ExportedGlobal(name).(api.MutableGlobal)
			if !ok {
				return fmt.Errorf("core instance %d: global %s is not exported mutable", i, name)
			}
			inst.globals = append(inst.globals, g)
			inst.initial = append(inst.initial, g.Get())
		}
	}
	return nil
}

// Settle, after a call, empties the handle table and forgets the host
// objects, as Reset does, without touching globals or memories: what the
// call left in them becomes the state Snapshot records. A handle the
// guest kept in its memory is gone, as after any reset.
func (inst *Instance) Settle() {
	inst.handles.reset()
	inst.objects.reset()
	inst.State = nil
}

// Reset sets the instance's globals back to their values at Snapshot and
// empties its handle table and host objects, with State set to nil: with
// its memories reset by the caller, the instance is as instantiation left
// it. It is for an instance whose last call returned; one that trapped may
// be anywhere in its code and must be closed instead.
func (inst *Instance) Reset() {
	inst.noLeave = false
	for i, g := range inst.globals {
		g.Set(inst.initial[i])
	}
	inst.handles.reset()
	inst.objects.reset()
	inst.State = nil
}

// Close closes the instance's core instances.
func (inst *Instance) Close(ctx context.Context) error {
	inst.watch.mu.Lock()
	inst.watch.alarm.Stop()
	inst.watch.mu.Unlock()
	for i := len(inst.mods) - 1; i >= 0; i-- {
		if m := inst.mods[i]; m != nil {
			m.Close(ctx)
		}
	}
	return nil
}

// maxObjects bounds the host objects an instance may hold.
const maxObjects = 1 << 16

// NewObject keeps a host object for a resource handle and returns its rep.
// Past maxObjects it panics with an error, which traps the guest's call
// that asked for it.
func (inst *Instance) NewObject(v any) uint32 {
	if inst.objects.live >= maxObjects {
		panic(fmt.Errorf("component: more than %d host objects in one instance", maxObjects))
	}
	return inst.objects.add(v)
}

// Object returns the host object of rep, nil if none.
func (inst *Instance) Object(rep uint32) any { return inst.objects.get(rep) }

// DropObject forgets the host object of rep.
func (inst *Instance) DropObject(rep uint32) { inst.objects.drop(rep) }

// exported resolves a function core target of the instance.
func (inst *Instance) function(t target) (api.Function, error) {
	if t.inst < 0 || t.inst >= len(inst.mods) || inst.mods[t.inst] == nil {
		return nil, fmt.Errorf("function %s.%s: not an instantiated module's", t.module(), t.name)
	}
	if f, ok := inst.funcs[t]; ok {
		return f, nil
	}
	f := inst.mods[t.inst].ExportedFunction(t.name)
	if f == nil {
		return nil, fmt.Errorf("core instance %d exports no function %q", t.inst, t.name)
	}
	if inst.funcs == nil {
		inst.funcs = map[target]api.Function{}
	}
	inst.funcs[t] = f
	return f, nil
}

// cabiContext is the canonical ABI context of the options of canon
// definition index.
func (inst *Instance) cabiContext(index int, opts CanonOpts) (*cabi.Context, error) {
	if inst.opts == nil {
		inst.opts = make([]*resolvedOpts, len(inst.l.c.Canons))
	}
	ro := inst.opts[index]
	if ro == nil {
		var err error
		if ro, err = inst.resolve(opts); err != nil {
			return nil, err
		}
		ro.cx = &cabi.Context{Resources: &inst.handles, Encoding: ro.encoding, Realloc: ro.realloc}
		if ro.memory != nil { // a nil api.Memory in the interface would not be nil
			ro.cx.Memory = ro.memory
		}
		inst.opts[index] = ro
	}
	return ro.cx, nil
}

// resolve finds the memory and realloc that canon options name.
func (inst *Instance) resolve(opts CanonOpts) (*resolvedOpts, error) {
	cx := &resolvedOpts{}
	switch opts.Encoding {
	case EncodingUTF16:
		cx.encoding = cabi.UTF16
	case EncodingLatin1UTF16:
		cx.encoding = cabi.Latin1UTF16
	}
	if opts.Memory != nil {
		t, err := inst.l.coreIndex(CoreMemory, *opts.Memory, 0)
		if err != nil {
			return nil, err
		}
		if t.inst < 0 || inst.mods[t.inst] == nil || inst.mods[t.inst].ExportedMemory(t.name) == nil {
			return nil, fmt.Errorf("memory %s.%s is not an instantiated module's", t.module(), t.name)
		}
		cx.memory = inst.mods[t.inst].ExportedMemory(t.name)
	}
	if opts.Realloc != nil {
		t, err := inst.l.coreIndex(CoreFunc, *opts.Realloc, 0)
		if err != nil {
			return nil, err
		}
		f, err := inst.function(t)
		if err != nil {
			return nil, err
		}
		// One stack for its parameters and result, unless a realloc calls
		// back into the host, which reallocates again: that one makes its
		// own.
		var (
			stack [4]uint64
			busy  bool
		)
		cx.realloc = func(old, oldSize, align, size uint32) (uint32, error) {
			s := stack[:]
			if busy {
				s = make([]uint64, 4)
			} else {
				busy = true
				defer func() { busy = false }()
			}
			s[0], s[1], s[2], s[3] = uint64(old), uint64(oldSize), uint64(align), uint64(size)
			leave := inst.noLeave
			inst.noLeave = true
			err := f.CallWithStack(inst.callCtx, s)
			inst.noLeave = leave
			if err != nil {
				return 0, err
			}
			return uint32(s[0]), nil
		}
	}
	return cx, nil
}

// canon runs a canon-made core function called by the guest: a lowered
// import (lift the arguments, call the host, lower the results) or a
// resource built-in.
func (inst *Instance) canon(ctx context.Context, cf *canonFunc, stack []uint64) error {
	if inst.noLeave && cf.op != CanonResourceRep {
		// The canonical ABI's may_leave: a realloc or post-return may not
		// call out of its instance, nor make or drop handles.
		return fmt.Errorf("%s: called from a realloc or post-return function, which may not leave the instance", cf.name)
	}
	switch cf.op {
	case CanonResourceNew:
		h, err := inst.handles.LowerOwn(uint32(stack[0]), cf.resource)
		stack[0] = uint64(h)
		if err != nil {
			return fmt.Errorf("resource.new of %s: %w", cf.name, err)
		}
		return nil
	case CanonResourceRep:
		rep, err := inst.handles.rep(uint32(stack[0]), cf.resource)
		stack[0] = uint64(rep)
		if err != nil {
			return fmt.Errorf("resource.rep of %s: %w", cf.name, err)
		}
		return nil
	case CanonResourceDrop:
		rep, own, err := inst.handles.drop(uint32(stack[0]), cf.resource)
		switch {
		case err != nil || !own:
		case cf.dtor != nil: // the component's own resource: its destructor
			t, err := inst.l.coreIndex(CoreFunc, *cf.dtor, 0)
			if err != nil {
				return fmt.Errorf("the destructor of %s: %w", cf.name, err)
			}
			f, err := inst.function(t)
			if err != nil {
				return fmt.Errorf("the destructor of %s: %w", cf.name, err)
			}
			_, err = f.Call(ctx, uint64(rep))
			return err
		case !strings.HasPrefix(cf.name, "local#"):
			if cf.drop != nil {
				cf.drop(inst, rep)
			}
			inst.DropObject(rep)
		}
		if err != nil {
			return fmt.Errorf("resource.drop of %s: %w", cf.name, err)
		}
		return nil
	}
	inst.callCtx = ctx // for the guest's realloc, called while lowering
	if cf.plan != nil {
		return inst.flat(ctx, cf, stack)
	}
	cx, err := inst.cabiContext(cf.index, cf.opts)
	if err != nil {
		return fmt.Errorf("%s: %w", cf.name, err)
	}
	// Results that flatten to more than MaxFlatResults values are written
	// where the last parameter points.
	var outPtr uint32
	if cf.outParam {
		outPtr = uint32(stack[cf.nparams])
	}
	// The arguments in the instance's buffer, when no other call's are:
	// they are dead once the host function returns, before anything
	// (a realloc while lowering its results) can call back in.
	own := !inst.argsTaken
	var buf []any
	if own {
		inst.argsTaken, buf = true, inst.args[:0]
	}
	args, err := cx.LiftFlatValues(buf, stack[:cf.nparams], cabi.MaxFlatParams, cf.ft.paramTuple)
	if err != nil {
		if own {
			inst.argsTaken = false
		}
		return fmt.Errorf("%s: arguments: %w", cf.name, err)
	}
	result, err := cf.fn(ctx, inst, args)
	if own {
		clear(args) // no host object kept alive by the buffer
		inst.args, inst.argsTaken = args[:0], false
	}
	if err != nil {
		return err
	}
	if result == nil && len(cf.ft.results) == 1 {
		return fmt.Errorf("%s: the host returned no result", cf.name)
	}
	one := [1]any{result}
	results := one[:len(cf.ft.results)] // at most one: named results are refused by the decoder
	// Into the stack, which wazero sized for the parameters or the
	// results, whichever are more.
	if _, err := cx.LowerFlatValues(stack[:0], results, cabi.MaxFlatResults, cf.ft.resultTuple, outPtr, cf.outParam); err != nil {
		return fmt.Errorf("%s: results: %w", cf.name, err)
	}
	return nil
}

// Call calls function fn of the instance's export named export (an
// interface such as "wasi:cli/run@0.2.0", or "" for a function the
// component exports itself), with args as cabi values, and returns its
// results.
func (inst *Instance) Call(ctx context.Context, export, fn string, args ...any) ([]any, error) {
	ct, err := inst.callTarget(export, fn)
	if err != nil {
		return nil, err
	}
	if len(args) != len(ct.ft.params) {
		return nil, fmt.Errorf("%s#%s takes %d arguments, %d given", export, fn, len(ct.ft.params), len(args))
	}
	ctx = context.WithValue(ctx, instanceKey{}, inst)
	inst.callCtx = ctx
	if inst.stops != nil && inst.arm(ctx) {
		// Set before the call returns or not at all: the instance may be
		// reset as soon as it has.
		defer inst.disarm()
	}
	cx, err := inst.cabiContext(ct.lift, ct.opts)
	if err != nil {
		return nil, err
	}
	// One stack for the core parameters and then the results: the
	// target's own, unless a call of it is under way (a host function
	// calling into the instance again), which makes its own.
	buf := ct.buf
	if ct.busy {
		buf = make([]uint64, 0, ct.stack)
	} else {
		ct.busy = true
		defer func() { ct.busy = false }()
	}
	stack, err := cx.LowerFlatValues(buf[:0], args, cabi.MaxFlatParams, ct.ft.paramTuple, 0, false)
	if err != nil {
		return nil, fmt.Errorf("%s#%s: arguments: %w", export, fn, err)
	}
	if len(stack) != ct.params {
		return nil, fmt.Errorf("%s#%s: the arguments flatten to %d core values, the core function takes %d", export, fn, len(stack), ct.params)
	}
	stack = stack[:ct.stack]
	if err := ct.f.CallWithStack(ctx, stack); err != nil {
		return nil, err
	}
	res := stack[:ct.results]
	out, err := cx.LiftFlatValues(nil, res, cabi.MaxFlatResults, ct.ft.resultTuple)
	if err != nil {
		return nil, fmt.Errorf("%s#%s: results: %w", export, fn, err)
	}
	if ct.postReturn != nil {
		inst.noLeave = true
		err := ct.postReturn.CallWithStack(ctx, res)
		inst.noLeave = false
		if err != nil {
			return nil, fmt.Errorf("%s#%s: post-return: %w", export, fn, err)
		}
	}
	return out, nil
}

// callTarget is what Call calls for an export's function, resolved in an
// instance once.
type callTarget struct {
	lift          int // the canon lift
	opts          CanonOpts
	ft            *funcType
	f, postReturn api.Function
	// params and results are how many core parameters and results f
	// has, stack the length of the stack its call needs, buf that stack
	// for a call when no other of this target is under way (busy).
	params, results, stack int
	buf                    []uint64
	busy                   bool
}

// callTarget resolves function fn of export, once per instance.
func (inst *Instance) callTarget(export, fn string) (*callTarget, error) {
	key := [2]string{export, fn}
	if ct, ok := inst.calls[key]; ok {
		return ct, nil
	}
	lift, err := inst.l.exportedLift(export, fn)
	if err != nil {
		return nil, err
	}
	cn := inst.l.c.Canons[lift]
	ct := &callTarget{lift: lift, opts: cn.Opts, ft: inst.l.lifts[lift]}
	t, err := inst.l.coreIndex(CoreFunc, cn.Func, 0)
	if err != nil {
		return nil, err
	}
	if ct.f, err = inst.function(t); err != nil {
		return nil, err
	}
	def := ct.f.Definition()
	ct.params, ct.results = len(def.ParamTypes()), len(def.ResultTypes())
	ct.stack = max(ct.params, ct.results)
	ct.buf = make([]uint64, 0, ct.stack)
	if cn.Opts.PostReturn != nil {
		pt, err := inst.l.coreIndex(CoreFunc, *cn.Opts.PostReturn, 0)
		if err != nil {
			return nil, err
		}
		if ct.postReturn, err = inst.function(pt); err != nil {
			return nil, err
		}
		if n := len(ct.postReturn.Definition().ParamTypes()); n != ct.results {
			return nil, fmt.Errorf("%s#%s: post-return takes %d parameters, the function has %d results", export, fn, n, ct.results)
		}
	}
	if inst.calls == nil {
		inst.calls = map[[2]string]*callTarget{}
	}
	inst.calls[key] = ct
	return ct, nil
}

// FuncType returns the parameter and result types of function fn of export
// (as Call names them), in the canonical ABI's terms.
func (l *Linked) FuncType(export, fn string) (params, results []*cabi.Type, err error) {
	lift, err := l.exportedLift(export, fn)
	if err != nil {
		return nil, nil, err
	}
	ft := l.lifts[lift]
	return ft.params, ft.results, nil
}

// ResourceName is the name of the resource type that cabi.Type.Resource
// r stands for in l's function types: its interface and name
// ("wasi:http/types@0.2#incoming-request"), or, for a resource the
// component defines, the name it has there; "" for none.
func (l *Linked) ResourceName(r int) string {
	if r < 0 || r >= len(l.ids.names) {
		return ""
	}
	return l.ids.names[r]
}

// exportedLift finds the canon lift behind function fn of export: directly
// exported, or through the instance wit-component makes by instantiating a
// small component with the lifted functions as arguments.
func (l *Linked) exportedLift(export, fn string) (int, error) {
	c := l.c
	for _, ex := range c.Exports {
		if export == "" && ex.Name == fn && ex.Sort == (Sort{Kind: SortFunc}) {
			return l.liftOf(c, ex.Idx)
		}
		if export == "" || Interface(ex.Name) != Interface(export) || ex.Sort != (Sort{Kind: SortInstance}) {
			continue
		}
		defs := c.Space[ex.Sort]
		if int(ex.Idx) >= len(defs) || defs[ex.Idx].From != FromDefinition {
			break
		}
		in := c.Instances[defs[ex.Idx].N]
		if in.Component == nil {
			for _, e := range in.Exports {
				if e.Name == fn && e.Sort == (Sort{Kind: SortFunc}) {
					return l.liftOf(c, e.Idx)
				}
			}
			break
		}
		return l.throughShim(in, fn)
	}
	return 0, fmt.Errorf("the component exports no function %q in %q", fn, export)
}

// throughShim follows an exported function of an instantiated nested
// component back to the argument it was given.
func (l *Linked) throughShim(in InstanceDef, fn string) (int, error) {
	cdefs := l.c.Space[Sort{Kind: SortComponent}]
	if int(*in.Component) >= len(cdefs) || cdefs[*in.Component].From != FromDefinition {
		return 0, fmt.Errorf("export through component %d: not defined here", *in.Component)
	}
	inner := l.c.Components[cdefs[*in.Component].N]
	for _, ex := range inner.Exports {
		if ex.Name != fn || ex.Sort != (Sort{Kind: SortFunc}) {
			continue
		}
		fdefs := inner.Space[ex.Sort]
		if int(ex.Idx) >= len(fdefs) || fdefs[ex.Idx].From != FromImport {
			break
		}
		arg := inner.Imports[fdefs[ex.Idx].N].Name
		for _, a := range in.Args {
			if a.Name == arg && a.Sort == (Sort{Kind: SortFunc}) {
				return l.liftOf(l.c, a.Idx)
			}
		}
	}
	return 0, fmt.Errorf("function %q is not a lifted function the component passes through", fn)
}

// liftOf is the canon definition that made func f of c, which must be a
// lift.
func (l *Linked) liftOf(c *Component, f uint32) (int, error) {
	defs := c.Space[Sort{Kind: SortFunc}]
	if int(f) < len(defs) && defs[f].From == FromCanon && c.Canons[defs[f].N].Op == CanonLift {
		return defs[f].N, nil
	}
	if int(f) < len(defs) && defs[f].From == FromExport {
		return l.liftOf(c, c.Exports[defs[f].N].Idx)
	}
	return 0, fmt.Errorf("func %d is not lifted from a core function", f)
}

// compileModule is rt.CompileModule, with a panic of wazero's validator
// (it has panicked on malformed modules) turned into an error.
func compileModule(ctx context.Context, rt wazero.Runtime, b []byte) (m wazero.CompiledModule, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("the WebAssembly runtime failed on it: %v", r)
		}
	}()
	return rt.CompileModule(ctx, b)
}
