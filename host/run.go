package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wasmesh/wasmesh/internal/wasip1"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
	"github.com/wasmesh/wasmesh/wasi"
)

// pageSize is the size of a WebAssembly memory page.
const pageSize = 64 << 10

// maxMemory is the whole 32-bit address space, the default memory limit.
const maxMemory = 4 << 30

// Call is one run of a module: what the guest sees and how far it may go.
// The zero value runs a guest with no arguments, environment or files, empty
// stdin, discarded output, 4 GiB of memory and no deadline beyond the context.
type Call struct {
	wasi.Capabilities

	// Stdin is the guest's standard input. Default: empty.
	Stdin io.Reader
	// Stdout and Stderr receive the guest's output. Default: discarded.
	Stdout, Stderr io.Writer
	// MaxStdout and MaxStderr cap the bytes the guest may write to each
	// stream; past the cap the guest is stopped and Run returns an error
	// wrapping ErrOutputLimit. Default 0: unlimited.
	MaxStdout, MaxStderr int64
	// MemoryLimit caps the guest's linear memory in bytes, rounded down to
	// whole 64 KiB pages: memory.grow past it fails inside the guest.
	// Default 0: 4 GiB, the whole 32-bit address space.
	MemoryLimit int64
	// Timeout stops the guest wherever it is once elapsed, failing the run
	// with ErrDeadline. Default 0: only the context's deadline applies.
	Timeout time.Duration
}

// Result is what a finished guest left.
type Result struct {
	// ExitCode is the code the guest passed to proc_exit, 0 if it returned.
	ExitCode uint32
	// MemoryPages is the size of the guest's memory when it finished, in
	// 64 KiB pages: its high-water mark, since memory never shrinks.
	MemoryPages uint32
	// Instantiate is the time taken to create the instance (or take a reset
	// one), Run the time from then to _start's return (its WASI state set
	// up first: well under a microsecond).
	Instantiate, Run time.Duration
	// Reused says the run was served by an instance reset after an earlier
	// run rather than one created for it.
	Reused bool
}

// Run runs m's _start (or, for a reactor, its ReactorEntry) in an instance
// that no other run can observe: a reset one when m is Reusable and c has no
// mounts and no *os.File stdin, else a fresh one (a reactor's initialised
// first), released before returning. See Call for the limits applied.
func (e *Engine) Run(ctx context.Context, m *Module, c Call) (Result, error) {
	if m.entry == "" {
		return Result{}, ErrNoStart
	}
	limit := uint64(maxMemory)
	if c.MemoryLimit > 0 {
		limit = uint64(c.MemoryLimit) &^ (pageSize - 1)
	}
	if need := uint64(m.minPages) * pageSize; need > limit {
		return Result{}, fmt.Errorf("module needs %d bytes of memory at start, limit is %d: %w", need, limit, ErrMemoryLimit)
	}
	if _, isFile := c.Stdin.(*os.File); m.reusable != nil && len(c.Mounts) == 0 && !isFile {
		return e.runReused(ctx, m, c, limit)
	}
	fresh, err := m.freshCompiled(ctx, e)
	if err != nil {
		return Result{}, err
	}
	mounts := make([]*mountFS, len(c.Mounts))
	for i, mnt := range c.Mounts {
		if mounts[i], err = newMountFS(mnt.HostPath, mnt.ReadOnly); err != nil {
			return Result{}, fmt.Errorf("mount %s: %w", mnt.HostPath, err)
		}
		defer mounts[i].close() // after the instance's own close, deferred below
	}

	ctx, cancel, stop := runContext(ctx, c.Timeout)
	defer stop()
	ctx = experimental.WithMemoryAllocator(ctx, limitedAllocator{limit: limit})
	table := wasip1.NewTable(stdinOf(ctx, c.Stdin),
		capWriter(c.Stdout, "stdout", c.MaxStdout, func(err error) { cancel(err) }),
		capWriter(c.Stderr, "stderr", c.MaxStderr, func(err error) { cancel(err) }), 0)
	defer table.Close() // after the instance's own close, deferred below; before the mounts'
	for i, mnt := range c.Mounts {
		if err := table.Preopen(mounts[i], mnt.GuestPath); err != nil {
			return Result{}, fmt.Errorf("mount %s: %w", mnt.HostPath, err)
		}
	}
	ctx = withRun(ctx, c.Env, nil, table)

	start := time.Now()
	inst, err := fresh.rt.InstantiateModule(ctx, fresh.compiled, e.moduleConfig(ctx, c))
	release := func() {}
	if err == nil && fresh.stop != "" {
		stop := inst.ExportedGlobal(fresh.stop).(api.MutableGlobal)
		release = wasmbin.ArmStop(ctx, func() { stop.Set(1) })
	}
	if err == nil && fresh.start != "" { // the start function, as instantiation would have run it
		if _, err = inst.ExportedFunction(fresh.start).Call(ctx); err != nil {
			release()
			_ = inst.Close(ctx)
		}
	}
	if err == nil && m.initialize {
		if _, err = inst.ExportedFunction("_initialize").Call(ctx); err != nil {
			release()
			_ = inst.Close(ctx)
		}
	}
	res := Result{Instantiate: time.Since(start)}
	if err != nil {
		return res, runError(ctx, err)
	}
	e.active.Add(1)
	defer e.active.Add(-1)
	defer inst.Close(ctx)
	defer release() // before Close: the stop is never set on a closed instance

	start = time.Now()
	_, err = inst.ExportedFunction(m.entry).Call(ctx)
	res.Run = time.Since(start)
	if mem := memoryOf(inst); mem != nil {
		res.MemoryPages = mem.Size() / pageSize
	}
	return finish(ctx, res, err)
}

