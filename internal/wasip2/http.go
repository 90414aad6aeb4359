package wasip2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/component"
)

// The host objects of wasi:http/types.
type (
	// fields are headers or trailers: names lowercased, values as sent.
	fields struct {
		names    []string
		values   [][]byte
		readOnly bool
		// Room for names and values of a short list (a response's
		// content-type, say): it takes no allocation of its own.
		nameRoom  [2]string
		valueRoom [2][]byte
		byteRoom  [32]byte // and for their values' bytes
	}
	// IncomingRequest is a request a component's handler is given.
	IncomingRequest struct {
		Method, PathWithQuery, Scheme, Authority string
		Header                                   http.Header
		// HeaderFunc, when Header is nil, makes the header the first time
		// the handler asks for it (incoming-request.headers): a handler
		// that never looks costs no header. Default nil: no fields.
		HeaderFunc func() http.Header
		Body       io.Reader
		// Trailer, called when Body is at its end, gives the request's
		// trailers (future-trailers.get); nil, or nil returned: none.
		Trailer  func() http.Header
		consumed bool
		// body is what consume gives, once: in place, not an allocation
		// of its own (so are its stream and trailers, and an outgoing
		// response's body and stream).
		body incomingBody
	}
	incomingBody struct {
		r        io.Reader
		trailer  func() http.Header
		stream   bool           // its stream was taken
		child    bool           // its stream lives
		in       inputStream    // what takeStream gives
		trailers futureTrailers // what finish gives
		// held is what an outgoing request's response body holds for the
		// component (Context.hold), given back when the body is dropped or
		// finished.
		held int64
	}
	// futureTrailers are a finished body's trailers, which come once what
	// the handler left unread of the body has been read (get).
	futureTrailers struct {
		body    io.Reader
		trailer func() http.Header
		err     error
		done    bool
	}
	// OutgoingResponse is what a handler answers.
	OutgoingResponse struct {
		Status  int
		headers *fields
		body    *outgoingBody
		sent    io.Writer    // where a streamed response's body goes, once sent
		ownBody outgoingBody // what takeBody gives
		wc      *Context     // whose held bytes its buffered body counts in
	}
	outgoingBody struct {
		buf      bytes.Buffer // what was written before the response was sent
		sent     io.Writer    // once the response was sent: where writes go
		written  int64
		max      int64
		finished bool
		taken    bool
		child    bool         // its stream lives
		trailers *fields      // given to finish
		out      outputStream // what takeStream gives
		wc       *Context     // whose held bytes the buffer counts in
		// failed is the first write refused (over max, or over what the
		// host may hold): the body is not what the handler meant.
		failed error
		// onFinish, when set, is called by finish: the request the body
		// belongs to was handed to outgoing-handler.handle before its
		// body was finished, and is sent now.
		onFinish func(context.Context)
	}
	// Streamer is where a streamed response goes: Send is given the
	// response as the handler sets it (its Status, its header through
	// AddHeader) and returns where its body goes, as the handler writes it.
	Streamer interface {
		// Send fails when the response may no longer be sent (its
		// request stopped): response-outparam.set traps.
		Send(r *OutgoingResponse) (io.Writer, error)
	}
	// ResponseOutparam receives the handler's response.
	ResponseOutparam struct {
		Response *OutgoingResponse
		Err      error
		// Stream, when set, streams the response: its Send is called when
		// the handler sets it. Default nil: the body is kept (Body).
		Stream Streamer
		set    bool
	}
)

// Header is the response's header, hop-by-hop fields included.
func (r *OutgoingResponse) Header() http.Header {
	h := make(http.Header, len(r.headers.names))
	r.AddHeader(h, nil)
	return h
}

