package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/internal/wasip1"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
)

// Reused instances.
//
// Creating an instance costs more than most guests' whole request: wazero
// allocates the module instance, builds its tables and applies its data
// segments. A module whose state can only live in linear memory and mutable
// globals (wasmbin.Prepare checks this: no table writes, no segment drops, no
// start function) is instead run in instances that are reset between runs
// (when an idle one is taken, pool.get) to exactly the state instantiation
// gave them:
//
//   - memory: mapped copy-on-write from the image of the initial memory, and
//     the pages a run wrote copied back from it (image_linux.go);
//   - mutable globals: exported by the rewritten module and set back;
//   - WASI: the instance's stdio are slots that each run fills and empties,
//     its environment is read from the run's context (environ.go), and it
//     has no preopened directories, so its only descriptors are 0, 1 and 2.
//     proc_exit unwinds without closing the instance; closing or renumbering
//     a standard descriptor marks the instance to be discarded.
//
// An instance that trapped, was stopped, grew its memory or was marked is
// closed instead of reused, so a misbehaving run costs at most a fresh
// instance for the next one.
//
// The reuse runtime does not close instances when their context is done
// (wazero's WithCloseOnContextDone: a goroutine per call and an exit to Go
// at every loop iteration, which cost more than a hello request's own
// work). The rewritten module checks a stop global every
// wasmbin.YieldEvery loop iterations instead, and instance.call sets it
// when the run's context is done.

// DefaultMaxIdle is how many reset instances a module keeps per memory limit
// and arguments when Options.MaxIdle is 0.
const DefaultMaxIdle = 32

// reusable is a module prepared for reused instances, compiled into the
// engine's reuse runtime.
type reusable struct {
	compiled wazero.CompiledModule
	img      *image
	globals  []string
	stop     string // of globals, the one that stops the guest
	exit     string // of globals, _start's exit code (wasmbin.Pristine.Exit), or ""
	minPages uint32
	// startPages is the memory size every instance starts its runs with:
	// the module's initial size, or what Warm saw a run grow it to.
	startPages atomic.Uint32
	warmed     atomic.Bool
	entry      string
	// snapGlobals are the globals of a reactor after _initialize, which
	// every instance starts with; nil for a command.
	snapGlobals []uint64

	mu     sync.Mutex
	pools  map[poolKey]*pool
	closed bool
}

type poolKey struct {
	ceiling uint64
	args    string
}

type pool struct {
	r       *reusable
	e       *Engine
	ceiling uint64
	args    []string

	idle idleSet[*instance]
}

// instance is one reusable instance and the slots its WASI streams read.
type instance struct {
	mod     api.Module
	start   api.Function
	mem     *cowMemory
	globals []api.MutableGlobal
	initial []uint64
	stop    api.MutableGlobal
	exit    api.Global // _start's exit code when it exited from its own body, else -1; nil: no such exit
	// stopped receives once stop has been set, so that a call does not end
	// while the setting is under way.
	stopped chan struct{}
	// stopping is set by the first of the stops below, which alone sets
	// the global (two at once would race on it).
	stopping atomic.Bool
	// checkCall, on alarm, looks at the running call (watch) every
	// checkEvery and at its deadline, and stops it when its context is
	// done or the deadline passed (deadlineHit says which). The alarm is
	// left set when a call ends (clock.Alarm): under watchMu.
	alarm       clock.Alarm
	watchMu     sync.Mutex
	watch       callWatch
	deadlineHit atomic.Bool
	// stopCause is why the host stopped the run from inside it (the
	// output cap), nil when it did not; stopFor records it.
	stopCause error
	stopFor   func(error)

	run          *run          // the run under way, for its sleeps
	table        *wasip1.Table // its runs' descriptors, reset for each run with the run's streams
	reusedBefore bool
}

