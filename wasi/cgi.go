package wasi

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// Meta is what the gateway knows about a request beyond the request itself.
type Meta struct {
	// PathInfo is the path the guest sees (after any strip_prefix).
	PathInfo string
	// ScriptName is the prefix stripped from the path, "" when none.
	ScriptName string
	// Route is the name of the matched route (X_MATCHED_ROUTE).
	Route string
	// Version is the digest of the version serving the request (X_WASMESH_VERSION).
	Version string
	// RequestID is the request's id (X_REQUEST_ID).
	RequestID string
	// PeerID is the SPIFFE ID of an mTLS peer (X_SPIFFE_PEER_ID), "" without mTLS.
	PeerID string
	// Lane is the request's traffic lane (X_WASMESH_LANE), "" for none.
	Lane string
	// Trace is the trace context the guest runs in: HTTP_TRACEPARENT and
	// HTTP_TRACESTATE say it, in place of the request's fields of those
	// names (the client's, or what the gateway refused of them). Zero (no
	// trace id): the request's fields, as they are.
	Trace TraceContext
}

// TraceContext is a W3C trace context.
type TraceContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
	State   string // the tracestate field, "" for none
}

// RequestEnv returns the CGI environment ("KEY=VALUE") for r, in the spirit of
// RFC 3875 and WAGI: REQUEST_METHOD, PATH_INFO, QUERY_STRING, SERVER_NAME,
// CONTENT_TYPE, CONTENT_LENGTH and friends, one HTTP_<NAME> per request header
// (values of a repeated header joined by ", "; not for Content-Type,
// Content-Length and Proxy, see skipHeaderVar), and the wasmesh variables
// X_MATCHED_ROUTE, X_WASMESH_VERSION, X_REQUEST_ID, X_SPIFFE_PEER_ID and
// X_WASMESH_LANE.
//
// Headers whose names contain anything but letters, digits and '-' are dropped:
// "X-User" and "X_User" would otherwise both become HTTP_X_USER, letting a
// client shadow a header set by a trusted proxy (nginx does the same).
// The result is sorted by name so that guests see a deterministic environment.
func RequestEnv(r *http.Request, m Meta) []string {
	return new(EnvBuffer).RequestEnv(r, m)
}

// EnvBuffer holds request environments for reuse: the strings its
// RequestEnv returns are slices of its buffer, valid until its next call.
// The zero value is ready to use.
type EnvBuffer struct {
	buf  []byte
	vars []string
	ends []int
}