// AddHeader sets the response's header fields in h, their names canonical
// (a name's values replace those h had), but those whose canonical name
// skip holds (nil: none). Common values (text/plain, …) are not copied.
func (r *OutgoingResponse) AddHeader(h http.Header, skip map[string]bool) {
	f := r.headers
	values := make([]string, len(f.names)) // one array for all
	var seen map[string]bool               // past a handful, repeated names are found in a map
	if len(f.names) > 16 {
		seen = make(map[string]bool, len(f.names))
	}
	for i, n := range f.names {
		k, ok := canonicalNames[n]
		if !ok {
			k = textproto.CanonicalMIMEHeaderKey(n)
		}
		if skip[k] {
			continue
		}
		v, ok := commonValues[string(f.values[i])]
		if !ok {
			v = string(f.values[i])
		}
		values[i] = v
		var repeated bool
		if seen != nil {
			repeated, seen[n] = seen[n], true
		} else {
			repeated = slices.Contains(f.names[:i], n)
		}
		if repeated {
			h[k] = append(h[k], v)
		} else {
			h[k] = values[i : i+1 : i+1]
		}
	}
}

// commonValues are common response fields' values, made once.
var commonValues = func() map[string]string {
	m := map[string]string{}
	for _, v := range []string{"text/plain", "text/plain; charset=utf-8", "text/html", "text/html; charset=utf-8",
		"application/json", "application/json; charset=utf-8", "application/octet-stream", "no-cache", "no-store",
		"nosniff", "*", "gzip"} {
		m[v] = v
	}
	return m
}()

// canonicalNames are common response fields' names, lowercase as fields
// keep them, in their canonical form: made once rather than per response;
// commonNames are the lowercase names themselves, which a guest's field
// named so (in any case) is given rather than a string of its own.
var canonicalNames, commonNames = func() (map[string]string, map[string]string) {
	canonical, common := map[string]string{}, map[string]string{}
	for _, k := range []string{"Content-Type", "Content-Length", "Cache-Control", "Content-Encoding",
		"Etag", "Last-Modified", "Location", "Set-Cookie", "Vary", "Server", "Date", "Expires",
		"Access-Control-Allow-Origin", "X-Content-Type-Options", "Content-Language", "Content-Disposition"} {
		lower := strings.ToLower(k)
		canonical[lower] = k
		common[lower], common[k] = lower, lower
	}
	return canonical, common
}()

// Body is the response's body as written, when it was not streamed.
func (r *OutgoingResponse) Body() []byte {
	if r.body == nil {
		return nil
	}
	return r.body.buf.Bytes()
}

// Write appends to the body: to the buffer until the response is sent,
// then to where it was sent; at most max bytes in all.
func (b *outgoingBody) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // nothing to send, even where no body may be (204, 304)
	}
	if b.written+int64(len(p)) > b.max {
		return 0, b.fail(fmt.Errorf("body over %d bytes", b.max))
	}
	if b.sent != nil {
		b.written += int64(len(p))
		return b.sent.Write(p)
	}
	if err := b.wc.hold(int64(len(p))); err != nil {
		return 0, b.fail(err)
	}
	b.written += int64(len(p))
	return b.buf.Write(p)
}

// fail keeps err as the body's failure, if it is the first, and returns
// it.
func (b *outgoingBody) fail(err error) error {
	if b.failed == nil {
		b.failed = err
	}
	return err
}

// take returns the bytes buffered and forgets them, no longer held.
func (b *outgoingBody) take() []byte {
	out := b.takeHeld()
	b.wc.release(int64(len(out)))
	return out
}

// takeHeld returns the bytes buffered and forgets them, still counted as
// held (an outgoing request's body, until its send ends).
func (b *outgoingBody) takeHeld() []byte {
	out := b.buf.Bytes()
	b.buf = bytes.Buffer{}
	return out
}

// Failed is the response body's first write that was refused (over
// MaxResponseBody, or more than the host may hold), nil if none: the body
// sent is not the one the handler wrote.
func (r *OutgoingResponse) Failed() error {
	if r.body == nil {
		return nil
	}
	return r.body.failed
}

