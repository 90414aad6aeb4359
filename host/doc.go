// Package host runs WebAssembly guests. It is the only package of wasmesh that
// talks to wazero.
//
// An [Engine] owns three wazero runtimes sharing one configuration (the
// optimizing compiler where available, a file compilation cache): one for
// fresh instances of modules as given, one for fresh instances of modules
// rewritten to stop themselves at their deadline, and one for instances
// that are reset and reused, with its own WASI functions. It keeps the
// compiled modules keyed by their content digest (modules.DigestOf), and the
// WASI and wasmesh host modules in each runtime.
//
// [Engine.Run] runs a module in an isolated instance — reset to its
// pristine state after each run where the module allows it, created for the
// run where it does not — under a [Call]'s limits: a memory ceiling enforced
// when the guest grows its memory, a deadline that stops the guest wherever
// it is, and caps on what it may write. A guest cannot tell a reset instance
// from a fresh one. docs/architecture.md describes the reset.
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
