package host

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmesh/wasmesh/wasi"
)

// ImportModule is the name of the host module guests import wasmesh's
// functions from. docs/abi.md describes each function.
const ImportModule = "wasmesh"

// MaxLogMessage is how much of a message the guest's log function keeps
// (as much as the stderr a run keeps); the rest is counted, not copied.
const MaxLogMessage = 16 << 10

// Result codes of the wasmesh host functions, as the guest sees them.
const (
	CodeOK          = 0 // success
	CodeTooSmall    = 1 // the output did not fit the guest's buffer; the size needed was written
	CodeDenied      = 2 // the target is not in the service's outbound allow-list
	CodeInvalid     = 3 // a malformed argument, or a pointer outside the guest's memory
	CodeUnavailable = 4 // the target could not be reached
	CodeTimeout     = 5 // the call's deadline passed
	CodeInternal    = 6 // anything else
)

// Codes an Imports' HTTPCall may return for CodeUnavailable or CodeTimeout
// with its cause, for a component's error-code (DNS-error, loop-detected,
// connection-read-timeout); a module's http_call gets CodeUnavailable or
// CodeTimeout for them.
const (
	CodeUnavailableDNS  = 16 // the target's name did not resolve
	CodeUnavailableLoop = 17 // more wasmesh:// hops than a chain may have
	CodeTimeoutHead     = 18 // CodeTimeout: no response head within OutboundRequest.HeadTimeout
)

// Imports implements the wasmesh host functions. The engine calls them with
// the context given to Run, so an implementation finds the request it serves
// there.
type Imports interface {
	// TraceContext returns the W3C traceparent and tracestate of the span
	// running the guest, "" outside a trace, and the W3C baggage its calls
	// carry (the request's lane is a member of it), "" for none.
	TraceContext(ctx context.Context) (traceparent, tracestate, baggage string)
	// Log records a guest's log line; level is 0 debug, 1 info, 2 warn, 3 error.
	Log(ctx context.Context, level int, msg string)
	// HTTPCall performs a guest's outbound request and returns the response
	// with CodeOK, or another code (CodeTooSmall with a nil response: larger
	// than the host accepts). The engine decodes the request from the
	// guest's memory (wasi.ParseOutboundRequest) and encodes the response
	// for it (wasi.EncodeOutboundResponse); when the guest's bytes do not
	// decode, req is nil and malformed says why.
	HTTPCall(ctx context.Context, req *wasi.OutboundRequest, malformed error) (resp *wasi.OutboundResponse, code int)
}

// noImports serves guests run outside a gateway: no trace, logs to slog,
// no outbound calls.
type noImports struct{}

func (noImports) TraceContext(context.Context) (string, string, string) { return "", "", "" }
func (noImports) Log(ctx context.Context, level int, msg string) {
	slog.Log(ctx, slog.Level((level-1)*4), msg, "guest", true)
}
func (noImports) HTTPCall(context.Context, *wasi.OutboundRequest, error) (*wasi.OutboundResponse, int) {
	return nil, CodeDenied
}

var i32 = api.ValueTypeI32

// warmGuard keeps Engine.Warm's synthetic run away from imp: no trace, no
// log, every call refused.
type warmGuard struct{ imp Imports }

func (w warmGuard) TraceContext(ctx context.Context) (string, string, string) {
	if runOf(ctx).warm {
		return "", "", ""
	}
	return w.imp.TraceContext(ctx)
}

func (w warmGuard) Log(ctx context.Context, level int, msg string) {
	if !runOf(ctx).warm {
		w.imp.Log(ctx, level, msg)
	}
}

func (w warmGuard) HTTPCall(ctx context.Context, req *wasi.OutboundRequest, malformed error) (*wasi.OutboundResponse, int) {
	if runOf(ctx).warm {
		return nil, CodeDenied
	}
	return w.imp.HTTPCall(ctx, req, malformed)
}

// instantiateImports builds the "wasmesh" host module over imp.
func instantiateImports(ctx context.Context, rt wazero.Runtime, imp Imports) error {
	imp = warmGuard{imp}
	b := rt.NewHostModuleBuilder(ImportModule)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			tp, ts, bg := imp.TraceContext(ctx)
			out := tp + "\n" + ts
			if bg != "" { // a third line only then: two-line readers are unaffected otherwise
				out += "\n" + bg
			}
			stack[0] = uint64(writeOut(m, []byte(out), api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])))
		}), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("buf", "cap", "len_out").
		Export("trace_context")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			level := int(api.DecodeI32(stack[0])) // the log: MaxLogMessage bytes of each message kept
			msg, ok := m.Memory().Read(api.DecodeU32(stack[1]), api.DecodeU32(stack[2]))
			if !ok || level < 0 || level > 3 {
				stack[0] = CodeInvalid
				return
			}
			if len(msg) > MaxLogMessage { // the rest is not copied out of the guest's memory
				imp.Log(ctx, level, fmt.Sprintf("%s… (%d bytes more, cut at %d)", msg[:MaxLogMessage], len(msg)-MaxLogMessage, MaxLogMessage))
			} else {
				imp.Log(ctx, level, string(msg))
			}
			stack[0] = CodeOK
		}), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("level", "msg", "msg_len").
		Export("log")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			raw, ok := m.Memory().Read(api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
			if !ok || !writable(m, api.DecodeU32(stack[2]), api.DecodeU32(stack[3])) || !writable(m, api.DecodeU32(stack[4]), 4) {
				// Checked before the call is sent: a call made (a POST
				// run) and then answered INVALID would mislead the guest.
				stack[0] = CodeInvalid
				return
			}
			// A copy: the guest's memory may move while the call waits.
			req, malformed := wasi.ParseOutboundRequest(append([]byte(nil), raw...))
			resp, code := imp.HTTPCall(runOf(ctx).hostContext(ctx), req, malformed)
			if code == CodeTooSmall && resp == nil {
				// Larger than the host accepts: no buffer would do.
				m.Memory().WriteUint32Le(api.DecodeU32(stack[4]), 0xffffffff)
			}
			switch code { // the module ABI's codes
			case CodeUnavailableDNS, CodeUnavailableLoop:
				code = CodeUnavailable
			case CodeTimeoutHead:
				code = CodeTimeout
			}
			if code != CodeOK {
				stack[0] = uint64(code)
				return
			}
			out := wasi.EncodeOutboundResponse(resp.Status, resp.Header, resp.Body)
			stack[0] = uint64(writeOut(m, out, api.DecodeU32(stack[2]), api.DecodeU32(stack[3]), api.DecodeU32(stack[4])))
		}), []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("req", "req_len", "resp", "resp_cap", "resp_len_out").
		Export("http_call")
	_, err := b.Instantiate(ctx)
	return err
}

// writable reports whether the guest's memory has the n bytes at off (its
// memory does not shrink: a range there now is there after a call).
func writable(m api.Module, off, n uint32) bool {
	if n == 0 {
		return true
	}
	_, ok := m.Memory().Read(off, n)
	return ok
}

// writeOut writes data to the guest's buf of cap bytes and its length to
// lenOut: CodeTooSmall (with the length) when it does not fit.
func writeOut(m api.Module, data []byte, buf, cap, lenOut uint32) int {
	mem := m.Memory()
	if !mem.WriteUint32Le(lenOut, uint32(len(data))) {
		return CodeInvalid
	}
	if uint32(len(data)) > cap {
		return CodeTooSmall
	}
	if !mem.Write(buf, data) {
		return CodeInvalid
	}
	return CodeOK
}