// send streams r: its status and header now, the body written so far, and
// the rest as it comes.
func (r *OutgoingResponse) send(to Streamer) error {
	w, err := to.Send(r)
	if err != nil {
		return err
	}
	r.sent = w
	if r.body == nil {
		return nil // the body, when the handler takes it, writes there
	}
	r.body.sent = r.sent
	if r.body.buf.Len() == 0 {
		return nil // nothing written yet, and maybe nothing may be (204, 304)
	}
	_, err = r.sent.Write(r.body.take())
	return err
}

// Finished reports whether the response is whole: its body finished
// (outgoing-body.finish), or never taken, which makes it empty (as in
// wasmtime: response-outparam.set takes the response, so its body cannot
// be taken after).
func (r *OutgoingResponse) Finished() bool { return r.body == nil || r.body.finished }

// Trailer are the trailers the handler finished the body with, nil for
// none.
func (r *OutgoingResponse) Trailer() http.Header {
	if r.body == nil || r.body.trailers == nil || len(r.body.trailers.names) == 0 {
		return nil
	}
	h := http.Header{}
	for i, n := range r.body.trailers.names {
		h.Add(n, string(r.body.trailers.values[i]))
	}
	return h
}

// The operations of the handler's resources, which the HostFuncs below and
// the FlatFuncs of flat.go both do.

// errChildren is the error of finishing a body whose stream lives.
var errChildren = errors.New("resource has children (drop its stream first)")

// consume is incoming-request.consume: the body, once.
func (r *IncomingRequest) consume() (*incomingBody, bool) {
	if r.consumed {
		return nil, false
	}
	r.consumed = true
	body := r.Body
	if body == nil {
		body = strings.NewReader("")
	}
	r.body = incomingBody{r: body, trailer: r.Trailer}
	return &r.body, true
}

// takeStream is incoming-body.stream: the body's stream, once.
func (b *incomingBody) takeStream() (*inputStream, bool) {
	if b.stream {
		return nil, false
	}
	b.stream, b.child = true, true
	b.in = inputStream{r: b.r, parent: b}
	return &b.in, true
}

// finish is incoming-body.finish: the trailers to come.
func (b *incomingBody) finish() (*futureTrailers, error) {
	if b.child {
		return nil, errChildren
	}
	// finish takes the body's own handle: it is called once a body.
	b.trailers = futureTrailers{body: b.r, trailer: b.trailer}
	return &b.trailers, nil
}

// takeBody is outgoing-response.body: the body, once.
func (r *OutgoingResponse) takeBody() (*outgoingBody, bool) {
	if r.body != nil {
		return nil, false
	}
	r.ownBody = outgoingBody{max: MaxResponseBody, sent: r.sent, wc: r.wc}
	r.body = &r.ownBody
	return r.body, true
}

// takeStream is outgoing-body.write: the body's stream, once.
func (b *outgoingBody) takeStream() (*outputStream, bool) {
	if b.taken {
		return nil, false
	}
	b.taken, b.child = true, true
	b.out = outputStream{w: b, parent: b}
	return &b.out, true
}

// finish is outgoing-body.finish, with trailers (nil: none), in the
// context of the guest's call.
func (b *outgoingBody) finish(ctx context.Context, trailers *fields) error {
	if b.child {
		return errChildren
	}
	if n := trailers.size(); n > MaxHeaderBytes {
		return fmt.Errorf("the trailer fields take %d bytes, more than %d", n, MaxHeaderBytes)
	}
	b.trailers, b.finished = trailers, true
	if f := b.onFinish; f != nil {
		b.onFinish = nil
		f(ctx)
	}
	return nil
}

