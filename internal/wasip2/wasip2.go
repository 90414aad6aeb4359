// Package wasip2 implements the WASI 0.2 interfaces components import, for
// the component runtime (package component): wasi:cli (environment, exit,
// stdin, stdout, stderr, terminal-*), wasi:io (error, streams, poll),
// wasi:clocks (wall-clock, monotonic-clock), wasi:random (random,
// insecure, insecure-seed), wasi:filesystem (types, preopens: the
// Context's Dirs) and wasi:http (types, outgoing-handler). Every other
// function of a WASI interface — sockets, file system locks and links — is
// denied: it returns its interface's own error (access denied), so that a
// component that imports it still links and runs.
package wasip2

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/wasi"
)

// Context is one component instance's view of the outside world.
type Context struct {
	Args   []string
	Env    [][2]string
	Stdin  io.Reader // nil: empty
	Stdout io.Writer // nil: discarded
	Stderr io.Writer // nil: discarded
	// Now is the wall clock. Default time.Now.
	Now func() time.Time
	// Outbound sends outgoing HTTP requests (wasi:http/outgoing-handler).
	// Default nil: every one is denied (HTTP-request-denied).
	Outbound Outbound
	// Admit, when set, says at once whether an outgoing request may go
	// (a host.Code*; handle's error when it is not CodeOK), before it is
	// sent on its own through Outbound. Default nil: every request Outbound
	// has is sent, its refusal its response's error.
	Admit func(ctx context.Context, req *wasi.OutboundRequest) int
	// Dirs are the preopened directories (wasi:filesystem/preopens).
	// Default none: the component sees no files.
	Dirs []Dir
	// Wait, when set, gives the context a host call that may block (a
	// pollable's wait, an outgoing request) waits in, given the call's:
	// one ending at the request's deadline. Default: the call's own.
	Wait Waiter
	// Link serves the component's imports of interfaces that are not
	// WASI's (LinkHost): a typed call of function fn of interface iface
	// (as component.Interface gives it), with the arguments lifted from
	// the caller, whose result is lowered back. Default nil: each such
	// call traps.
	Link func(ctx context.Context, iface, fn string, args []any) (any, error)
	// MaxHeld bounds what the host holds for the component beyond its
	// memories, in bytes: bodies written and not yet sent, the fields it
	// makes, the bodies of the responses to its outgoing requests. A
	// call that would hold more fails (a body's write, an outgoing
	// request's response: the interface's error; fields: a trap). Default
	// 0: DefaultMaxHeld.
	MaxHeld int64
	held    atomic.Int64 // counted by the guest's calls and by its outgoing requests' sends

	// sends are the call's outgoing requests in flight (outgoing.go).
	sends sends

	// room holds the first response and the first fields a handler makes
	// (most make one of each a request): in place, not allocations of
	// their own.
	room struct {
		response           OutgoingResponse
		fields             fields
		response1, fields1 bool // taken
	}
}

// DefaultMaxHeld is Context.MaxHeld's default.
const DefaultMaxHeld = 64 << 20

// ErrHeld is wrapped by the errors of calls that would have the host hold
// more than Context.MaxHeld.
var ErrHeld = errors.New("more than the host holds for a request")

// fieldOverhead is what the host holds for a field beyond its name's and
// value's bytes (their string and slice headers).
const fieldOverhead = 40

// hold counts n more bytes held for the component, or fails if that would
// be more than MaxHeld. Nil c (a Context-less call) holds nothing.
func (c *Context) hold(n int64) error {
	if c == nil {
		return nil
	}
	limit := c.MaxHeld
	if limit <= 0 {
		limit = DefaultMaxHeld
	}
	for {
		held := c.held.Load()
		if held+n > limit {
			return fmt.Errorf("%d bytes held already, %d more: %w (%d bytes: bodies not sent, fields, outgoing requests' responses)", held, n, ErrHeld, limit)
		}
		if c.held.CompareAndSwap(held, held+n) {
			return nil
		}
	}
}

// holdField is hold of a field of the component's.
func (c *Context) holdField(name string, value []byte) error {
	return c.hold(int64(len(name)+len(value)) + fieldOverhead)
}

