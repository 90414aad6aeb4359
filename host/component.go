package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasip2"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
	"github.com/wasmesh/wasmesh/wasi"
)

// ErrNotCommand is wrapped by RunComponent's errors for a component that
// cannot run as a command: it exports no wasi:cli/run, or imports what the
// host does not provide.
var ErrNotCommand = errors.New("cannot run as a command")

// RunComponent runs a wasi:cli/command component once: its wasi:cli/run
// export, with c's arguments, environment, standard streams and mounts
// (wasi:filesystem's preopens, read-only where the mount says so), within
// c's Timeout and MemoryLimit (each memory of the component). The result's
// ExitCode is 0 when run returns ok, 1 when it returns an error, or the code
// the guest gave wasi:cli/exit. c's output caps do not apply to components
// yet; wasi:sockets answers access denied.
func (e *Engine) RunComponent(ctx context.Context, wasm []byte, c Call) (Result, error) {
	var dirs []wasip2.Dir
	for _, m := range c.Mounts {
		root, err := os.OpenRoot(m.HostPath)
		if err != nil {
			return Result{}, fmt.Errorf("mount %s: %w", m.HostPath, err)
		}
		defer root.Close()
		dirs = append(dirs, wasip2.Dir{Path: m.GuestPath, Root: root, ReadOnly: m.ReadOnly})
	}
	comp, err := component.Decode(wasm)
	if err != nil {
		return Result{}, err
	}
	run, handler := "", false
	for _, ex := range comp.Exports {
		switch component.Interface(ex.Name) {
		case "wasi:cli/run@0.2":
			run = ex.Name
		case "wasi:http/incoming-handler@0.2":
			handler = true
		}
	}
	if run == "" {
		hint := ""
		if handler {
			hint = "; a wasi:http component is served, by wasmesh serve"
		}
		return Result{}, fmt.Errorf("the component exports no wasi:cli/run@0.2: %w (it exports %s%s)", ErrNotCommand, exportNames(comp), hint)
	}
	l, err := component.LinkWith(ctx, e.rt, comp, wasip2.Host(), e.linkOptions(""))
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrNotCommand, err)
	}
	defer l.Close(context.Background())
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.Timeout, ErrDeadline)
		defer cancel()
	}
	if err := memoryFits(l.MinMemory(), c.MemoryLimit); err != nil {
		return Result{}, err
	}
	ctx = withMemoryLimit(ctx, c.MemoryLimit)
	wc := &wasip2.Context{Args: c.Args, Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr, Dirs: dirs, MaxHeld: c.MemoryLimit}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		wc.Env = append(wc.Env, [2]string{k, v})
	}
	inst, err := l.Instantiate(ctx, wc)
	if err != nil {
		return Result{}, runError(ctx, err)
	}
	defer inst.Close(context.Background())
	out, err := inst.Call(ctx, run, "run")
	var exit *wasip2.ExitError
	switch {
	case errors.As(err, &exit):
		return Result{ExitCode: exit.Code}, nil
	case err != nil:
		return Result{}, runError(ctx, err)
	}
	// run returns result: ok (case 0) or error (case 1), the exit status.
	if len(out) == 1 {
		if v, ok := out[0].(cabi.VariantValue); ok {
			return Result{ExitCode: v.Case}, nil
		}
	}
	return Result{}, fmt.Errorf("%w: its run returns %v, not a result", ErrNotCommand, out)
}

func exportNames(c *component.Component) string {
	var names []string
	for _, ex := range c.Exports {
		names = append(names, ex.Name)
	}
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}

// ErrNotHTTP is wrapped by the errors of Compile and Validate for a
// component that a gateway cannot serve: it exports neither
// wasi:http/incoming-handler nor an interface of its own (a library that
// other services link to), or imports what the host does not provide.
var ErrNotHTTP = errors.New("not a wasi:http/proxy component")