// baseConfig is what every run shares; each With… call clones a config, so
// the fewer per run the better.
var baseConfig = wazero.NewModuleConfig().
	WithName("").
	WithStartFunctions(). // called by Run, so instantiation and run are told apart
	WithSysWalltime().
	WithSysNanotime()

// moduleConfig gives the guest its arguments; its descriptors are the run's
// table (wasip1). Sleeps end when ctx does, so that a deadline stops a
// guest even while it waits in a host call.
func (e *Engine) moduleConfig(ctx context.Context, c Call) wazero.ModuleConfig {
	return baseConfig.
		WithArgs(c.Args...).
		WithNanosleep(func(ns int64) { sleep(ctx, time.Duration(ns)) }).
		WithRandSource(randSource{ctx.Err})
}

// randSource is what random_get reads: crypto/rand, in pieces of at most
// 64 KiB, failing (EIO to the guest) once stopped says the run is over (its
// deadline passed, its caller gone). A guest asking for gigabytes in a few
// calls (fewer than a yield check's loop iterations) is stopped at its
// deadline, and the runtime can stop the world between pieces (one 64 MiB
// read delayed a collection by 350 ms, and every other request with it).
type randSource struct{ stopped func() error }

const randPiece = 64 << 10

func (r randSource) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if err := r.stopped(); err != nil {
			return n, err
		}
		m, err := rand.Read(p[n:min(len(p), n+randPiece)])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// stdinOf is what a run's stdin reads: an *os.File (a terminal or pipe,
// which may block for ever) through a reader that returns when ctx ends.
func stdinOf(ctx context.Context, r io.Reader) io.Reader {
	if f, ok := r.(*os.File); ok {
		return &ctxReader{ctx: ctx, r: f}
	}
	return r
}

// runError says why a guest stopped: the context's cause when the context
// stopped it (deadline, output cap, caller gone), else the trap.
func runError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		// err may be nil: the guest finished after being told to stop.
		cause := context.Cause(ctx)
		switch {
		case errors.Is(cause, ErrDeadline), errors.Is(cause, ErrOutputLimit):
			return cause
		case errors.Is(cause, context.DeadlineExceeded):
			return fmt.Errorf("guest stopped at the caller's deadline: %w", ErrDeadline)
		default:
			return fmt.Errorf("guest stopped: %w (%v)", ErrCanceled, cause)
		}
	}
	return trapFrom(err)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// ctxReader is a reader whose Read returns when ctx is done, even if the
// underlying Read blocks (which is then abandoned: its data is lost, which
// does not matter to a guest being stopped). poll_oneoff asks its Poll
// (poll_unix.go) whether a read would block.
type ctxReader struct {
	ctx context.Context
	r   *os.File
}

func (c *ctxReader) Read(p []byte) (int, error) {
	type result struct {
		n   int
		err error
	}
	buf := make([]byte, min(len(p), 64<<10)) // a read may return less than asked
	done := make(chan result, 1)
	go func() {
		n, err := c.r.Read(buf)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		return copy(p, buf[:r.n]), r.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}

// capWriter counts what the guest writes to a stream and stops the guest,
// through stop, on the first write past max.
func capWriter(w io.Writer, stream string, max int64, stop func(error)) io.Writer {
	if w == nil {
		w = io.Discard
	}
	if max <= 0 {
		return w
	}
	return &cappedWriter{w: w, stream: stream, left: max, max: max, stop: stop}
}

type cappedWriter struct {
	w      io.Writer
	stream string
	left   int64
	max    int64
	stop   func(error)
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= c.left {
		c.left -= int64(len(p))
		if b, ok := c.w.(*bytes.Buffer); ok && b.Available() < len(p) {
			// Grown as bytes.Buffer would (twice its size), but never past
			// the cap, which it would pass by as much again: a 33 MiB
			// answer in a buffer of 64.
			if grown := min(max(2*b.Cap(), b.Len()+len(p)), b.Len()+int(c.left)+len(p)); grown > b.Cap() {
				nb := make([]byte, b.Len(), grown)
				copy(nb, b.Bytes())
				*b = *bytes.NewBuffer(nb)
			}
		}
		return c.w.Write(p)
	}
	err := &outputError{stream: c.stream, limit: c.max}
	c.stop(err)
	n, _ := c.w.Write(p[:c.left])
	c.left = 0
	return n, err
}

// memoryOf returns m's memory, nil when it has none (wazero returns a typed
// nil then).
func memoryOf(m api.Module) api.Memory {
	if mem := m.Memory(); mem != nil && !reflect.ValueOf(mem).IsNil() {
		return mem
	}
	return nil
}

// runContext is the context of one run: cancel stops the guest with a cause
// (the output cap uses it), and the timeout, when set, with ErrDeadline. stop
// releases both.
func runContext(ctx context.Context, timeout time.Duration) (_ context.Context, cancel context.CancelCauseFunc, stop func()) {
	ctx, cancel = context.WithCancelCause(ctx)
	if timeout <= 0 {
		return ctx, cancel, func() { cancel(nil) }
	}
	ctx, stopTimer := context.WithTimeoutCause(ctx, timeout, timeoutError(timeout))
	return ctx, cancel, func() { stopTimer(); cancel(nil) }
}

// timeoutError is the cause of a run stopped by its timeout; a type rather
// than fmt.Errorf, which would format the message on every run.
type timeoutError time.Duration

func (e timeoutError) Error() string {
	return fmt.Sprintf("guest ran past its %s timeout: %s", time.Duration(e), ErrDeadline)
}

func (e timeoutError) Unwrap() error { return ErrDeadline }