// release counts n bytes no longer held.
func (c *Context) release(n int64) {
	if c != nil {
		c.held.Add(-n)
	}
}

// newResponse is the outgoing-response constructor: it owns h now.
func (c *Context) newResponse(h *fields) *OutgoingResponse {
	h.readOnly = false
	if !c.room.response1 {
		c.room.response1 = true
		c.room.response = OutgoingResponse{Status: 200, headers: h, wc: c}
		return &c.room.response
	}
	return &OutgoingResponse{Status: 200, headers: h, wc: c}
}

// newFields is a new, empty fields.
func (c *Context) newFields() *fields {
	if !c.room.fields1 {
		c.room.fields1 = true
		return &c.room.fields
	}
	return &fields{}
}

// Waiter gives the context a blocking host call waits in (Context.Wait).
type Waiter interface {
	WaitContext(call context.Context) context.Context
}

// wait is the context a blocking host call of inst waits in.
func wait(ctx context.Context, inst *component.Instance) context.Context {
	if w := wctx(inst).Wait; w != nil {
		return w.WaitContext(ctx)
	}
	return ctx
}

// ExitError is wasi:cli/exit's exit: the run ends with Code.
type ExitError struct{ Code uint32 }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

func wctx(inst *component.Instance) *Context {
	if c, ok := inst.State.(*Context); ok {
		return c
	}
	return &Context{}
}

// The host objects behind WASI resources.
type (
	// A stream may be a body's child (wasi:http): the body cannot be
	// finished while its stream lives.
	inputStream struct {
		r      io.Reader
		parent *incomingBody
		// buf is what reads read into, reused: a read's bytes are copied
		// into the guest before its next call. It starts small and
		// doubles while reads fill it, up to maxRead.
		buf    []byte
		filled bool // the last read filled buf
	}
	outputStream struct {
		w      io.Writer
		parent *outgoingBody
	}
	ioError struct{ msg string }
	// pollable is ready from at on (the zero at, always: the streams of
	// this host have their data before the guest asks), and, with done,
	// once done is closed (an outgoing request's response has come).
	pollable struct {
		at   time.Time
		done <-chan struct{}
	}
)

func (p *pollable) ready(now time.Time) bool {
	if now.Before(p.at) {
		return false
	}
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return false
		}
	}
	return true
}