// compileComponent decodes a component and links it in the engine's
// runtime with the WASI 0.2 host, for HandleHTTP, and, for its exports of
// interfaces that are not WASI's, CallExport. Its imports of such
// interfaces are typed calls to another service (Link).
func (e *Engine) compileComponent(ctx context.Context, digest string, wasm []byte) (*Module, error) {
	comp, err := component.Decode(wasm)
	if err != nil {
		return nil, err
	}
	m := &Module{Digest: digest, exports: map[string]string{}}
	for _, ex := range comp.Exports {
		iface := component.Interface(ex.Name)
		switch {
		case iface == "wasi:http/incoming-handler@0.2":
			m.handler = ex.Name
		case !strings.HasPrefix(iface, "wasi:") && ex.Sort == (component.Sort{Kind: component.SortInstance}):
			m.exports[iface] = ex.Name
		}
	}
	if m.handler == "" {
		m.notHandler = notHandler(comp)
	}
	if m.handler == "" && len(m.exports) == 0 {
		if m.notHandler != "" {
			return nil, fmt.Errorf("%w: %s", ErrNotHTTP, m.notHandler)
		}
		return nil, fmt.Errorf("%w: it exports %s, not wasi:http/incoming-handler@0.2 nor an interface of its own", ErrNotHTTP, exportNames(comp))
	}
	if m.component, err = component.LinkWith(ctx, e.rt, comp, wasip2.LinkHost(), e.linkOptions(digest)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotHTTP, err)
	}
	if m.handler != "" {
		if err := checkHandler(m.component, m.handler); err != nil {
			_ = m.component.Close(ctx)
			return nil, fmt.Errorf("%w: %w", ErrNotHTTP, err)
		}
	}
	m.minMemory = m.component.MinMemory()
	switch err := m.component.Resettable(); {
	case e.fresh:
		m.NotReusable = "the engine creates fresh instances"
	case err != nil:
		m.NotReusable = err.Error()
	default:
		if m.components, err = newComponents(e, digest, m.component, m.handler); err != nil {
			_ = m.component.Close(ctx)
			return nil, err
		}
		m.Reusable = true
	}
	return m, nil
}

// notHandler says why a component with no wasi:http/incoming-handler@0.2
// export is not a handler, when its exports say more than that: a
// wasi:cli command, or a handler of a wasi:http this host does not serve.
func notHandler(comp *component.Component) string {
	for _, ex := range comp.Exports {
		base, version, _ := strings.Cut(ex.Name, "@")
		switch {
		case component.Interface(ex.Name) == "wasi:cli/run@0.2":
			return "it is a wasi:cli command (it exports " + ex.Name + "): run it with wasmesh run"
		case base == "wasi:http/incoming-handler":
			return "it exports " + ex.Name + ", and this host serves wasi:http/incoming-handler@0.2.x; version " + version + " is not one"
		}
	}
	return ""
}

// checkHandler refuses a handler export whose handle function is not
// wasi:http's handle(own<incoming-request>, own<response-outparam>) with
// no result: called so, it would read its arguments as what they are not.
func checkHandler(l *component.Linked, export string) error {
	params, results, err := l.FuncType(export, "handle")
	if err != nil {
		return fmt.Errorf("%s: %w", export, err)
	}
	want := []string{"incoming-request", "response-outparam"}
	ok := len(params) == len(want) && len(results) == 0
	for i := 0; ok && i < len(want); i++ {
		iface, name, _ := strings.Cut(l.ResourceName(params[i].Resource), "#")
		ok = params[i].Kind == cabi.Own && component.Interface(iface) == "wasi:http/types@0.2" && name == want[i]
	}
	if !ok {
		got := make([]string, len(params))
		for i, p := range params {
			got[i] = p.Kind.String()
			if p.Kind == cabi.Own || p.Kind == cabi.Borrow {
				got[i] += "<" + l.ResourceName(p.Resource) + ">"
			}
		}
		return fmt.Errorf("%s#handle takes (%s) and returns %d results, want (own<incoming-request>, own<response-outparam>) and none",
			export, strings.Join(got, ", "), len(results))
	}
	return nil
}

// linkOptions are the options of the engine's component links: the
// snapshot cache, and the runtime where components stop themselves; digest
// is the component's (Compile's contract), "" when not known.
func (e *Engine) linkOptions(digest string) component.LinkOptions {
	opts := component.LinkOptions{Stoppable: e.stopRT, Digest: digest}
	if e.snapshots != nil {
		opts.Cache = e.snapshots
	}
	return opts
}

