// Package host runs WebAssembly guests. It is the only package of wasmesh that
// talks to wazero.
//
// An [Engine] owns one wazero runtime (compiler engine, file compilation cache),
// the compiled modules keyed by their content digest, and the WASI host module.
// [Engine.Run] runs a module in a fresh, isolated instance under a [Call]'s
// limits: a memory ceiling enforced when the guest grows its memory, a deadline
// that stops the guest wherever it is, and caps on what it may write.
//
//	eng, err := host.New(ctx, host.Options{CacheDir: dir})
//	mod, err := eng.Compile(ctx, digest, wasmBytes)
//	res, err := eng.Run(ctx, mod, host.Call{Stdout: &out, Timeout: 2 * time.Second, MemoryLimit: 32 << 20})
//
// Errors from Run say what stopped the guest: a [*TrapError] (with its cause,
// such as "unreachable" or "out of bounds memory access"), [ErrDeadline],
// [ErrOutputLimit] or [ErrMemoryLimit]. A guest that calls proc_exit with a
// non-zero code is not an error: the code is in [Result.ExitCode].
package host
