package wasip2

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/wasi"
)

// Outbound sends a component's outgoing request through the gateway's
// outbound path and returns the response, or a failure as one of the
// wasmesh host functions' result codes (host.Code*): the same path, with
// the same allow-list, trace and identity, as a module's http_call.
type Outbound func(ctx context.Context, req *wasi.OutboundRequest) (*wasi.OutboundResponse, int)

// Result codes of Outbound (host.CodeOK and its siblings).
const (
	codeOK          = 0
	codeTooSmall    = 1
	codeDenied      = 2
	codeInvalid     = 3
	codeUnavailable = 4
	codeTimeout     = 5
	codeDNS         = 16 // host.CodeUnavailableDNS
	codeLoop        = 17 // host.CodeUnavailableLoop
	codeHeadTimeout = 18 // host.CodeTimeoutHead
)

// Cases of wasi:http/types' error-code.
const (
	errDNS               = 1
	errConnectionRefused = 6
	errConnectionTimeout = 8
	errReadTimeout       = 9 // connection-read-timeout
	errRequestDenied     = 15
	errRequestBodySize   = 17
	errRequestURIInvalid = 19
	errResponseBodySize  = 28
	errLoopDetected      = 36
	errInternal          = 38
)

func errorCode(code int) cabi.VariantValue {
	switch code {
	case codeDenied:
		return cabi.VariantValue{Case: errRequestDenied}
	case codeInvalid:
		return cabi.VariantValue{Case: errRequestURIInvalid}
	case codeUnavailable:
		return cabi.VariantValue{Case: errConnectionRefused}
	case codeDNS: // DNS-error, its record's rcode and info-code unknown
		return cabi.VariantValue{Case: errDNS, Value: []any{none, none}}
	case codeLoop:
		return cabi.VariantValue{Case: errLoopDetected}
	case codeHeadTimeout: // first-byte-timeout, as wasmtime says it
		return cabi.VariantValue{Case: errReadTimeout}
	case codeTimeout:
		return cabi.VariantValue{Case: errConnectionTimeout}
	case codeTooSmall:
		return cabi.VariantValue{Case: errResponseBodySize, Value: none}
	}
	return cabi.VariantValue{Case: errInternal, Value: none}
}

type (
	outgoingRequest struct {
		method, path, scheme, authority string
		headers                         *fields
		body                            *outgoingBody
	}
	// requestOptions are an outgoing request's timeouts (0: none set).
	requestOptions struct{ connect, firstByte, betweenBytes time.Duration }
	// The response's body is held for the component (Context.hold) until
	// the guest drops the future it came in, or the response it got from
	// it: held says how much, 0 once given back or passed on.
	futureIncomingResponse struct {
		resp  *wasi.OutboundResponse
		taken bool
		held  int64
		// pending, while set, starts the request's send: handed to handle
		// before its body was finished, it is sent when the body is, or
		// when its response is first asked for (get, subscribe). failed
		// is the error-code variant of a send that failed.
		pending func(context.Context)
		body    *outgoingBody // the body pending waits for
		failed  any
		// The send runs on a goroutine of its own (sends.start), so that
		// a component's requests overlap: done is closed once code, sent
		// (its response) and held (its body, counted as the send ended)
		// are set; settled once get has taken them in. Until done, mu
		// guards completed, dropped and cancel against the future's drop,
		// which stops the send.
		done      chan struct{}
		code      int
		sent      *wasi.OutboundResponse
		settled   bool
		mu        sync.Mutex
		completed bool
		dropped   bool
		cancel    context.CancelFunc
	}
	incomingResponse struct {
		resp     *wasi.OutboundResponse
		consumed bool
		held     int64
	}
)

func methodName(v cabi.VariantValue) string {
	if int(v.Case) < len(methods) {
		return methods[v.Case]
	}
	return v.Value.(string)
}

func schemeName(v cabi.VariantValue) string {
	switch v.Case {
	case 0:
		return "http"
	case 1:
		return "https"
	}
	return v.Value.(string)
}