// HTTPRequest is a request for HandleHTTP.
type HTTPRequest struct {
	Method        string
	PathWithQuery string // "/x?y=1"
	Scheme        string // "http" or "https"
	Authority     string // the Host
	Header        http.Header
	// HeaderFunc, when Header is nil, makes the header the first time the
	// component asks for it: a handler that never looks at the request's
	// header costs none. It is called at most once, during HandleHTTP.
	// Default nil: Header is the header.
	HeaderFunc func() http.Header
	Body       io.Reader
	// Trailer gives the request's trailers, once Body has been read to its
	// end (nil, or nil returned: none).
	Trailer func() http.Header
	// Args and Env are what wasi:cli/environment gives the component
	// (get-arguments, get-environment: name and value pairs). Default none.
	Args []string
	Env  [][2]string
	// Respond, when set, streams the response: it is called when the
	// component sets its response, with the status and header, and returns
	// where the body goes as the component writes it; HandleHTTP's
	// HTTPResponse then has no Header and no Body. Default nil: both are
	// returned.
	Respond func(status int, header ResponseHeader) io.Writer
	// Warmup, when set, is the path of a GET that each new instance of the
	// pool serves once, before its state is kept: every request then
	// starts from the state that request left (its interpreter warm, its
	// lazy imports done) instead of instantiation's. Requests stay
	// isolated from each other. Instances are pooled apart by it. Default
	// "": none.
	Warmup string
	// Outbound sends the component's outgoing requests
	// (wasi:http/outgoing-handler) and returns the response, or a failure as
	// a Code*. Default nil: each is denied.
	Outbound func(ctx context.Context, req *wasi.OutboundRequest) (*wasi.OutboundResponse, int)
	// Admit says at once whether an outgoing request may go, before it is
	// sent (wasip2.Context.Admit). Default nil: Outbound decides.
	Admit func(ctx context.Context, req *wasi.OutboundRequest) int
	// Link serves the component's typed calls of the interfaces it
	// imports that are not WASI's (host/link.go). Default nil: each traps.
	Link func(ctx context.Context, iface, fn string, args []any) (any, error)
	// Stdout and Stderr get what the component writes to wasi:cli's
	// stdout and stderr (a print, a panic's message). Default nil:
	// discarded.
	Stdout, Stderr io.Writer

	// Instantiate is set by HandleHTTP once it has the call's instance:
	// the time taken to create it, or to take a reset one (0 when none
	// could be had).
	Instantiate time.Duration
}

// HTTPResponse is a component's answer.
type HTTPResponse struct {
	Status int
	Header http.Header
	Body   []byte
	// Finished says the component finished the body (outgoing-body.finish):
	// a body not finished is incomplete.
	Finished bool
	// Trailer are the trailers it finished the body with (nil for none).
	Trailer http.Header
}

// ErrNoResponse is HandleHTTP's error when the handler returns without
// setting a response.
var ErrNoResponse = errors.New("the handler returned without setting a response")

// HandleHTTP serves r with component module m: an instance calls its
// wasi:http/incoming-handler with the request, within timeout (0: none),
// each of its memories capped at memoryLimit bytes (0: 4 GiB), and the
// response it set is returned. A trap, the deadline, a response never set
// or set with an error are errors. The instance is one reset to the state
// instantiation left it in when m.Reusable (component_pool.go), else a
// new one.
func (e *Engine) HandleHTTP(ctx context.Context, m *Module, r *HTTPRequest, timeout time.Duration, memoryLimit int64) (*HTTPResponse, error) {
	if m.component == nil {
		return nil, fmt.Errorf("module %s is not a component", m.Digest)
	}
	if m.handler == "" {
		return nil, fmt.Errorf("%w: component %s is a library (it exports %s): link to it", ErrNotHTTP, m.Digest, strings.Join(slices.Sorted(maps.Keys(m.exports)), ", "))
	}
	// What the call needs, in one allocation.
	// The host holds for it, beyond its memories, at most as much as its
	// memories may have.
	hc := &httpCall{wc: wasip2.Context{Outbound: r.Outbound, Admit: r.Admit, Args: r.Args, Env: r.Env, Link: r.Link, MaxHeld: memoryLimit,
		Stdout: r.Stdout, Stderr: r.Stderr}}
	c := &hc.call
	r.Instantiate = 0
	if err := e.startCall(ctx, m, timeout, memoryLimit, &hc.wc, r.Warmup, c); err != nil {
		return nil, err
	}
	r.Instantiate = c.took
	var err error
	// A response never set, or set with an error, is the guest's answer:
	// its instance ran cleanly, and is reused.
	defer func() { c.end(err == nil) }()
	inst := c.inst
	hc.req = wasip2.IncomingRequest{Method: r.Method, PathWithQuery: r.PathWithQuery, Scheme: r.Scheme,
		Authority: r.Authority, Header: r.Header, HeaderFunc: r.HeaderFunc, Body: r.Body, Trailer: r.Trailer}
	out := &hc.out
	if r.Respond != nil {
		hc.respond = r.Respond
		out.Stream = hc
	}
	if _, err = inst.Call(c.callCtx, m.handler, "handle", inst.NewObject(&hc.req), inst.NewObject(out)); err != nil {
		err = c.fail(err)
		return nil, err
	}
	if c.dl.ended() {
		// Stopped (at the deadline, or with its caller), even if the
		// handler then managed to return: a wait cut short returns
		// normally.
		err = runError(c.dl.ctx, nil)
		return nil, err
	}
	switch { // the guest's answer, from an instance that ran cleanly: err stays nil
	case !out.Set():
		return nil, ErrNoResponse
	case out.Err != nil:
		return nil, out.Err
	}
	resp := out.Response
	if err := resp.Failed(); err != nil {
		// Its instance ran cleanly: kept (err, the deferred end's, nil).
		return nil, fmt.Errorf("response body: a write failed, which the handler ignored: %w", err)
	}
	var h http.Header
	if r.Respond == nil { // else given to Respond already
		h = resp.Header()
	}
	hc.resp = HTTPResponse{Status: resp.Status, Header: h, Body: resp.Body(), Finished: resp.Finished(), Trailer: resp.Trailer()}
	return &hc.resp, nil
}