// setResponse is response-outparam.set with a response: streamed at once
// when the outparam says where.
func (o *ResponseOutparam) setResponse(r *OutgoingResponse) error {
	if r.Status < 200 || r.Status > 599 {
		// Informational heads are the server's to send, before a final
		// one; past 599 is no HTTP status.
		return fmt.Errorf("the response's status code %d is not a final response's (200 to 599)", r.Status)
	}
	if n := r.headers.size(); n > MaxHeaderBytes {
		return fmt.Errorf("the response's header fields take %d bytes, more than %d", n, MaxHeaderBytes)
	}
	if err := o.setOnce(); err != nil {
		return err
	}
	o.Response = r
	if o.Stream != nil {
		return r.send(o.Stream)
	}
	return nil
}

// setError is response-outparam.set with error-code case code.
func (o *ResponseOutparam) setError(code uint32) error {
	if err := o.setOnce(); err != nil {
		return err
	}
	o.Err = fmt.Errorf("the handler answered with error-code case %d", code)
	return nil
}

func (o *ResponseOutparam) setOnce() error {
	if o.set {
		return errors.New("response-outparam.set called twice")
	}
	o.set = true
	return nil
}

// Set reports whether the handler called response-outparam.set.
func (o *ResponseOutparam) Set() bool { return o.set }

// MaxResponseBody bounds a handler's response body.
const MaxResponseBody = 32 << 20

var methods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

func methodValue(m string) cabi.VariantValue {
	for i, name := range methods {
		if m == name {
			return cabi.VariantValue{Case: uint32(i)}
		}
	}
	return cabi.VariantValue{Case: uint32(len(methods)), Value: m}
}

func some(v any) cabi.VariantValue { return cabi.VariantValue{Case: 1, Value: v} }

var none any = cabi.VariantValue{Case: 0} // boxed once, as okUnit

func ok(v any) any {
	if v == nil {
		return okUnit
	}
	return cabi.VariantValue{Case: 0, Value: v}
}

// okUnit is ok(nil), boxed once: a host function's common answer.
var okUnit any = cabi.VariantValue{Case: 0}

var errUnit any = cabi.VariantValue{Case: 1} // boxed once, as okUnit

// header-error cases.
const (
	headerInvalidSyntax = 0
	headerForbidden     = 1
	headerImmutable     = 2
)

func headerErr(c uint32) cabi.VariantValue {
	return cabi.VariantValue{Case: 1, Value: cabi.VariantValue{Case: c}}
}

func object[T any](inst *component.Instance, rep any) (T, error) {
	v, ok := inst.Object(rep.(uint32)).(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("wasi:http: handle of rep %d is not a %T", rep, zero)
	}
	return v, nil
}

// method adapts fn, a method of the host object T, to a HostFunc whose
// first argument is the object's handle; fn gets all the arguments, that
// handle first, and returns the one result.
func method[T any](fn func(T, *component.Instance, []any) any) component.HostFunc {
	return func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		v, err := object[T](inst, args[0])
		if err != nil {
			return nil, err
		}
		return fn(v, inst, args), nil
	}
}

// optionString is the Go value of an option<string>: "" for none.
func optionString(v any) string {
	if o := v.(cabi.VariantValue); o.Case == 1 {
		return o.Value.(string)
	}
	return ""
}

// readOnlyFields are h's fields, names in lower case, immutable to the
// component (a request's or a response's headers).
func readOnlyFields(h http.Header) *fields {
	f := &fields{readOnly: true}
	for name, vs := range h {
		for _, v := range vs {
			f.names, f.values = append(f.names, strings.ToLower(name)), append(f.values, []byte(v))
		}
	}
	return f
}

// MaxHeaderBytes is the most a response's header fields may take, each a
// name, a value, ": " and CRLF: a module's (wasi.MaxHeaderBytes).
const MaxHeaderBytes = 64 << 10

// size is what f's fields take in a message head (nil: none).
func (f *fields) size() int {
	if f == nil {
		return 0
	}
	n := 0
	for i, name := range f.names {
		n += len(name) + len(f.values[i]) + 4
	}
	return n
}

