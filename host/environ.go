package host

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// The environment of a run is read from its context rather than set with
// wazero's ModuleConfig.WithEnv: that clones the whole config on every
// variable, which cost more than the guest's own work for a CGI request's
// twenty variables.

type envKey struct{}

// runEnv is a run's environment, as "KEY=VALUE" strings.
type runEnv struct {
	vars []string
	size uint32 // bytes with a NUL after each variable
}

func withEnv(ctx context.Context, vars []string) context.Context {
	e := &runEnv{vars: vars}
	for _, v := range vars {
		e.size += uint32(len(v)) + 1
	}
	return context.WithValue(ctx, envKey{}, e)
}

func envOf(ctx context.Context) *runEnv {
	if e, ok := ctx.Value(envKey{}).(*runEnv); ok {
		return e
	}
	return &runEnv{}
}

const errnoFault = 21 // WASI EFAULT

// environSizesGet implements WASI environ_sizes_get(count_ptr, size_ptr).
func environSizesGet(ctx context.Context, m api.Module, stack []uint64) {
	e, mem := envOf(ctx), m.Memory()
	if !mem.WriteUint32Le(api.DecodeU32(stack[0]), uint32(len(e.vars))) || !mem.WriteUint32Le(api.DecodeU32(stack[1]), e.size) {
		stack[0] = errnoFault
		return
	}
	stack[0] = 0
}

// environGet implements WASI environ_get(environ_ptr, environ_buf_ptr): the
// offsets of the variables, then the NUL-terminated variables.
func environGet(ctx context.Context, m api.Module, stack []uint64) {
	e, mem := envOf(ctx), m.Memory()
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