// ResponseHeader is the header of a component's streamed response, as
// HTTPRequest.Respond is given it, read during that call.
type ResponseHeader struct{ r *wasip2.OutgoingResponse }

// AddTo sets the header's fields in h, their names in canonical form (the
// values of a name replace those h had), but those whose canonical name
// skip holds (nil: none).
func (rh ResponseHeader) AddTo(h http.Header, skip map[string]bool) { rh.r.AddHeader(h, skip) }

// httpCall is what HandleHTTP makes for a request.
type httpCall struct {
	wc      wasip2.Context
	call    componentCall
	req     wasip2.IncomingRequest
	out     wasip2.ResponseOutparam
	resp    HTTPResponse
	respond func(int, ResponseHeader) io.Writer
}

// Send streams the response through HTTPRequest.Respond.
// A response set once the request's deadline has passed, or its caller
// has gone (a wait cut short returns to the guest, which may then
// answer), is not sent: the request's failure is its answer.
func (hc *httpCall) Send(r *wasip2.OutgoingResponse) (io.Writer, error) {
	if c := &hc.call; c.dl.passed() || c.dl.ended() || c.ctx.Err() != nil {
		return nil, fmt.Errorf("the response was set after the request stopped: %w", runError(c.dl.get(), nil))
	}
	return hc.respond(r.Status, ResponseHeader{r}), nil
}

// componentCall is one call into an instance of a component: its
// deadline, the context it runs in, and the instance (reset, or new).
type componentCall struct {
	ctx     context.Context // the caller's
	callCtx context.Context // the call's: stopped at the deadline unless the component stops itself
	dl      lazyDeadline
	inst    *component.Instance
	pool    *componentPool
	pc      *pooledComponent
	e       *Engine       // whose Stats.Active counts the call while it has its instance
	took    time.Duration // to create the instance or take a reset one
	wc      *wasip2.Context
}