// view is f as the immutable child handle that outgoing-request.headers
// and outgoing-response.headers give (WASI 0.2: set, append and delete
// fail with header-error.immutable, as wasmtime's do): the fields a
// request or response was made with, which nothing changes after.
func (f *fields) view() *fields {
	return &fields{names: f.names, values: f.values, readOnly: true}
}

func (f *fields) clone() *fields {
	return &fields{names: append([]string(nil), f.names...), values: append([][]byte(nil), f.values...)}
}

func (f *fields) del(name string) {
	n := 0
	for i := range f.names {
		if f.names[i] != name {
			f.names[n], f.values[n] = f.names[i], f.values[i]
			n++
		}
	}
	f.names, f.values = f.names[:n], f.values[:n]
}

// forbidden are the fields a component may not set, as wasmtime's
// DEFAULT_FORBIDDEN_HEADERS: the host frames the message and owns the
// connection, so framing and hop-by-hop fields are its own.
var forbidden = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-authenticate": true, "proxy-authorization": true,
	"proxy-connection": true, "transfer-encoding": true, "upgrade": true, "host": true, "http2-settings": true,
}

// checkField is the header-error for a field a component gives (name in
// lower case), or ok.
func checkField(name string, value []byte) (cabi.VariantValue, bool) {
	switch {
	case !validField(name, value):
		return headerErr(headerInvalidSyntax), false
	case forbidden[name]:
		return headerErr(headerForbidden), false
	}
	return cabi.VariantValue{}, true
}

func validField(name string, value []byte) bool {
	return httpguts.ValidHeaderFieldName(name) && httpguts.ValidHeaderFieldValue(string(value))
}