// prepareReusable compiles p into the reuse runtime.
func (e *Engine) prepareReusable(ctx context.Context, p *wasmbin.Pristine) (*reusable, error) {
	compiled, err := compileModule(ctx, e.reuseRT, p.Module)
	if err != nil {
		return nil, err
	}
	img, err := newImage(p.Image)
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	r := &reusable{compiled: compiled, img: img, globals: p.Globals, stop: p.Stop, exit: p.Exit, minPages: p.MinPages, pools: map[poolKey]*pool{}}
	r.entry, _ = entryOf(compiled)
	r.startPages.Store(p.MinPages)
	return r, nil
}

// pages is the memory size, in pages, that the pool's instances start with.
func (p *pool) pages() uint32 {
	return max(p.r.minPages, min(p.r.startPages.Load(), uint32(p.ceiling/pageSize)))
}

func (r *reusable) pool(e *Engine, ceiling uint64, args []string) *pool {
	key := poolKey{ceiling: ceiling, args: strings.Join(args, "\x00")}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pools[key]
	if p == nil {
		p = &pool{r: r, e: e, ceiling: ceiling, args: args}
		if !r.closed { // a run after Release: its instance is closed after it
			r.pools[key] = p
		}
	}
	return p
}

// close closes the idle instances and the compiled module; instances still
// running are closed when they finish.
func (r *reusable) close(ctx context.Context) {
	r.mu.Lock()
	r.closed = true
	pools := r.pools
	r.pools = nil
	r.mu.Unlock()
	for _, p := range pools {
		for _, inst := range p.idle.drain() {
			inst.close(ctx)
		}
	}
	_ = r.compiled.Close(ctx)
	r.img.close()
}

// trim closes the instances idle since before cutoff, and unmaps the spare
// memories freed before it: an unused version keeps only its compiled code
// and its image. It returns how many instances it closed.
func (r *reusable) trim(ctx context.Context, cutoff time.Time) int {
	r.mu.Lock()
	pools := make([]*pool, 0, len(r.pools))
	for _, p := range r.pools {
		pools = append(pools, p)
	}
	r.mu.Unlock()
	closed := 0
	for _, p := range pools {
		expired := p.idle.expire(cutoff)
		for _, inst := range expired {
			inst.close(ctx)
		}
		closed += len(expired)
	}
	r.img.trim(cutoff)
	return closed
}

func (r *reusable) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// get returns an idle instance, or a new one.
func (p *pool) get(ctx context.Context) (*instance, error) {
	for {
		inst, mark, ok := p.idle.take()
		if !ok {
			break
		}
		if !inst.reset(p.pages(), mark) {
			p.e.discarded.Add(1)
			inst.close(context.WithoutCancel(ctx))
			continue
		}
		inst.reusedBefore = true
		p.e.reused.Add(1)
		return inst, nil
	}
	p.e.created.Add(1)
	return p.instantiate(ctx)
}

