// Package wasmesh wraps the wasmesh host functions (import module "wasmesh")
// for Go guests built with GOOS=wasip1 GOARCH=wasm.
//
// Dependency-free (no fmt, to keep binaries small); copy this directory into
// a guest module. All imports take and return i32; pointers are offsets into
// the guest's linear memory and u32 values written by the host are
// little-endian (wasm's byte order), so *uint32 is the right type. Go's heap
// lives in linear memory and does not move, so passing pointers is safe.
//
//	TraceContext() (traceparent, tracestate)   both "" outside a request
//	Log(level, msg) error
//	HTTPCall(method, url, headers, body) (*Response, error)
package wasmesh

import (
	"strconv"
	"strings"
	"unsafe"
)

//go:wasmimport wasmesh trace_context
//go:noescape
func traceContext(buf unsafe.Pointer, cap uint32, lenOut *uint32) int32

//go:wasmimport wasmesh log
//go:noescape
func hostLog(level int32, msg unsafe.Pointer, msgLen uint32) int32

//go:wasmimport wasmesh http_call
//go:noescape
func httpCall(req unsafe.Pointer, reqLen uint32, resp unsafe.Pointer, respCap uint32, respLenOut *uint32) int32

// Code is a non-zero return code of a host function; it is an error.
type Code int32

const (
	ErrTooSmall    Code = 1
	ErrDenied      Code = 2
	ErrInvalid     Code = 3
	ErrUnavailable Code = 4
	ErrTimeout     Code = 5
	ErrInternal    Code = 6
)

// Name is the ABI's name of the code: "TOO_SMALL", "DENIED", ..., or "UNKNOWN".
func (c Code) Name() string {
	switch c {
	case ErrTooSmall:
		return "TOO_SMALL"
	case ErrDenied:
		return "DENIED"
	case ErrInvalid:
		return "INVALID"
	case ErrUnavailable:
		return "UNAVAILABLE"
	case ErrTimeout:
		return "TIMEOUT"
	case ErrInternal:
		return "INTERNAL"
	}
	return "UNKNOWN"
}

// Error returns e.g. "DENIED (2)".
func (c Code) Error() string { return c.Name() + " (" + strconv.Itoa(int(c)) + ")" }

// TraceContext returns the current request's W3C trace context. Both are
// empty outside a request (e.g. when run from the CLI).
func TraceContext() (traceparent, tracestate string) {
	lines := traceLines()
	return lines[0], lines[1]
}

// Baggage returns the W3C baggage the host sends with this request's calls,
// "" for none. Its member wasmesh-lane is the request's traffic lane.
func Baggage() string { return traceLines()[2] }

// traceLines is trace_context's output: traceparent, tracestate and, when
// the request has any, its baggage, one per line.
func traceLines() [3]string {
	var lines [3]string
	// traceparent is 55 bytes, tracestate at most 512 by the W3C spec; retry
	// with whatever size the host asks for.
	buf := make([]byte, 256)
	for {
		var n uint32
		rc := traceContext(unsafe.Pointer(&buf[0]), uint32(len(buf)), &n)
		if rc == int32(ErrTooSmall) && int(n) > len(buf) {
			buf = make([]byte, n)
			continue
		}
		if rc != 0 {
			return lines
		}
		copy(lines[:], strings.SplitN(string(buf[:min(int(n), len(buf))]), "\n", 3))
		return lines
	}
}

// Level is a log level.
type Level int32

const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// Log logs msg; the host adds service, version, request id and trace id.
func Log(level Level, msg string) error {
	if rc := hostLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg))); rc != 0 {
		return Code(rc)
	}
	return nil
}

// Header is one header line.
type Header struct{ Name, Value string }

// Response is an HTTP response; any status, 4xx and 5xx included.
type Response struct {
	Status int
	Header []Header
	Body   []byte
}

// Get returns the first header named name (case-insensitive), or "".
func (r *Response) Get(name string) string {
	for _, h := range r.Header {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// MaxResponse is the largest response HTTPCall accepts (the host answers
// TOO_SMALL beyond it, and discards the response).
const MaxResponse = 1 << 20

// HTTPCall makes an HTTP request through the host. url is
// "wasmesh://SERVICE/path?query" (another service of this gateway) or
// "http://..."/"https://..." (subject to the service's outbound allow-list).
// The host adds traceparent/tracestate. Errors are Codes.
//
// ErrInvalid without calling the host if method, url or a header contains
// CR or LF (it would end the line early) or a header name contains ':'.
func HTTPCall(method, url string, headers []Header, body []byte) (*Response, error) {
	const crlf = "\r\n"
	if method == "" || strings.ContainsAny(method, crlf+" ") || url == "" || strings.ContainsAny(url, crlf) {
		return nil, ErrInvalid
	}
	req := make([]byte, 0, len(method)+len(url)+3+len(body)+64*len(headers))
	req = append(append(append(append(req, method...), ' '), url...), '\n')
	for _, h := range headers {
		if h.Name == "" || strings.ContainsAny(h.Name, crlf+":") || strings.ContainsAny(h.Value, crlf) {
			return nil, ErrInvalid
		}
		req = append(append(append(append(req, h.Name...), ": "...), h.Value...), '\n')
	}
	req = append(req, '\n')
	req = append(req, body...)

	resp := make([]byte, MaxResponse)
	var n uint32
	if rc := httpCall(unsafe.Pointer(&req[0]), uint32(len(req)), unsafe.Pointer(&resp[0]), uint32(len(resp)), &n); rc != 0 {
		return nil, Code(rc)
	}
	r, ok := parseResponse(resp[:min(int(n), len(resp))])
	if !ok {
		return nil, ErrInternal
	}
	return r, nil
}

// parseResponse parses "<STATUS>\n" (3 digits), "Name: value\n"..., "\n", body.
func parseResponse(raw []byte) (*Response, bool) {
	if len(raw) < 4 || raw[3] != '\n' {
		return nil, false
	}
	status := 0
	for _, d := range raw[:3] {
		if d < '0' || d > '9' {
			return nil, false
		}
		status = status*10 + int(d-'0')
	}
	r := &Response{Status: status}
	rest := raw[4:]
	for {
		i := indexByte(rest, '\n')
		if i < 0 {
			return nil, false
		}
		line := string(rest[:i])
		rest = rest[i+1:]
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, false
		}
		r.Header = append(r.Header, Header{name, strings.TrimLeft(value, " \t")})
	}
	// Copy the body out so the 1 MiB buffer can be collected.
	r.Body = append([]byte(nil), rest...)
	return r, true
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