// addHTTP adds wasi:http/types to h: requests in, responses out.
func addHTTP(h *component.Host) {
	const types = "wasi:http/types@0.2"
	add := func(fn string, f component.HostFunc) { h.Funcs[types+"#"+fn] = f }
	add("[constructor]fields", func(_ context.Context, inst *component.Instance, _ []any) (any, error) {
		return inst.NewObject(&fields{}), nil
	})
	add("[static]fields.from-list", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		f := &fields{}
		for _, e := range args[0].([]any) {
			kv := e.([]any)
			name, value := strings.ToLower(kv[0].(string)), kv[1].([]byte)
			if e, good := checkField(name, value); !good {
				return e, nil
			}
			if err := wctx(inst).holdField(name, value); err != nil {
				return nil, err
			}
			f.names, f.values = append(f.names, name), append(f.values, value)
		}
		return ok(inst.NewObject(f)), nil
	})
	add("[method]fields.get", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		f, err := object[*fields](inst, args[0])
		if err != nil {
			return nil, err
		}
		name, out := strings.ToLower(args[1].(string)), []any{}
		for i, n := range f.names {
			if n == name {
				out = append(out, f.values[i])
			}
		}
		return out, nil
	})
	add("[method]fields.has", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		f, err := object[*fields](inst, args[0])
		if err != nil {
			return nil, err
		}
		name := strings.ToLower(args[1].(string))
		for _, n := range f.names {
			if n == name {
				return true, nil
			}
		}
		return false, nil
	})
	mutate := func(fn func(f *fields, name string, args []any) (cabi.VariantValue, bool)) component.HostFunc {
		return func(_ context.Context, inst *component.Instance, args []any) (any, error) {
			f, err := object[*fields](inst, args[0])
			if err != nil {
				return nil, err
			}
			if f.readOnly {
				return headerErr(headerImmutable), nil
			}
			name := strings.ToLower(args[1].(string))
			if e, good := checkField(name, nil); !good {
				return e, nil
			}
			// A field's value as given to set or append.
			wc := wctx(inst)
			if len(args) > 2 {
				values, list := args[2].([]any) // set's list, or append's one value
				if !list {
					values = []any{args[2]}
				}
				for _, v := range values {
					if err := wc.holdField(name, v.([]byte)); err != nil {
						return nil, err
					}
				}
			}
			if v, done := fn(f, name, args); done {
				return v, nil
			}
			return ok(nil), nil
		}
	}
	add("[method]fields.set", mutate(func(f *fields, name string, args []any) (cabi.VariantValue, bool) {
		for _, v := range args[2].([]any) {
			if e, good := checkField(name, v.([]byte)); !good {
				return e, true
			}
		}
		f.del(name)
		for _, v := range args[2].([]any) {
			f.names, f.values = append(f.names, name), append(f.values, v.([]byte))
		}
		return cabi.VariantValue{}, false
	}))
	add("[method]fields.delete", mutate(func(f *fields, name string, _ []any) (cabi.VariantValue, bool) {
		f.del(name)
		return cabi.VariantValue{}, false
	}))
	add("[method]fields.append", mutate(func(f *fields, name string, args []any) (cabi.VariantValue, bool) {
		if e, good := checkField(name, args[2].([]byte)); !good {
			return e, true
		}
		f.names, f.values = append(f.names, name), append(f.values, args[2].([]byte))
		return cabi.VariantValue{}, false
	}))
	add("[method]fields.entries", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		f, err := object[*fields](inst, args[0])
		if err != nil {
			return nil, err
		}
		out := make([]any, len(f.names))
		for i := range f.names {
			out[i] = []any{f.names[i], f.values[i]}
		}
		return out, nil
	})
	add("[method]fields.clone", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		f, err := object[*fields](inst, args[0])
		if err != nil {
			return nil, err
		}
		if err := wctx(inst).hold(int64(len(f.names)) * fieldOverhead); err != nil {
			return nil, err
		}
		return inst.NewObject(f.clone()), nil
	})
	request := method[*IncomingRequest]
	add("[method]incoming-request.method", request(func(r *IncomingRequest, _ *component.Instance, _ []any) any { return methodValue(r.Method) }))
	add("[method]incoming-request.path-with-query", request(func(r *IncomingRequest, _ *component.Instance, _ []any) any { return some(r.PathWithQuery) }))
	add("[method]incoming-request.scheme", request(func(r *IncomingRequest, _ *component.Instance, _ []any) any {
		return some(methodOrScheme(r.Scheme))
	}))
	add("[method]incoming-request.authority", request(func(r *IncomingRequest, _ *component.Instance, _ []any) any { return some(r.Authority) }))
	add("[method]incoming-request.headers", request(func(r *IncomingRequest, inst *component.Instance, _ []any) any {
		if r.Header == nil && r.HeaderFunc != nil {
			r.Header, r.HeaderFunc = r.HeaderFunc(), nil
		}
		return inst.NewObject(readOnlyFields(r.Header))
	}))
	add("[method]incoming-request.consume", request(func(r *IncomingRequest, inst *component.Instance, _ []any) any {
		if b, got := r.consume(); got {
			return ok(inst.NewObject(b))
		}
		return errUnit
	}))
	add("[method]incoming-body.stream", method(func(b *incomingBody, inst *component.Instance, _ []any) any {
		if s, got := b.takeStream(); got {
			return ok(inst.NewObject(s))
		}
		return errUnit
	}))
	add("[static]incoming-body.finish", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		b, err := object[*incomingBody](inst, args[0])
		if err != nil {
			return nil, err
		}
		f, err := b.finish()
		if err != nil {
			return nil, fmt.Errorf("wasi:http: incoming-body.finish: %w", err)
		}
		wctx(inst).release(b.held)
		b.held = 0
		return inst.NewObject(f), nil
	})
	h.Drops[types+"#incoming-body"] = func(inst *component.Instance, rep uint32) {
		if b, ok := inst.Object(rep).(*incomingBody); ok {
			wctx(inst).release(b.held)
			b.held = 0
		}
	}
	add("[method]future-trailers.subscribe", func(_ context.Context, inst *component.Instance, _ []any) (any, error) {
		return inst.NewObject(&pollable{}), nil
	})
	// The trailers come after the body: what the handler left unread of
	// it is read first (within the request's limits, as the handler's
	// reads are), so get answers once it is.
	add("[method]future-trailers.get", method(func(f *futureTrailers, inst *component.Instance, _ []any) any {
		if !f.done {
			f.done = true
			if _, err := io.Copy(io.Discard, f.body); err != nil {
				f.err = err
			}
		}
		if f.err != nil {
			return some(ok(cabi.VariantValue{Case: 1, Value: cabi.VariantValue{Case: errInternal, Value: some(f.err.Error())}}))
		}
		var trailer http.Header
		if f.trailer != nil {
			trailer = f.trailer()
		}
		if len(trailer) == 0 {
			return some(ok(ok(none)))
		}
		return some(ok(ok(some(inst.NewObject(readOnlyFields(trailer))))))
	}))
	add("[constructor]outgoing-response", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		h, err := object[*fields](inst, args[0])
		if err != nil {
			return nil, err
		}
		inst.DropObject(args[0].(uint32)) // the response owns the headers now
		return inst.NewObject(wctx(inst).newResponse(h)), nil
	})
	add("[method]outgoing-response.status-code", method(func(r *OutgoingResponse, _ *component.Instance, _ []any) any { return uint16(r.Status) }))
	add("[method]outgoing-response.set-status-code", method(func(r *OutgoingResponse, _ *component.Instance, args []any) any {
		s := args[1].(uint16)
		if s < 100 || s > 999 {
			return errUnit
		}
		r.Status = int(s)
		return ok(nil)
	}))
	add("[method]outgoing-response.headers", method(func(r *OutgoingResponse, inst *component.Instance, _ []any) any {
		return inst.NewObject(r.headers.view())
	}))
	add("[method]outgoing-response.body", method(func(r *OutgoingResponse, inst *component.Instance, _ []any) any {
		if b, got := r.takeBody(); got {
			return ok(inst.NewObject(b))
		}
		return errUnit
	}))
	add("[method]outgoing-body.write", method(func(b *outgoingBody, inst *component.Instance, _ []any) any {
		if s, got := b.takeStream(); got {
			return ok(inst.NewObject(s))
		}
		return errUnit
	}))
	add("[static]outgoing-body.finish", func(ctx context.Context, inst *component.Instance, args []any) (any, error) {
		b, err := object[*outgoingBody](inst, args[0])
		if err != nil {
			return nil, err
		}
		var trailers *fields
		if t := args[1].(cabi.VariantValue); t.Case == 1 {
			if trailers, err = object[*fields](inst, t.Value); err != nil {
				return nil, err
			}
			inst.DropObject(t.Value.(uint32)) // the body owns the trailers now
		}
		if err := b.finish(ctx, trailers); err != nil {
			return nil, fmt.Errorf("wasi:http: outgoing-body.finish: %w", err)
		}
		return ok(nil), nil
	})
	add("[static]response-outparam.set", func(_ context.Context, inst *component.Instance, args []any) (any, error) {
		o, err := object[*ResponseOutparam](inst, args[0])
		if err != nil {
			return nil, err
		}
		if v := args[1].(cabi.VariantValue); v.Case == 1 {
			err = o.setError(v.Value.(cabi.VariantValue).Case)
		} else if r, rerr := object[*OutgoingResponse](inst, v.Value); rerr != nil {
			err = rerr
		} else {
			err = o.setResponse(r)
		}
		if err != nil {
			return nil, fmt.Errorf("wasi:http: %w", err)
		}
		return nil, nil
	})
	h.Drops[types+"#outgoing-body"] = func(*component.Instance, uint32) {}
}