// addOutgoing adds outgoing requests (wasi:http/types' outgoing-request,
// request-options, future-incoming-response, incoming-response and
// wasi:http/outgoing-handler) to h, sent through the instance's Outbound.
func addOutgoing(h *component.Host) {
	const types = "wasi:http/types@0.2"
	add := func(fn string, f component.HostFunc) { h.Funcs[types+"#"+fn] = f }
	// A response dropped gives back what its body held (a component that
	// fetches one response after another holds one at a time).
	h.Drops[types+"#future-incoming-response"] = func(inst *component.Instance, rep uint32) {
		if f, ok := inst.Object(rep).(*futureIncomingResponse); ok {
			f.drop(wctx(inst))
		}
	}
	h.Drops[types+"#incoming-response"] = func(inst *component.Instance, rep uint32) {
		if r, ok := inst.Object(rep).(*incomingResponse); ok {
			wctx(inst).release(r.held)
			r.held = 0
		}
	}
	add("[constructor]outgoing-request", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		hs, err := object[*fields](inst, args[0])
		if err != nil {
			return nil, err
		}
		inst.DropObject(args[0].(uint32))
		return inst.NewObject(&outgoingRequest{method: "GET", scheme: "http", headers: hs}), nil
	})
	optString := func(s string) any {
		if s == "" {
			return none
		}
		return some(s)
	}
	add("[method]outgoing-request.body", method(func(r *outgoingRequest, inst *component.Instance, _ []any) any {
		if r.body != nil {
			return errUnit
		}
		r.body = &outgoingBody{max: MaxResponseBody, wc: wctx(inst)}
		return ok(inst.NewObject(r.body))
	}))
	add("[method]outgoing-request.method", method(func(r *outgoingRequest, _ *component.Instance, _ []any) any { return methodValue(r.method) }))
	add("[method]outgoing-request.set-method", method(func(r *outgoingRequest, _ *component.Instance, args []any) any {
		r.method = methodName(args[1].(cabi.VariantValue))
		return ok(nil)
	}))
	add("[method]outgoing-request.path-with-query", method(func(r *outgoingRequest, _ *component.Instance, _ []any) any { return optString(r.path) }))
	add("[method]outgoing-request.set-path-with-query", method(func(r *outgoingRequest, _ *component.Instance, args []any) any {
		r.path = optionString(args[1])
		return ok(nil)
	}))
	add("[method]outgoing-request.scheme", method(func(r *outgoingRequest, _ *component.Instance, _ []any) any {
		return some(methodOrScheme(r.scheme))
	}))
	add("[method]outgoing-request.set-scheme", method(func(r *outgoingRequest, _ *component.Instance, args []any) any {
		r.scheme = "http"
		if v := args[1].(cabi.VariantValue); v.Case == 1 {
			r.scheme = schemeName(v.Value.(cabi.VariantValue))
		}
		return ok(nil)
	}))
	add("[method]outgoing-request.authority", method(func(r *outgoingRequest, _ *component.Instance, _ []any) any { return optString(r.authority) }))
	add("[method]outgoing-request.set-authority", method(func(r *outgoingRequest, _ *component.Instance, args []any) any {
		r.authority = optionString(args[1])
		return ok(nil)
	}))
	add("[method]outgoing-request.headers", method(func(r *outgoingRequest, inst *component.Instance, _ []any) any {
		return inst.NewObject(r.headers.view())
	}))
	add("[constructor]request-options", func(_ context.Context, inst *component.Instance, _ []any) (any, error) {
		return inst.NewObject(&requestOptions{}), nil
	})
	// first-byte-timeout bounds the time to the response's head
	// (OutboundRequest.HeadTimeout); connect-timeout and
	// between-bytes-timeout are kept and read back, the gateway's own
	// connect timeout and the request's deadline applying.
	for name, field := range map[string]func(*requestOptions) *time.Duration{
		"connect-timeout":       func(o *requestOptions) *time.Duration { return &o.connect },
		"first-byte-timeout":    func(o *requestOptions) *time.Duration { return &o.firstByte },
		"between-bytes-timeout": func(o *requestOptions) *time.Duration { return &o.betweenBytes },
	} {
		add("[method]request-options."+name, method(func(o *requestOptions, _ *component.Instance, _ []any) any {
			if d := *field(o); d > 0 {
				return some(uint64(d))
			}
			return none
		}))
		add("[method]request-options.set-"+name, method(func(o *requestOptions, _ *component.Instance, args []any) any {
			*field(o) = 0
			if v := args[1].(cabi.VariantValue); v.Case == 1 {
				*field(o) = duration(v.Value.(uint64))
			}
			return ok(nil)
		}))
	}
	h.Funcs["wasi:http/outgoing-handler@0.2#handle"] = func(ctx context.Context, inst *component.Instance, args []any) (any, error) {
		r, err := object[*outgoingRequest](inst, args[0])
		if err != nil {
			return nil, err
		}
		send := wctx(inst).Outbound
		if send == nil {
			r.refused()
			return cabi.VariantValue{Case: 1, Value: errorCode(codeDenied)}, nil
		}
		out := &wasi.OutboundRequest{Method: r.method, URL: r.scheme + "://" + r.authority + r.path, Header: http.Header{}}
		for i, n := range r.headers.names {
			out.Header.Add(n, string(r.headers.values[i]))
		}
		if o := args[1].(cabi.VariantValue); o.Case == 1 { // some(own<request-options>)
			if opts, err := object[*requestOptions](inst, o.Value); err == nil {
				out.HeadTimeout = opts.firstByte
				inst.DropObject(o.Value.(uint32))
			}
		}
		if admit := wctx(inst).Admit; admit != nil {
			if code := admit(ctx, out); code != codeOK { // refused at once (not allowed, malformed), as wasmtime's hosts do
				r.refused()
				return cabi.VariantValue{Case: 1, Value: errorCode(code)}, nil
			}
		}
		f := &futureIncomingResponse{}
		if b := r.body; b != nil && !b.finished {
			// Written and finished after handle, as componentize-js does:
			// the request goes when the body is finished, or, if its
			// response is asked for first, with the body as it is then
			// (and a write after it fails).
			f.pending = func(ctx context.Context) {
				f.pending, b.onFinish, f.body = nil, nil, nil
				if !b.finished {
					b.sent = errWriter{errors.New("wasi:http: the request was sent, its response asked for, before its body was finished")}
				}
				f.send(ctx, inst, send, out, b)
			}
			b.onFinish, f.body = f.pending, b
			return ok(inst.NewObject(f)), nil
		}
		if f.send(ctx, inst, send, out, r.body); f.failed != nil {
			return cabi.VariantValue{Case: 1, Value: f.failed}, nil
		}
		return ok(inst.NewObject(f)), nil
	}
	add("[method]future-incoming-response.subscribe", func(ctx context.Context, inst *component.Instance, args []any) (any, error) {
		f, err := object[*futureIncomingResponse](inst, args[0])
		if err != nil {
			return nil, err
		}
		if f.pending != nil {
			f.pending(ctx)
		}
		return inst.NewObject(&pollable{done: f.done}), nil
	})
	add("[method]future-incoming-response.get", func(ctx context.Context, inst *component.Instance, args []any) (any, error) {
		f, err := object[*futureIncomingResponse](inst, args[0])
		if err != nil {
			return nil, err
		}
		if f.pending != nil {
			f.pending(ctx)
		}
		if !f.settle() {
			return none, nil // not yet: the guest subscribes and waits
		}
		if f.taken {
			return some(errUnit), nil
		}
		f.taken = true
		if f.failed != nil {
			return some(ok(cabi.VariantValue{Case: 1, Value: f.failed})), nil
		}
		r := &incomingResponse{resp: f.resp, held: f.held}
		f.held = 0
		return some(ok(ok(inst.NewObject(r)))), nil
	})
	resp := method[*incomingResponse]
	add("[method]incoming-response.status", resp(func(r *incomingResponse, _ *component.Instance, _ []any) any { return uint16(r.resp.Status) }))
	add("[method]incoming-response.headers", resp(func(r *incomingResponse, inst *component.Instance, _ []any) any {
		return inst.NewObject(readOnlyFields(r.resp.Header))
	}))
	add("[method]incoming-response.consume", resp(func(r *incomingResponse, inst *component.Instance, _ []any) any {
		if r.consumed {
			return errUnit
		}
		r.consumed = true
		// The body's bytes stay held while the body lives, not the response.
		b := &incomingBody{r: bytes.NewReader(r.resp.Body), held: r.held}
		r.held = 0
		return ok(inst.NewObject(b))
	}))
}