// RequestEnv is the package's RequestEnv, built in b.
func (b *EnvBuffer) RequestEnv(r *http.Request, m Meta) []string {
	// One buffer holds every variable and the strings are slices of it:
	// no allocation once b has grown to the requests it serves, instead of
	// one per variable. A request's environment is built on every request.
	host, port := splitHostPort(r.Host)
	size := 256 + len(m.PathInfo) + len(m.ScriptName) + 2*len(r.URL.RawQuery) + len(r.URL.Path) + 2*len(r.Host) +
		len(m.Route) + len(m.Version) + len(m.RequestID) + 2*len(m.PeerID) + len(m.Lane) + len(r.RemoteAddr) +
		128 + len(m.Trace.State)
	for name, values := range r.Header {
		size += len("HTTP_=") + len(name)
		for _, v := range values {
			size += len(v) + len(", ")
		}
	}
	if cap(b.buf) < size {
		b.buf = make([]byte, 0, size)
	}
	e := envBuilder{buf: b.buf[:0], ends: b.ends[:0]}
	// In sorted order as they are added, but for the HTTP_ group (the
	// headers' variables and HTTP_HOST), which is sorted on its own: it
	// falls between GATEWAY_INTERFACE and PATH_INFO.
	if r.ContentLength >= 0 {
		e.start()
		e.buf = append(e.buf, "CONTENT_LENGTH="...)
		e.buf = strconv.AppendInt(e.buf, r.ContentLength, 10)
		e.end()
	}
	if ct := r.Header["Content-Type"]; len(ct) > 0 && ct[0] != "" {
		e.add("CONTENT_TYPE=", ct[0])
	}
	e.add("GATEWAY_INTERFACE=", "CGI/1.1")
	httpFrom := len(e.ends)
	e.add("HTTP_HOST=", r.Host)
	traced := m.Trace.TraceID != [16]byte{}
	for name, values := range r.Header {
		e.start()
		if !e.headerVar(name) || traced && traceVar[string(e.buf[e.begin:len(e.buf)-1])] {
			e.drop()
			continue
		}
		for i, v := range values {
			if i > 0 {
				e.buf = append(e.buf, ", "...)
			}
			e.buf = append(e.buf, v...)
		}
		e.end()
	}
	if traced {
		t := &m.Trace
		e.start()
		e.buf = append(e.buf, "HTTP_TRACEPARENT=00-"...)
		e.buf = hex.AppendEncode(e.buf, t.TraceID[:])
		e.buf = append(e.buf, '-')
		e.buf = hex.AppendEncode(e.buf, t.SpanID[:])
		e.buf = append(e.buf, '-')
		e.buf = hex.AppendEncode(e.buf, []byte{t.Flags})
		e.end()
		if t.State != "" {
			e.add("HTTP_TRACESTATE=", t.State)
		}
	}
	if m.PeerID != "" { // the handshake's, as a component's X-Spiffe-Peer-Id field; none a client sends
		e.add("HTTP_X_SPIFFE_PEER_ID=", m.PeerID)
	}
	httpTo := len(e.ends)
	e.add("PATH_INFO=", m.PathInfo)
	e.add("QUERY_STRING=", r.URL.RawQuery)
	e.add("REMOTE_ADDR=", remoteIP(r.RemoteAddr))
	e.add("REQUEST_METHOD=", r.Method)
	e.add("REQUEST_URI=", r.URL.RequestURI())
	e.add("SCRIPT_NAME=", m.ScriptName)
	e.add("SERVER_NAME=", host)
	e.add("SERVER_PORT=", port)
	e.add("SERVER_PROTOCOL=", r.Proto)
	e.add("SERVER_SOFTWARE=", "wasmesh")
	e.add("X_MATCHED_ROUTE=", m.Route)
	e.add("X_REQUEST_ID=", m.RequestID)
	if m.PeerID != "" {
		e.add("X_SPIFFE_PEER_ID=", m.PeerID)
	}
	if m.Lane != "" {
		e.add("X_WASMESH_LANE=", m.Lane)
	}
	e.add("X_WASMESH_VERSION=", m.Version)
	b.buf, b.ends = e.buf, e.ends
	b.vars = e.strings(b.vars[:0])
	slices.Sort(b.vars[httpFrom:httpTo])
	return b.vars
}

// envBuilder appends variables to one buffer, remembering where each ends.
type envBuilder struct {
	buf   []byte
	ends  []int
	begin int
}

func (e *envBuilder) start() { e.begin = len(e.buf) }
func (e *envBuilder) end()   { e.ends = append(e.ends, len(e.buf)) }
func (e *envBuilder) drop()  { e.buf = e.buf[:e.begin] }

func (e *envBuilder) add(key, value string) {
	e.buf = append(append(e.buf, key...), value...)
	e.end()
}

// headerVar appends the CGI variable for a header name and "=", reporting
// false for names that are not plain tokens of letters, digits and '-' and
// for those in skipHeaderVar.
func (e *envBuilder) headerVar(name string) bool {
	if len(name) == 0 {
		return false
	}
	e.buf = append(e.buf, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z':
			e.buf = append(e.buf, c-'a'+'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			e.buf = append(e.buf, c)
		case c == '-':
			e.buf = append(e.buf, '_')
		default:
			return false
		}
	}
	if skipHeaderVar[string(e.buf[e.begin:])] { // no allocation: the compiler looks up without one
		return false
	}
	e.buf = append(e.buf, '=')
	return true
}

// strings returns the variables, as slices of the buffer, which is not
// written again (so no copy is needed to make it a string).
func (e *envBuilder) strings(env []string) []string {
	all := unsafe.String(unsafe.SliceData(e.buf), len(e.buf))
	from := 0
	for _, to := range e.ends {
		env = append(env, all[from:to])
		from = to
	}
	return env
}