// waitAny waits until one of ps is ready, or ctx is done: until the
// earliest time one is ready from, or until an outgoing request of c's
// ends (c.sends.wake), whichever comes first, again while none is ready.
func waitAny(ctx context.Context, c *Context, ps []*pollable) {
	for {
		now := time.Now()
		var first time.Time
		for _, p := range ps {
			if p.ready(now) {
				return
			}
			if p.done == nil && (first.IsZero() || p.at.Before(first)) {
				first = p.at
			}
		}
		var t *time.Timer
		var timer <-chan time.Time
		if !first.IsZero() {
			t = time.NewTimer(first.Sub(now))
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-timer:
		case <-c.sends.woken():
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// cliOutput is an instance's stdout (or stderr) as the call in progress
// has it (Context.Stdout, Stderr; nil: discarded): a stream got once is
// kept by a reused instance (the preview-1 adapter keeps its handle, an
// instance kept from its warm-up call has one), and each call's output
// goes where that call's Context says.
type cliOutput struct {
	inst   *component.Instance
	stderr bool
}

func (o cliOutput) Write(p []byte) (int, error) {
	c := wctx(o.inst)
	w := c.Stdout
	if o.stderr {
		w = c.Stderr
	}
	if w == nil {
		return len(p), nil
	}
	return w.Write(p)
}

// pollables returns the objects of a list of pollable handles' reps.
func pollables(inst *component.Instance, reps []any) ([]*pollable, error) {
	ps := make([]*pollable, len(reps))
	for i, rep := range reps {
		p, ok := inst.Object(rep.(uint32)).(*pollable)
		if !ok {
			return nil, fmt.Errorf("wasi:io/poll: handle of rep %d is not a pollable", rep)
		}
		ps[i] = p
	}
	return ps, nil
}

// duration is ns as a time.Duration, at most a century (a guest's "for
// ever" would overflow it).
func duration(ns uint64) time.Duration {
	return time.Duration(min(ns, uint64(100*365*24*time.Hour)))
}

// maxRead is the most one read of an input stream returns; checkWrite
// what check-write permits a write.
const (
	maxRead    = 64 << 10
	checkWrite = 1 << 20
)

// readBuffer returns s's buffer for a read of at most n bytes: the last
// read's if it is large enough, or one twice as large when the last read
// filled it.
func (s *inputStream) readBuffer(n int) []byte {
	switch {
	case s.buf == nil && n >= firstRead:
		s.buf = (*firstReads.Get().(*[firstRead]byte))[:]
	case len(s.buf) < n && (s.buf == nil || s.filled):
		s.buf = make([]byte, min(n, max(firstRead, 2*len(s.buf))))
	}
	return s.buf[:min(n, len(s.buf))]
}

// read is a read of at most n bytes (and maxRead): a view of the
// stream's buffer, valid until its next read.
func (s *inputStream) read(n uint64) ([]byte, error) {
	buf := s.readBuffer(int(min(n, maxRead)))
	got, err := s.r.Read(buf)
	s.filled = got == len(buf)
	if got == 0 && err != nil {
		return nil, err
	}
	return buf[:got], nil
}

// firstRead is the size of a stream's first buffer; firstReads keeps those
// of dropped streams for the next ones.
const firstRead = 4096

var firstReads = sync.Pool{New: func() any { return new([firstRead]byte) }}

// release gives back the stream's first buffer, if it still has it.
func (s *inputStream) release() {
	if len(s.buf) == firstRead {
		firstReads.Put((*[firstRead]byte)(s.buf))
	}
	s.buf = nil
}

// Host returns the WASI 0.2 host functions.
func Host() *component.Host {
	h := &component.Host{Funcs: map[string]component.HostFunc{}, Fallback: deny,
		Drops: map[string]func(*component.Instance, uint32){}}
	addFlat(h)
	add := func(iface, fn string, f component.HostFunc) { h.Funcs[iface+"#"+fn] = f }
	const (
		env     = "wasi:cli/environment@0.2"
		streams = "wasi:io/streams@0.2"
	)
	add(env, "get-environment", func(_ context.Context, inst *component.Instance, _ []any) (any, error) {
		out := make([]any, 0, len(wctx(inst).Env))
		for _, kv := range wctx(inst).Env {
			out = append(out, []any{kv[0], kv[1]})
		}
		return out, nil
	})
	add(env, "get-arguments", func(_ context.Context, inst *component.Instance, _ []any) (any, error) {
		out := make([]any, len(wctx(inst).Args))
		for i, a := range wctx(inst).Args {
			out[i] = a
		}
		return out, nil
	})
	add(env, "initial-cwd", func(context.Context, *component.Instance, []any) (any, error) {
		return cabi.VariantValue{Case: 0}, nil // none
	})
	add("wasi:cli/exit@0.2", "exit", func(_ context.Context, _ *component.Instance, args []any) (any, error) {
		return nil, &ExitError{Code: args[0].(cabi.VariantValue).Case} // ok → 0, error → 1
	})
	add("wasi:cli/stdin@0.2", "get-stdin", func(_ context.Context, inst *component.Instance, _ []any) (any, error) {
		r := wctx(inst).Stdin
		if r == nil {
			r = strings.NewReader("")
		}
		return inst.NewObject(&inputStream{r: r}), nil
	})
	output := func(stderr bool) component.HostFunc {
		return func(_ context.Context, inst *component.Instance, _ []any) (any, error) {
			return inst.NewObject(&outputStream{w: cliOutput{inst, stderr}}), nil
		}
	}
	add("wasi:cli/stdout@0.2", "get-stdout", output(false))
	add("wasi:cli/stderr@0.2", "get-stderr", output(true))
	for _, t := range []string{"stdin", "stdout", "stderr"} {
		add("wasi:cli/terminal-"+t+"@0.2", "get-terminal-"+t, func(context.Context, *component.Instance, []any) (any, error) {
			return cabi.VariantValue{Case: 0}, nil // not a terminal
		})
	}
	add("wasi:io/error@0.2", "[method]error.to-debug-string", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		if e, ok := inst.Object(args[0].(uint32)).(*ioError); ok {
			return e.msg, nil
		}
		return "error", nil
	})
	read := func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		s, ok := inst.Object(args[0].(uint32)).(*inputStream)
		if !ok {
			return nil, errors.New("wasi:io/streams: not an input stream")
		}
		b, err := s.read(args[1].(uint64))
		if err != nil {
			return streamError(inst, err), nil
		}
		return cabi.VariantValue{Case: 0, Value: b}, nil
	}
	add(streams, "[method]input-stream.read", read)
	add(streams, "[method]input-stream.blocking-read", read)
	// skip and splice read as read does, then discard what they read or
	// write it to the output stream.
	transfer := func(from int, to func(inst *component.Instance, args []any, b []byte) error) component.HostFunc {
		return func(_ context.Context, inst *component.Instance, args []any) (any, error) {
			s, ok := inst.Object(args[from].(uint32)).(*inputStream)
			if !ok {
				return nil, errors.New("wasi:io/streams: not an input stream")
			}
			b, err := s.read(args[from+1].(uint64))
			if err != nil {
				return streamError(inst, err), nil
			}
			if err := to(inst, args, b); err != nil {
				return streamError(inst, err), nil
			}
			return cabi.VariantValue{Case: 0, Value: uint64(len(b))}, nil
		}
	}
	skip := transfer(0, func(*component.Instance, []any, []byte) error { return nil })
	add(streams, "[method]input-stream.skip", skip)
	add(streams, "[method]input-stream.blocking-skip", skip)
	splice := transfer(1, func(inst *component.Instance, args []any, b []byte) error {
		out, ok := inst.Object(args[0].(uint32)).(*outputStream)
		if !ok {
			return errors.New("not an output stream")
		}
		_, err := out.w.Write(b)
		return err
	})
	add(streams, "[method]output-stream.splice", splice)
	add(streams, "[method]output-stream.blocking-splice", splice)
	add(streams, "[method]output-stream.check-write", func(context.Context, *component.Instance, []any) (any, error) {
		return cabi.VariantValue{Case: 0, Value: uint64(checkWrite)}, nil
	})
	write := func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		s, ok := inst.Object(args[0].(uint32)).(*outputStream)
		if !ok {
			return nil, errors.New("wasi:io/streams: not an output stream")
		}
		if _, err := s.w.Write(args[1].([]byte)); err != nil {
			return streamError(inst, err), nil
		}
		return cabi.VariantValue{Case: 0}, nil
	}
	add(streams, "[method]output-stream.write", write)
	add(streams, "[method]output-stream.blocking-write-and-flush", write)
	writeZeroes := func(ctx context.Context, inst *component.Instance, args []any) (any, error) {
		n := args[1].(uint64)
		if n > checkWrite {
			return nil, fmt.Errorf("wasi:io/streams: write-zeroes of %d bytes, more than check-write permits (%d)", n, checkWrite)
		}
		return write(ctx, inst, []any{args[0], make([]byte, n)})
	}
	add(streams, "[method]output-stream.write-zeroes", writeZeroes)
	add(streams, "[method]output-stream.blocking-write-zeroes-and-flush", writeZeroes)
	flush := func(context.Context, *component.Instance, []any) (any, error) {
		return cabi.VariantValue{Case: 0}, nil
	}
	add(streams, "[method]output-stream.flush", flush)
	add(streams, "[method]output-stream.blocking-flush", flush)
	subscribe := func(_ context.Context, inst *component.Instance, _ []any) (any, error) {
		return inst.NewObject(&pollable{}), nil // streams never block here
	}
	add(streams, "[method]input-stream.subscribe", subscribe)
	add(streams, "[method]output-stream.subscribe", subscribe)
	add("wasi:io/poll@0.2", "[method]pollable.ready", method(func(p *pollable, _ *component.Instance, _ []any) any {
		return p.ready(time.Now())
	}))
	add("wasi:io/poll@0.2", "[method]pollable.block", func(ctx context.Context, inst *component.Instance, args []any) (any, error) {
		p, err := object[*pollable](inst, args[0])
		if err != nil {
			return nil, err
		}
		if !p.ready(time.Now()) { // the request's deadline context only for a wait
			waitAny(wait(ctx, inst), wctx(inst), []*pollable{p})
		}
		return nil, nil
	})
	// poll waits for the first of the pollables to be ready and returns
	// the indices of those that are.
	add("wasi:io/poll@0.2", "poll", func(ctx context.Context, inst *component.Instance, args []any) (any, error) {
		ps, err := pollables(inst, args[0].([]any))
		if err != nil {
			return nil, err
		}
		if len(ps) == 0 {
			return nil, errors.New("wasi:io/poll: poll of an empty list")
		}
		// One that is ready already (the streams' always are) needs no
		// wait, nor the request's deadline context made for one.
		now := time.Now()
		if !slices.ContainsFunc(ps, func(p *pollable) bool { return p.ready(now) }) {
			ctx = wait(ctx, inst)
			waitAny(ctx, wctx(inst), ps)
			now = time.Now()
		}
		var ready []any
		for i, p := range ps {
			if p.ready(now) || ctx.Err() != nil {
				ready = append(ready, uint32(i))
			}
		}
		return ready, nil
	})
	add("wasi:clocks/wall-clock@0.2", "now", func(_ context.Context, inst *component.Instance, _ []any) (any, error) {
		now := time.Now
		if wctx(inst).Now != nil {
			now = wctx(inst).Now
		}
		t := now()
		return []any{uint64(t.Unix()), uint32(t.Nanosecond())}, nil
	})
	add("wasi:clocks/wall-clock@0.2", "resolution", func(context.Context, *component.Instance, []any) (any, error) {
		return []any{uint64(0), uint32(1)}, nil
	})
	start := time.Now()
	add("wasi:clocks/monotonic-clock@0.2", "now", func(context.Context, *component.Instance, []any) (any, error) {
		return uint64(time.Since(start)), nil
	})
	add("wasi:clocks/monotonic-clock@0.2", "resolution", func(context.Context, *component.Instance, []any) (any, error) {
		return uint64(1), nil
	})
	// Instants are nanoseconds since start, as now gives them.
	add("wasi:clocks/monotonic-clock@0.2", "subscribe-instant", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		return inst.NewObject(&pollable{at: start.Add(duration(args[0].(uint64)))}), nil
	})
	add("wasi:clocks/monotonic-clock@0.2", "subscribe-duration", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		return inst.NewObject(&pollable{at: time.Now().Add(duration(args[0].(uint64)))}), nil
	})
	randomBytes := func(_ context.Context, _ *component.Instance, args []any) (any, error) {
		n := args[0].(uint64)
		if n > 1<<20 {
			return nil, fmt.Errorf("wasi:random: %d random bytes asked, at most %d", n, 1<<20)
		}
		b := make([]byte, n)
		rand.Read(b)
		return b, nil
	}
	randomU64 := func(context.Context, *component.Instance, []any) (any, error) {
		var b [8]byte
		rand.Read(b[:])
		return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56, nil
	}
	add("wasi:random/random@0.2", "get-random-bytes", randomBytes)
	add("wasi:random/random@0.2", "get-random-u64", randomU64)
	add("wasi:random/insecure@0.2", "get-insecure-random-bytes", randomBytes)
	add("wasi:random/insecure@0.2", "get-insecure-random-u64", randomU64)
	add("wasi:random/insecure-seed@0.2", "insecure-seed", func(ctx context.Context, inst *component.Instance, _ []any) (any, error) {
		a, _ := randomU64(ctx, inst, nil)
		b, _ := randomU64(ctx, inst, nil)
		return []any{a, b}, nil // tuple<u64, u64>
	})
	addHTTP(h)
	addOutgoing(h)
	// A body's stream, dropped, frees the body to be finished.
	h.Drops["wasi:io/streams@0.2#input-stream"] = func(inst *component.Instance, rep uint32) {
		if s, ok := inst.Object(rep).(*inputStream); ok {
			if s.parent != nil {
				s.parent.child = false
			}
			s.release()
		}
	}
	h.Drops["wasi:io/streams@0.2#output-stream"] = func(inst *component.Instance, rep uint32) {
		if s, ok := inst.Object(rep).(*outputStream); ok && s.parent != nil {
			s.parent.child = false
		}
	}
	addFilesystem(h)
	return h
}