func (p *pool) instantiate(ctx context.Context) (*instance, error) {
	inst := &instance{stopped: make(chan struct{}, 1)}
	inst.alarm.Init(inst.checkCall)
	// Called by a host function, so on the guest's own goroutine.
	inst.stopFor = func(err error) {
		if inst.stopCause == nil {
			inst.stopCause = err
		}
		inst.raiseStop()
	}
	var memErr error
	ctx = experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
		inst.mem, memErr = newCowMemory(p.r.img, min(max, p.ceiling))
		if memErr != nil {
			return &sliceMemory{} // fails the instantiation
		}
		return inst.mem
	}))
	inst.table = wasip1.NewTable(nil, nil, nil, 0)
	mc := baseConfig.
		WithArgs(p.args...).
		WithNanosleep(func(ns int64) { sleep(inst.sleepContext(), time.Duration(ns)) }).
		WithRandSource(randSource{inst.runStopped})
	mod, err := p.e.reuseRT.InstantiateModule(ctx, p.r.compiled, mc)
	if err != nil {
		if inst.mem != nil {
			inst.mem.Free()
		}
		if memErr != nil {
			return nil, memErr
		}
		return nil, err
	}
	inst.mod = mod
	inst.start = mod.ExportedFunction(p.r.entry)
	if mem := memoryOf(mod); mem != nil {
		if want, have := p.pages(), mem.Size()/pageSize; want > have {
			if _, ok := mem.Grow(want - have); !ok {
				_ = mod.Close(ctx)
				return nil, fmt.Errorf("grow memory to %d pages: %w", want, ErrMemoryLimit)
			}
		}
	}
	for _, name := range p.r.globals {
		g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			_ = mod.Close(ctx)
			return nil, fmt.Errorf("rewritten module does not export the mutable global %s", name)
		}
		inst.globals = append(inst.globals, g)
		switch name {
		case p.r.stop:
			inst.stop = g
		case p.r.exit:
			inst.exit = g
		}
		if p.r.snapGlobals != nil {
			g.Set(p.r.snapGlobals[len(inst.initial)])
		}
		inst.initial = append(inst.initial, g.Get())
	}
	if inst.stop == nil {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("rewritten module does not export its stop global %s", p.r.stop)
	}
	return inst, nil
}

// checkEvery is how often a running call looks at its caller's context:
// a guest whose client went away, or whose drain deadline passed, is
// stopped within it.
const checkEvery = 10 * time.Millisecond

// callWatch is what a call's checks look at: its context and deadline
// (zero for none), nil ctx when no call runs; stopping says a check has
// decided to stop it.
type callWatch struct {
	ctx      context.Context
	deadline time.Time
	stopping bool
}

// call calls fn in the instance, with ctx from withRun, stopped when ctx
// is done or the timeout (if any) after start passes, and returns when it
// returned (both times from clock.Now): the stop global is set, and the
// guest traps at its next yield check. Nothing is registered on ctx for
// it: the instance's alarm looks at ctx every checkEvery, and at the
// deadline (a context.AfterFunc on the request's context, registered and
// removed on every call, cost more than the rest of this function); a
// blocking host call gets a context of its own (run.hostContext).
func (inst *instance) call(ctx context.Context, fn api.Function, timeout time.Duration, start time.Time) (end time.Time, err error) {
	if err := ctx.Err(); err != nil {
		return start, err
	}
	r := runOf(ctx)
	inst.run, r.timeout = r, timeout
	w, first := callWatch{ctx: ctx}, checkEvery
	if timeout > 0 {
		w.deadline = start.Add(timeout)
		r.deadline, first = w.deadline, min(first, timeout)
	}
	inst.watchMu.Lock()
	inst.watch = w
	inst.alarm.Set(clock.MonoOf(start), first)
	inst.watchMu.Unlock()
	_, err = fn.Call(ctx)
	end = clock.Now()
	inst.watchMu.Lock()
	stopping := inst.watch.stopping
	inst.watch = callWatch{}
	inst.watchMu.Unlock()
	// A check that runs from here on finds no call; one that decided to
	// stop this one is setting the global: wait for it.
	if stopping {
		<-inst.stopped // the instance is not reused
	} else if !w.deadline.IsZero() && !end.Before(w.deadline) {
		// Past the deadline before a check saw it: stopped at it, even
		// if the guest then finished (a sleep cut short returns normally).
		inst.deadlineHit.Store(true)
		inst.stopping.Store(true) // the instance is not reused
	}
	if r.stopHost != nil {
		r.stopHost()
	}
	inst.run = nil
	return end, err
}