// skipHeaderVar are header variables not passed: HTTP_HOST is set from
// r.Host, Content-Type and Content-Length have their own variables, and a
// "Proxy:" header would become HTTP_PROXY, which HTTP libraries take for
// their proxy setting (httpoxy).
// traceVar are the variables Meta.Trace says, when it is set.
var traceVar = map[string]bool{"HTTP_TRACEPARENT": true, "HTTP_TRACESTATE": true}

// skipHeaderVar are the variables a client's header field does not set:
// those set otherwise, HTTP_PROXY (httpoxy: read by CGI programs as their
// proxy) and the peer's SPIFFE ID, which only the handshake says.
var skipHeaderVar = map[string]bool{"HTTP_HOST": true, "HTTP_CONTENT_TYPE": true, "HTTP_CONTENT_LENGTH": true, "HTTP_PROXY": true,
	"HTTP_X_SPIFFE_PEER_ID": true}

func splitHostPort(hostport string) (host, port string) {
	if !strings.Contains(hostport, ":") { // the usual Host: no port, and no error to make
		return hostport, ""
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, ""
	}
	return host, port
}

func remoteIP(addr string) string {
	host, _ := splitHostPort(addr)
	return host
}

// Response is a guest's CGI response.
type Response struct {
	// Status is the HTTP status: from a "Status:" header, else 302 when a
	// "Location:" header is present, else 200.
	Status int
	// Header holds the other headers, canonicalised.
	Header http.Header
	// Body aliases the bytes after the blank line that ends the headers.
	Body []byte
}

// MaxHeaderBytes is the largest header block ParseResponse accepts.
const MaxHeaderBytes = 64 << 10

// ErrMalformedResponse is wrapped by every error of ParseResponse.
var ErrMalformedResponse = errors.New("malformed CGI response")

// ParseResponse parses a guest's stdout: header lines ("Name: value", ending
// in "\n" or "\r\n"), a blank line, then the body. At least one header is
// required, as RFC 3875 requires Content-Type, Location or Status; a response
// with none, with no blank line, with a line that is not a header, or with a
// bad Status is an error wrapping ErrMalformedResponse that says where.
func ParseResponse(out []byte) (*Response, error) {
	resp := &Response{Header: http.Header{}}
	var err error
	if resp.Status, resp.Body, err = ParseResponseInto(out, resp.Header, nil); err != nil {
		return nil, err
	}
	return resp, nil
}

// ParseResponseInto is ParseResponse for a caller with a header map of its
// own (a response writer's): the fields are set in h, but those whose
// canonical name skip holds (nil: none), and it returns the status and
// the body (a slice of out). A name's values replace those h had. When out
// is malformed, h is left as it was.
func ParseResponseInto(out []byte, h http.Header, skip map[string]bool) (status int, body []byte, err error) {
	end := headerBlockEnd(out)
	if end < 0 {
		return 0, nil, blockError(out)
	}
	// Every line is checked first, on a view of out that nothing keeps, so
	// that h is written only when all are good.
	status, lines, err := checkHeaderBlock(unsafe.String(unsafe.SliceData(out), end))
	if err != nil {
		return 0, nil, err
	}
	// The block becomes one string, of which names and values are
	// substrings; the values are in one array, each its own slice with no
	// room past it (an append copies).
	rest := string(out[:end])
	values := make([]string, 0, lines)
	var seen [16]string // the names set so far, to tell a repeated name from one h had
	var seenMap map[string]bool
	if lines > len(seen) {
		seenMap = make(map[string]bool, lines)
	}
	n := 0
	for {
		i := strings.IndexByte(rest, '\n')
		line := strings.TrimSuffix(rest[:i], "\r")
		rest = rest[i+1:]
		if len(line) == 0 {
			break
		}
		key, value, _ := strings.Cut(line, ":")
		key = textproto.CanonicalMIMEHeaderKey(key)
		if key == "Status" || skip[key] {
			continue
		}
		val := strings.TrimSpace(value)
		var repeated bool
		if seenMap != nil {
			repeated, seenMap[key] = seenMap[key], true
		} else {
			repeated = slices.Contains(seen[:n], key)
			seen[n], n = key, n+1
		}
		if repeated {
			h[key] = append(h[key], val)
			continue
		}
		values = append(values, val)
		h[key] = values[len(values)-1 : len(values) : len(values)]
	}
	return status, out[end:], nil
}