// errClosed is a stream's err(closed), boxed once.
var errClosed any = cabi.VariantValue{Case: 1, Value: cabi.VariantValue{Case: 1}}

// streamError is wasi:io/streams' stream-error for err: closed at the end
// of the stream, else last-operation-failed with an error resource.
func streamError(inst *component.Instance, err error) any {
	if errors.Is(err, io.EOF) {
		return errClosed
	}
	return cabi.VariantValue{Case: 1, Value: cabi.VariantValue{Case: 0, Value: inst.NewObject(&ioError{msg: err.Error()})}}
}

// deniedCodes are the error cases, in order of preference, that a denied
// WASI function returns.
var deniedCodes = []string{"access-denied", "access", "not-permitted", "HTTP-request-denied", "not-supported", "unsupported"}

// LinkHost is Host with the imports of interfaces that are not WASI's
// served by the instance's Context.Link: a component that imports another
// service's interface links, and its calls go where the Link says. A call
// that fails (the callee trapped, ran out of time or memory, or none could
// serve it) returns the function's error when the function returns
// result<_, string> — the message says what failed — and traps the caller
// otherwise.
func LinkHost() *component.Host {
	h := Host()
	h.Fallback = func(key string, results []*cabi.Type) component.HostFunc {
		if strings.HasPrefix(key, "wasi:") {
			return deny(key, results)
		}
		iface, fn, ok := strings.Cut(key, "#")
		if !ok || iface == "" {
			return nil // a function the world imports itself: no interface to link
		}
		stringErr := len(results) == 1 && results[0].Kind == cabi.Result && results[0].Err != nil && results[0].Err.Kind == cabi.String
		return func(ctx context.Context, inst *component.Instance, args []any) (any, error) {
			link := wctx(inst).Link
			if link == nil {
				return nil, fmt.Errorf("%s: no service is linked for %s", key, iface)
			}
			// The call waits as a blocking host call does: within the
			// caller's deadline.
			ctx = wait(ctx, inst)
			out, err := link(ctx, iface, fn, args)
			if err != nil && stringErr && ctx.Err() == nil {
				return cabi.VariantValue{Case: 1, Value: "wasmesh: " + err.Error()}, nil
			}
			return out, err
		}
	}
	return h
}