// checkCall is the alarm's: it stops the running call if its context is
// done or its deadline passed, else looks again in checkEvery (or at the
// deadline, if sooner).
func (inst *instance) checkCall() {
	inst.watchMu.Lock()
	inst.alarm.Fired()
	w := inst.watch
	if w.ctx == nil || w.stopping {
		inst.watchMu.Unlock()
		return
	}
	hit := !w.deadline.IsZero() && !clock.Now().Before(w.deadline)
	if !hit && w.ctx.Err() == nil {
		next := checkEvery
		if !w.deadline.IsZero() {
			next = min(next, time.Until(w.deadline))
		}
		inst.alarm.Set(clock.Mono(), next)
		inst.watchMu.Unlock()
		return
	}
	inst.watch.stopping = true
	inst.watchMu.Unlock()
	if hit {
		inst.deadlineHit.Store(true)
	}
	inst.raiseStop()
	inst.stopped <- struct{}{}
}

// sleepContext is what a sleep of the run under way waits on.
func (inst *instance) sleepContext() context.Context {
	if r := inst.run; r != nil {
		return r.hostContext(r.ctx)
	}
	return context.Background() // no run: nothing to cut it short
}

// runStopped is the error of the instance's run once it is over: its
// caller gone, or its deadline passed (no timer made to say so, as
// sleepContext's would); nil while it goes on, or with no run.
func (inst *instance) runStopped() error {
	r := inst.run
	switch {
	case r == nil:
		return nil
	case r.ctx.Err() != nil:
		return r.ctx.Err()
	case r.timeout > 0 && !clock.Now().Before(r.deadline):
		return context.DeadlineExceeded
	}
	return nil
}

// raiseStop sets the stop global, once per run.
func (inst *instance) raiseStop() {
	if inst.stopping.CompareAndSwap(false, true) {
		inst.stop.Set(1)
	}
}

// put keeps inst idle for the next run, or closes it. Its memory and
// globals are reset when it is taken again (get), with the faultMark the
// idle set takes now: what its run left stays in it until then, where no
// guest sees it.
func (p *pool) put(ctx context.Context, inst *instance, clean bool) {
	inst.stopCause = nil
	inst.table.Reset(nil, nil, nil) // nothing of the run kept: its streams, what it opened
	if !clean || p.r.isClosed() || inst.grew(p.pages()) {
		p.e.discarded.Add(1)
		inst.close(context.WithoutCancel(ctx))
		return
	}
	if !p.idle.put(inst, p.e.maxIdle) {
		inst.close(context.WithoutCancel(ctx))
	}
}

// close stops the instance's alarm and closes it.
func (inst *instance) close(ctx context.Context) {
	inst.watchMu.Lock()
	inst.alarm.Stop()
	inst.watchMu.Unlock()
	_ = inst.mod.Close(ctx)
}

// grew says the memory is not the size runs start with (pages): it grew.
func (inst *instance) grew(pages uint32) bool {
	return inst.mem != nil && inst.mem.size != uint64(pages)*pageSize
}

// reset returns the instance to the state it started its first run in,
// given the faultMark taken when that run ended. It reports false when that
// cannot be done: the memory grew past its start.
func (inst *instance) reset(pages uint32, mark uint64) bool {
	if inst.grew(pages) {
		return false
	}
	if inst.mem != nil {
		inst.mem.resetAt(faultsSince(mark))
	}
	for i, g := range inst.globals {
		g.Set(inst.initial[i])
	}
	return true
}