// checkHeaderBlock checks the header lines of block (which ends with the
// blank line) and returns the status they give and how many there are.
func checkHeaderBlock(block string) (status, lines int, err error) {
	status = http.StatusOK
	explicitStatus, location := false, false
	for lineNo := 1; ; lineNo++ {
		i := strings.IndexByte(block, '\n')
		line := strings.TrimSuffix(block[:i], "\r")
		block = block[i+1:]
		if len(line) == 0 {
			if lineNo == 1 {
				return 0, 0, malformed("no headers before the blank line on line 1")
			}
			break
		}
		key, val, err := checkHeaderLine(line)
		if err != nil {
			return 0, 0, malformed("line %d: %v", lineNo, err)
		}
		lines++
		switch {
		case strings.EqualFold(key, "Status"):
			if explicitStatus {
				return 0, 0, malformed("line %d: a second Status (RFC 3875 6.3.3 has one)", lineNo)
			}
			if status, err = parseStatus(val); err != nil {
				return 0, 0, malformed("line %d: %v", lineNo, err)
			}
			explicitStatus = true
		case strings.EqualFold(key, "Location"):
			location = true
		}
	}
	if location && !explicitStatus {
		status = http.StatusFound
	}
	return status, lines, nil
}

// blockError says what is wrong with output whose header block has no
// end: its first bad line, if one is, else its size or the missing blank
// line.
func blockError(out []byte) error {
	rest := string(out[:min(len(out), MaxHeaderBytes)])
	for lineNo := 1; strings.Contains(rest, "\n"); lineNo++ {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		key, val, err := checkHeaderLine(strings.TrimSuffix(line, "\r"))
		if err == nil && strings.EqualFold(key, "Status") {
			_, err = parseStatus(val)
		}
		if err != nil {
			return malformed("line %d: %v", lineNo, err)
		}
	}
	if len(out) > MaxHeaderBytes {
		return malformed("headers exceed %d bytes", MaxHeaderBytes)
	}
	return malformed("no blank line after the headers (%d bytes of output)", len(out))
}

// headerBlockEnd is the index just past the blank line ending the headers
// at the start of out, or -1 when there is none in the first
// MaxHeaderBytes.
func headerBlockEnd(out []byte) int {
	for start := 0; start <= MaxHeaderBytes; {
		i := bytes.IndexByte(out[start:], '\n')
		if i < 0 || start+i > MaxHeaderBytes {
			return -1
		}
		line := out[start : start+i]
		start += i + 1
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			return start
		}
	}
	return -1
}

// checkHeaderLine checks one header line and returns its name (not
// canonicalised) and its value, trimmed.
func checkHeaderLine(line string) (key, val string, err error) {
	key, value, ok := strings.Cut(line, ":")
	if !ok {
		return "", "", fmt.Errorf("%q is not a header (want Name: value)", truncate(line))
	}
	if !validHeaderName(key) {
		return "", "", fmt.Errorf("invalid header name %q", truncate(key))
	}
	val = strings.TrimSpace(value)
	for i := 0; i < len(val); i++ { // RFC 9110 5.5: no control characters but HTAB
		if c := val[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", "", fmt.Errorf("invalid value for header %q: control character %#02x", key, c)
		}
	}
	return key, val, nil
}

// parseStatus accepts "201" or "201 Created". A 1xx is not a final answer,
// so it is refused.
func parseStatus(v string) (int, error) {
	digits, _, _ := strings.Cut(v, " ")
	code, err := strconv.Atoi(digits)
	if err != nil || len(digits) != 3 || code < 200 || code > 599 {
		return 0, fmt.Errorf("invalid Status %q: want a 3-digit code from 200 to 599", v)
	}
	return code, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedResponse, fmt.Sprintf(format, args...))
}