// send starts sending out, with body's bytes (body nil: none), on a
// goroutine of its own (sends.start), once one of the call's MaxSends
// slots is free (waiting for one, at most until the request's deadline);
// settle takes in its outcome. A body whose write was refused fails it at
// once. The request's body stays counted as held until the send ends,
// and the response's body is counted as it ends (one over what the call
// may hold fails it: HTTP-response-body-size), until the guest drops the
// response or the future: sent responses the guest does not take are
// bounded too.
func (f *futureIncomingResponse) send(ctx context.Context, inst *component.Instance, send func(context.Context, *wasi.OutboundRequest) (*wasi.OutboundResponse, int), out *wasi.OutboundRequest, body *outgoingBody) {
	if body != nil {
		if body.failed != nil {
			// A write was refused: the body is not the one meant.
			f.failed = cabi.VariantValue{Case: errRequestBodySize, Value: none}
			return
		}
		out.Body = body.takeHeld()
	}
	wc := wctx(inst)
	bodyHeld := int64(len(out.Body))
	f.done = make(chan struct{})
	ok := wc.sends.start(wait(ctx, inst), func(ctx context.Context, cancel context.CancelFunc) bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.cancel = cancel
		return !f.dropped
	}, func(ctx context.Context) {
		resp, code := send(ctx, out)
		wc.release(bodyHeld)
		var held int64
		if code == codeOK {
			if err := wc.hold(int64(len(resp.Body))); err != nil {
				resp, code = nil, codeTooSmall // HTTP-response-body-size
			} else {
				held = int64(len(resp.Body))
			}
		}
		f.mu.Lock()
		f.completed, f.sent, f.code = true, resp, code
		if f.dropped {
			wc.release(held)
		} else {
			f.held = held
		}
		f.mu.Unlock()
		close(f.done)
	})
	if !ok { // the request's deadline passed waiting for a slot
		wc.release(bodyHeld)
		f.completed, f.code = true, codeTimeout
		close(f.done)
	}
}