// runReused is Run for a module with reusable instances.
func (e *Engine) runReused(ctx context.Context, m *Module, c Call, limit uint64) (Result, error) {
	p := m.reusable.pool(e, limit, c.Args)

	start := clock.Now()
	inst, err := p.get(ctx)
	got := clock.Now()
	res := Result{Instantiate: got.Sub(start)}
	if err != nil {
		return res, runError(ctx, err)
	}
	res.Reused = inst.reusedBefore
	e.active.Add(1)
	defer e.active.Add(-1)

	inst.table.Reset(c.Stdin, capWriter(c.Stdout, "stdout", c.MaxStdout, inst.stopFor),
		capWriter(c.Stderr, "stderr", c.MaxStderr, inst.stopFor))
	ctx = withRun(ctx, c.Env, inst, inst.table)

	end, err := inst.call(ctx, inst.start, c.Timeout, got)
	res.Run = end.Sub(got)
	if inst.mem != nil {
		res.MemoryPages = uint32(inst.mem.size / pageSize)
	}
	// Stopped, even if the guest then managed to finish (a sleep cut short
	// returns normally): by what stopped it.
	stopped := inst.stopping.Load()
	switch {
	case inst.stopCause != nil:
		err = inst.stopCause
	case inst.deadlineHit.Load():
		err = timeoutError(c.Timeout)
	default:
		res, err = finish(ctx, res, err)
		if err == nil && inst.exit != nil {
			if code := int64(inst.exit.Get()); code >= 0 { // proc_exit from _start's body, rewritten to return
				res.ExitCode = uint32(code)
			}
		}
	}
	p.put(ctx, inst, err == nil && !stopped && ctx.Err() == nil)
	return res, err
}

// warmTimeout bounds Warm's run.
const warmTimeout = time.Second

// warmEnv is the request Warm's run sees.
var warmEnv = []string{"GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=GET", "PATH_INFO=/", "QUERY_STRING=", "SERVER_PROTOCOL=HTTP/1.1", "CONTENT_LENGTH=0"}