// startCall gets an instance of m for one call within timeout (0: none),
// each memory capped at memoryLimit bytes, with wc as its WASI state:
// from m's pool of reset instances when it has one, else new, set in c.
// End it.
func (e *Engine) startCall(ctx context.Context, m *Module, timeout time.Duration, memoryLimit int64, wc *wasip2.Context, warmup string, c *componentCall) error {
	// The deadline: the instance of a Stoppable component is stopped at it
	// by its own watch (SetDeadline), and a context with it (a timer each)
	// is made only for what waits: an instantiation, a blocking host call.
	if err := memoryFits(m.minMemory, memoryLimit); err != nil {
		return err
	}
	start := clock.Now()
	*c = componentCall{ctx: ctx, callCtx: ctx, dl: lazyDeadline{parent: ctx}}
	if timeout > 0 {
		c.dl.at = start.Add(timeout)
	}
	if !m.component.Stoppable() {
		c.callCtx = c.dl.get() // stopped by wazero when its context is done
	}
	wc.Wait = &c.dl
	if p := m.pool(memoryLimit, wc.Args, wc.Env, warmup); p != nil {
		pc, err := p.get(c.dl.get)
		switch {
		case errors.Is(err, wasmbin.ErrNotReusable):
			p.disable(err)
		case err != nil:
			err = c.fail(err)
			c.dl.cancel()
			return err
		default:
			c.inst, c.pool, c.pc = pc.inst, p, pc
			c.inst.State = wc
		}
	}
	if c.inst == nil {
		inst, err := m.component.Instantiate(withMemoryLimit(c.dl.get(), memoryLimit), wc)
		if err != nil {
			err = c.fail(err)
			c.dl.cancel()
			return err
		}
		c.inst = inst
	}
	c.inst.SetDeadline(c.dl.at)
	c.e, c.took, c.wc = e, clock.Now().Sub(start), wc
	e.active.Add(1)
	return nil
}

// fail is the error of a call that failed with err: the caller's end, the
// deadline, or the guest's trap.
func (c *componentCall) fail(err error) error {
	switch {
	case c.ctx.Err() != nil: // the caller went first
		return runError(c.ctx, err)
	case c.dl.passed():
		return ErrDeadline
	}
	return runError(c.callCtx, err)
}

// end ends the call: a reset instance goes back to its pool when the
// guest's run ended cleanly (no trap, no host error) in time, else it is
// closed, as a new one is.
func (c *componentCall) end(clean bool) {
	c.wc.End() // its outgoing requests still in flight: stopped, waited for
	c.e.active.Add(-1)
	if c.pc != nil {
		c.pool.put(c.pc, clean && c.callCtx.Err() == nil && !c.dl.passed())
	} else {
		c.inst.Close(context.Background())
	}
	c.dl.cancel()
}

// lazyDeadline is a context ending at a request's deadline, made when first
// asked for: most requests need none.
type lazyDeadline struct {
	parent context.Context
	at     time.Time // zero: no deadline
	ctx    context.Context
	stop   context.CancelFunc
}

func (d *lazyDeadline) get() context.Context {
	if d.at.IsZero() {
		return d.parent
	}
	if d.ctx == nil {
		d.ctx, d.stop = context.WithDeadlineCause(d.parent, d.at, ErrDeadline)
	}
	return d.ctx
}

// WaitContext is the context a blocking host call waits in: the deadline's.
func (d *lazyDeadline) WaitContext(context.Context) context.Context { return d.get() }

// ended says a context made by get has ended: at the deadline, or with
// its parent.
func (d *lazyDeadline) ended() bool { return d.ctx != nil && d.ctx.Err() != nil }

// passed says the deadline has passed.
func (d *lazyDeadline) passed() bool { return !d.at.IsZero() && !clock.Now().Before(d.at) }

func (d *lazyDeadline) cancel() {
	if d.stop != nil {
		d.stop()
	}
}

// pool is the pool of reset instances for memoryLimit, args and env, nil
// when m's instances are not reused.
func (m *Module) pool(memoryLimit int64, args []string, env [][2]string, warmup string) *componentPool {
	if m.components == nil {
		return nil
	}
	ceiling := uint64(maxMemory)
	if memoryLimit > 0 {
		ceiling = uint64(memoryLimit) &^ (pageSize - 1)
	}
	return m.components.pool(ceiling, args, env, warmup)
}

// withMemoryLimit gives the instances made with ctx memories outside the Go
// heap, each capped at limit bytes (0: 4 GiB), as Run's.
// memoryFits refuses a component whose memories at start need more than
// limit (0: the engine's maximum) allows each.
func memoryFits(need uint64, limit int64) error {
	l := uint64(maxMemory)
	if limit > 0 {
		l = uint64(limit) &^ (pageSize - 1)
	}
	if need > l {
		return fmt.Errorf("component needs %d bytes of memory at start, limit is %d: %w", need, l, ErrMemoryLimit)
	}
	return nil
}

func withMemoryLimit(ctx context.Context, limit int64) context.Context {
	l := uint64(maxMemory)
	if limit > 0 {
		l = uint64(limit) &^ (pageSize - 1)
	}
	return experimental.WithMemoryAllocator(ctx, limitedAllocator{limit: l})
}