// deny implements a WASI function the host does not grant: a result's
// error case of the interface's own "access denied" code, none for an
// option, nothing for no result; any other function of a wasi: interface
// traps when called. Other interfaces, and WASI 0.3's, are not the
// host's: nil.
func deny(key string, results []*cabi.Type) component.HostFunc {
	if !strings.HasPrefix(key, "wasi:") || strings.Contains(key, "@0.3") {
		return nil // not the host's, or WASI 0.3's: refused at link
	}
	fail := func(context.Context, *component.Instance, []any) (any, error) {
		return nil, fmt.Errorf("%s is not available", key)
	}
	switch {
	case len(results) == 0:
		return func(context.Context, *component.Instance, []any) (any, error) { return nil, nil }
	case results[0].Kind == cabi.Option:
		return func(context.Context, *component.Instance, []any) (any, error) {
			return cabi.VariantValue{Case: 0}, nil
		}
	case results[0].Kind != cabi.Result || results[0].Err == nil:
		return fail
	}
	e := results[0].Err
	var labels []string
	switch e.Kind {
	case cabi.Enum:
		labels = e.Labels
	case cabi.Variant:
		for _, c := range e.Cases {
			if c.Type == nil {
				labels = append(labels, c.Name)
			} else {
				labels = append(labels, "")
			}
		}
	}
	for _, want := range deniedCodes {
		for i, l := range labels {
			if l == want {
				return func(context.Context, *component.Instance, []any) (any, error) {
					return cabi.VariantValue{Case: 1, Value: cabi.VariantValue{Case: uint32(i)}}, nil
				}
			}
		}
	}
	return fail
}