// Warm runs a reusable module once on a synthetic request (a CGI GET of /
// with no body, output discarded, every wasmesh host call refused, at most
// a second) and makes the memory size that run ended with the size every
// instance of the module starts its runs with. Without it, a guest that
// grows its memory on every run (most language runtimes do, at start) grows
// each instance past its start and so is never reused. A gateway calls it
// before a version takes traffic. It returns the run's error, if any, after
// which the module keeps its initial size; it does nothing for a module
// that is not Reusable, and nothing after its first call for a module.
func (e *Engine) Warm(ctx context.Context, m *Module) error {
	if m.reusable == nil || m.entry == "" || m.reusable.warmed.Swap(true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	inst, err := e.syntheticInstance(ctx, m.reusable)
	if err != nil {
		return err
	}
	defer inst.close(context.WithoutCancel(ctx))
	if err := inst.syntheticCall(ctx, inst.start, warmEnv); err != nil {
		return fmt.Errorf("warm-up run: %w", err)
	}
	if mem := memoryOf(inst.mod); mem != nil {
		m.reusable.startPages.Store(max(m.reusable.minPages, mem.Size()/pageSize))
	}
	return nil
}

// snapshot initialises a reactor once and makes the state it is then in
// (memory and globals) the state every instance starts its runs in, so that
// no request pays for the language runtime's start-up. The state is taken
// after _initialize and one synthetic request (Warm's), so that caches the
// runtime fills on first use (allocator spans, for Go) are filled once; if
// that request fails, after _initialize alone. Both run as Warm's run does:
// every wasmesh host call refused, at most warmTimeout.
func (e *Engine) snapshot(ctx context.Context, r *reusable) error {
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	inst, err := e.syntheticInstance(ctx, r)
	if err != nil {
		return fmt.Errorf("initialise the reactor: %w", err)
	}
	defer inst.close(context.WithoutCancel(ctx))
	if err := inst.syntheticCall(ctx, inst.mod.ExportedFunction("_initialize"), nil); err != nil {
		if c := setupCeiling(ctx); c < maxMemory {
			return fmt.Errorf("initialise the reactor within its memory limit of %d bytes: _initialize: %w", c, err)
		}
		return fmt.Errorf("initialise the reactor: _initialize: %w", err)
	}
	content, globals := capture(inst)
	if inst.syntheticCall(ctx, inst.start, warmEnv) == nil {
		content, globals = capture(inst)
	}
	if content != nil {
		img, err := newImage(content)
		if err != nil {
			return err
		}
		r.img.close()
		r.img = img
		r.minPages = uint32(len(content) / pageSize)
		r.startPages.Store(r.minPages)
	}
	r.snapGlobals = globals
	return nil
}

// setupLimitKey is WithSetupMemoryLimit's context key.
type setupLimitKey struct{}

// WithSetupMemoryLimit bounds each memory of the runs that Compile and
// Warm with ctx make before any request (a reactor's _initialize, the
// warm-up run) at limit bytes, rounded down to whole pages; 0 (the
// default) leaves them at 4 GiB. A reactor whose initialisation needs
// more fails to compile, saying so, instead of taking the memory from the
// gateway. Give it the memory limit of the service that will run the
// module.
func WithSetupMemoryLimit(ctx context.Context, limit int64) context.Context {
	return context.WithValue(ctx, setupLimitKey{}, limit)
}

// setupCeiling is the memory ceiling of ctx's synthetic runs.
func setupCeiling(ctx context.Context) uint64 {
	if l, _ := ctx.Value(setupLimitKey{}).(int64); l > 0 && l < maxMemory {
		return uint64(l) &^ (pageSize - 1)
	}
	return maxMemory
}

// syntheticInstance makes an instance of r outside any pool, its memory
// bounded by ctx's setup limit, for Warm and snapshot.
func (e *Engine) syntheticInstance(ctx context.Context, r *reusable) (*instance, error) {
	return (&pool{r: r, e: e, ceiling: setupCeiling(ctx)}).instantiate(ctx)
}

// syntheticCall calls fn with env as its environment, no stdin, output
// discarded and every wasmesh host call refused (warmGuard).
func (inst *instance) syntheticCall(ctx context.Context, fn api.Function, env []string) error {
	inst.table.Reset(nil, nil, nil) // no stdin, output discarded
	ctx = withRun(ctx, env, inst, inst.table)
	runOf(ctx).warm = true
	_, err := inst.call(ctx, fn, 0, clock.Now())
	_, err = finish(ctx, Result{}, err)
	return err
}

// capture copies an instance's memory and globals.
func capture(inst *instance) (memory []byte, globals []uint64) {
	globals = make([]uint64, len(inst.globals))
	for i, g := range inst.globals {
		globals[i] = g.Get()
	}
	if mem := memoryOf(inst.mod); mem != nil {
		b, _ := mem.Read(0, mem.Size())
		memory = append([]byte(nil), b...)
	}
	return memory, globals
}

// finish reads how a call of _start ended.
func finish(ctx context.Context, res Result, err error) (Result, error) {
	switch {
	case ctx.Err() != nil:
		// Stopped by the deadline, the output cap or the caller, even if the
		// guest then managed to finish (a sleep cut short returns normally).
		return res, runError(ctx, err)
	case err == nil:
		return res, nil
	}
	// With the context not done, an exit is the guest's own, whatever its
	// code: 0xffffffff and 0xefffffff are the codes wazero closes a module
	// with when its context ends (their ExitErrors say they are
	// context.Canceled and DeadlineExceeded), and a guest that exits with
	// them must not pass for a client gone or a deadline.
	var exit *sys.ExitError // escapes (errors.As): not made for a clean return
	if errors.As(err, &exit) {
		res.ExitCode = exit.ExitCode()
		return res, nil
	}
	return res, runError(ctx, err)
}

// instantiateReuseWASI instantiates the WASI preview 1 of the reuse runtime:
// as the fresh runtime's (wazero's, with the environment and descriptors
// of the run: each run of an instance has a table of its own, so what one
// closes or renumbers the next has again), with a proc_exit of its own.
func instantiateReuseWASI(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	exportEnviron(b)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			// Unwind like wazero's proc_exit, without closing the instance.
			panic(sys.NewExitError(api.DecodeU32(stack[0])))
		}), []api.ValueType{i32}, nil).
		WithParameterNames("rval").
		Export("proc_exit")
	wasip1.Export(b, wasip1Host)
	_, err := b.Instantiate(ctx)
	return err
}