// drop is the future's drop: its send is stopped if it still runs, and
// what its response holds is given back.
func (f *futureIncomingResponse) drop(wc *Context) {
	if b := f.body; f.pending != nil && b != nil {
		// Not sent yet (its body not finished): never sent, its body's
		// bytes given back, its later writes failed.
		f.pending, b.onFinish, f.body = nil, nil, nil
		b.take()
		b.sent = errWriter{errors.New("wasi:http: the request's future was dropped: it is not sent")}
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.completed && f.done != nil {
		f.dropped = true
		if f.cancel != nil {
			f.cancel()
		}
		return
	}
	wc.release(f.held)
	f.held = 0
}

// settle takes in the outcome of f's send, on the guest's goroutine, once
// it has come: the response (its body held already), or the error-code
// variant of its failure. False while the send runs.
func (f *futureIncomingResponse) settle() bool {
	if f.settled || f.done == nil {
		return true // failed before a send, or taken in already
	}
	select {
	case <-f.done:
	default:
		return false
	}
	f.settled = true
	if f.code != codeOK {
		f.failed = errorCode(f.code)
		return true
	}
	f.resp, f.sent = f.sent, nil
	return true
}

// MaxSends is how many outgoing requests of one call are in flight at
// once; handle waits for one of them to end to send another.
const MaxSends = 16

// sends are a call's outgoing requests in flight, each on a goroutine of
// its own, so that a component's requests overlap (Promise.all of
// fetches, a fan-out) as its interface lets them. The call's end (End)
// stops and waits for those still running: none outlives its request.
type sends struct {
	mu    sync.Mutex
	ctx   context.Context // the sends', stopped by End; made at the first
	stop  context.CancelFunc
	wg    sync.WaitGroup
	slots chan struct{} // MaxSends
	wake  chan struct{} // a send ended: one signal, for waitAny
}

// start takes a slot, waiting for one until wait (the request's deadline)
// is done (then false, nothing run), and runs fn, a send, on a goroutine
// of its own, with a context that ends with wait's, at End, or when its
// cancel, given to arm, is called; arm false (the future was dropped)
// runs nothing.
func (s *sends) start(wait context.Context, arm func(context.Context, context.CancelFunc) bool, fn func(context.Context)) bool {
	s.mu.Lock()
	if s.ctx == nil {
		s.ctx, s.stop = context.WithCancel(context.Background())
		s.slots, s.wake = make(chan struct{}, MaxSends), make(chan struct{}, 1)
	}
	ctx, slots := s.ctx, s.slots
	s.mu.Unlock()
	if wait.Err() != nil {
		return false
	}
	select {
	case slots <- struct{}{}:
	case <-wait.Done():
		return false
	case <-ctx.Done():
		return false
	}
	call, cancel := context.WithCancel(wait)
	stopWithEnd := context.AfterFunc(ctx, cancel)
	if !arm(call, cancel) {
		stopWithEnd()
		cancel()
		<-slots
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer stopWithEnd()
		defer cancel()
		fn(call)
		<-slots
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}()
	return true
}

// woken is a channel that receives when a send has ended since the last
// receive (nil, never, before the first send).
func (s *sends) woken() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

// End stops the sends still running and waits for them to return: the
// call they were made for is over.
func (c *Context) End() {
	s := &c.sends
	s.mu.Lock()
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
		s.wg.Wait()
	}
}

// refused gives back what r's body holds, r refused at handle (never
// sent): its later writes fail.
func (r *outgoingRequest) refused() {
	if b := r.body; b != nil {
		b.take()
		b.sent = errWriter{errors.New("wasi:http: the request was refused: it is not sent")}
	}
}

// errWriter fails every write with its error.
type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// methodOrScheme is the scheme variant of s.
func methodOrScheme(s string) cabi.VariantValue {
	switch s {
	case "http":
		return cabi.VariantValue{Case: 0}
	case "https":
		return cabi.VariantValue{Case: 1}
	}
	return cabi.VariantValue{Case: 2, Value: s}
}
