package host

import (
	"context"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmesh/wasmesh/internal/wasip1"
)

// wasip1Host gives the WASI descriptor functions the run's table, and
// their waits the run's deadline.
var wasip1Host = &wasip1.Host{
	Table: func(ctx context.Context) *wasip1.Table { return runOf(ctx).table },
	Wait:  func(ctx context.Context) context.Context { return runOf(ctx).hostContext(ctx) },
}

// The environment of a run is read from its context rather than set with
// wazero's ModuleConfig.WithEnv: that clones the whole config on every
// variable, which cost more than the guest's own work for a CGI request's
// twenty variables.

type runKey struct{}

// run is what the host functions need of the run they serve: its
// environment, as "KEY=VALUE" strings, and the reused instance running it.
// It is the run's context too: its parent's, with the run as the value of
// runKey (one allocation where context.WithValue would be a second).
type run struct {
	context.Context

	vars []string
	size uint32 // bytes with a NUL after each variable
	inst *instance
	warm bool // Engine.Warm's run
	// table is the run's WASI descriptors (wasip1).
	table *wasip1.Table

	// A reused run has no context of its own (instance.call stops it);
	// a host call that blocks gets one ending at the run's deadline,
	// made when first asked for: most runs make no such call.
	ctx      context.Context // the run's context (the run itself)
	timeout  time.Duration
	deadline time.Time // when the timeout passes: the same for host calls
	hostCtx  context.Context
	stopHost context.CancelFunc
}

// hostContext is the context a blocking host call of the run waits in,
// given the call's ctx: for a fresh run ctx, which has the deadline; for a
// reused one, ctx with the run's deadline added.
func (r *run) hostContext(ctx context.Context) context.Context {
	if r.inst == nil || r.timeout <= 0 {
		return ctx
	}
	if r.hostCtx == nil {
		r.hostCtx, r.stopHost = context.WithDeadlineCause(ctx, r.deadline, timeoutError(r.timeout))
	}
	return r.hostCtx
}

func withRun(ctx context.Context, vars []string, inst *instance, table *wasip1.Table) context.Context {
	e := &run{Context: ctx, vars: vars, inst: inst, table: table}
	for _, v := range vars {
		e.size += uint32(len(v)) + 1
	}
	e.ctx = e
	return e
}

// Value is the run for runKey, else the parent's value.
func (r *run) Value(key any) any {
	if key == (runKey{}) {
		return r
	}
	return r.Context.Value(key)
}

func runOf(ctx context.Context) *run {
	if e, ok := ctx.Value(runKey{}).(*run); ok {
		return e
	}
	return &run{}
}

// exportEnviron replaces WASI's environment functions in b by ones that
// read the run's context.
func exportEnviron(b wazero.HostModuleBuilder) {
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(environSizesGet), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("result.environc", "result.environv_len").
		Export("environ_sizes_get")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(environGet), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("environ", "environ_buf").
		Export("environ_get")
}

const errnoFault = 21 // WASI EFAULT

// environSizesGet implements WASI environ_sizes_get(count_ptr, size_ptr).
func environSizesGet(ctx context.Context, m api.Module, stack []uint64) {
	e, mem := runOf(ctx), m.Memory()
	if !mem.WriteUint32Le(api.DecodeU32(stack[0]), uint32(len(e.vars))) || !mem.WriteUint32Le(api.DecodeU32(stack[1]), e.size) {
		stack[0] = errnoFault
		return
	}
	stack[0] = 0
}

// environGet implements WASI environ_get(environ_ptr, environ_buf_ptr): the
// offsets of the variables, then the NUL-terminated variables.
func environGet(ctx context.Context, m api.Module, stack []uint64) {
	e, mem := runOf(ctx), m.Memory()
	offsets, buf := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	offsetsBuf, ok1 := mem.Read(offsets, uint32(len(e.vars))*4)
	bytesBuf, ok2 := mem.Read(buf, e.size)
	if !ok1 || !ok2 {
		stack[0] = errnoFault
		return
	}
	var o, b uint32
	for _, v := range e.vars {
		at := buf + b
		offsetsBuf[o], offsetsBuf[o+1], offsetsBuf[o+2], offsetsBuf[o+3] = byte(at), byte(at>>8), byte(at>>16), byte(at>>24)
		o += 4
		b += uint32(copy(bytesBuf[b:], v))
		bytesBuf[b] = 0
		b++
	}
	stack[0] = 0
}
