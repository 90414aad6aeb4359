package http1

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// A request's head (its line and header fields) is read here, line by
// line, and the request built from it, refusing what RFC 9112 says a server
// must or ought to refuse and what net/http lets through: a request with
// both Content-Length and Transfer-Encoding (§6.1: a request smuggling
// attempt, to be handled as an error, the connection closed), a repeated
// or malformed Content-Length (§6.3), Transfer-Encoding on HTTP/1.0 (§6.1),
// and a field line continued on the next (obs-fold, §5.2); and bounding
// what a request can make the server hold: the request line (414), the
// header fields' bytes and their number (431), and the memory that all
// connections' heads take together. Everything else is as net/http's
// http.ReadRequest and its server have it (the request line, the target's
// forms, Host, Connection, Transfer-Encoding, Trailer, field names and
// values), which FuzzReadRequest checks. The body is read from the
// connection by the readers below (Content-Length, or chunked with its
// trailers, bounded as the header is).

// Defaults for a Server's zero limits. DefaultMaxHeaderBytes and
// DefaultMaxHeaders are Envoy's defaults (60 KiB and 100), nginx answers
// 414 past 8 KiB of request line.
const (
	DefaultMaxRequestLine = 8 << 10
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxHeaders     = 100
	DefaultMaxHeadMemory  = 64 << 20
)

// headError is a request refused while its head is read: the status, why
// (sent to the client) and a reason for metrics (Server.Refused).
type headError struct {
	status      int
	why, reason string
}

func (e *headError) Error() string { return e.why }

func refuseHead(status int, reason, format string, args ...any) *headError {
	return &headError{status: status, reason: reason, why: fmt.Sprintf(format, args...)}
}

// headBuffered is how much of a head a connection keeps between requests:
// a larger one is given back (and its share of MaxHeadMemory with it).
const headBuffered = 4 << 10

// readHead reads a request's line and header fields, up to the blank line
// that ends them, into c.hb.b, and builds the request from them. An error
// that is not a *headError is the connection's (closed, timed out): nothing
// to answer.
func (c *conn) readHead() (*http.Request, error) {
	s := c.s
	if c.hb == nil {
		c.hb = headPool.Get().(*headBuf)
	}
	c.hb.b, c.hb.fields = c.hb.b[:0], c.hb.fields[:0]
	var line []byte
	var err error
	for empty := 0; ; empty++ {
		line, err = c.readLine(cmp.Or(s.MaxRequestLine, DefaultMaxRequestLine), func(n int) *headError {
			return refuseHead(http.StatusRequestURITooLong, "request_line_too_long", "request line over %d bytes", n)
		})
		if err != nil {
			return nil, err
		}
		// Empty lines before a request line are skipped, a few of them
		// (RFC 9112, 2.2: a client may send one after a POST's body).
		if empty == 4 || len(trimEOL(string(line))) > 0 {
			break
		}
		c.hb.b = c.hb.b[:0]
	}
	lineEnd := len(line)
	var contentLengths, transferEncodings int
	err = c.readFields("header", func(f field, name, value []byte) *headError {
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if contentLengths++; contentLengths > 1 {
				return refuseHead(http.StatusBadRequest, "bad_content_length", "Content-Length given more than once")
			}
			if !validLength(value) {
				return refuseHead(http.StatusBadRequest, "bad_content_length", "invalid Content-Length %q", value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			transferEncodings++
		}
		c.hb.fields = append(c.hb.fields, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if contentLengths > 0 && transferEncodings > 0 {
		return nil, refuseHead(http.StatusBadRequest, "content_length_and_transfer_encoding", "both Content-Length and Transfer-Encoding")
	}
	return c.buildRequest(lineEnd)
}

// buildRequest makes the request from the head in c.hb.b: its line (the
// first lineEnd bytes) and its fields (c.hb.fields). The request's strings
// are all cut from one copy of the head.
func (c *conn) buildRequest(lineEnd int) (*http.Request, error) {
	head := string(c.hb.b)
	line := trimEOL(head[:lineEnd])
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return nil, refuseHead(http.StatusBadRequest, "bad_request", "malformed request line %.60q", line)
	}
	if !validToken(method) {
		return nil, refuseHead(http.StatusBadRequest, "bad_request", "invalid method %.40q", method)
	}
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		return nil, refuseHead(http.StatusBadRequest, "bad_request", "malformed HTTP version %.40q", proto)
	}
	if major != 1 {
		return nil, refuseHead(http.StatusHTTPVersionNotSupported, "bad_request", "unsupported protocol version %.40q", proto)
	}
	// CONNECT's target is an authority (host:port), which goes to URL.Host
	// as net/http has it; a CONNECT to a path (net/rpc's) is a path.
	rh := &requestHead{}
	u := &rh.url
	if !parseOriginForm(u, target) {
		rawURL := target
		authority := method == http.MethodConnect && !strings.HasPrefix(target, "/")
		if authority {
			rawURL = "http://" + target
		}
		parsed, err := url.ParseRequestURI(rawURL)
		if err != nil {
			return nil, refuseHead(http.StatusBadRequest, "bad_request", "malformed request target %.60q", target)
		}
		// The forms a target may take (RFC 9112, 3.2): "*" for OPTIONS
		// alone, an authority for CONNECT, else an http or https URL
		// with a host (an opaque "a:b" would reach a handler as "/", and
		// a proxied endpoint as something else).
		switch {
		case strings.HasPrefix(target, "/"):
		case target == "*":
			if method != http.MethodOptions {
				return nil, refuseHead(http.StatusBadRequest, "bad_request_target", "the request target \"*\" is for OPTIONS only, not %.20s", method)
			}
		case authority:
			parsed.Scheme = ""
		case !strings.EqualFold(parsed.Scheme, "http") && !strings.EqualFold(parsed.Scheme, "https") || parsed.Host == "" || parsed.Opaque != "":
			return nil, refuseHead(http.StatusBadRequest, "bad_request_target", "request target %.60q is neither a path nor an http(s) URL", target)
		}
		*u = *parsed
	}

	// The header as net/http has it: names canonical, values in the order
	// given, Host out of it (in req.Host).
	fields := c.hb.fields
	h := make(http.Header, len(fields))
	values := rh.values[:0]
	if len(fields) > len(rh.values) {
		values = make([]string, len(fields))
	}
	values = values[:len(fields)]
	var host string
	hosts := 0
	for i, f := range fields {
		key, _ := canonicalName(head[f.name.from:f.name.to]) // readFields let tokens only through
		values[i] = head[f.value.from:f.value.to]
		switch vs, ok := h[key]; {
		case key == "Host":
			host = values[i]
			hosts++
		case ok:
			h[key] = append(vs, values[i])
		default:
			h[key] = values[i : i+1 : i+1]
		}
	}
	if hosts > 1 {
		return nil, refuseHead(http.StatusBadRequest, "bad_request", "too many Host headers")
	}
	req := &rh.req
	*req = http.Request{
		Method: method, URL: u, Proto: proto, ProtoMajor: major, ProtoMinor: minor,
		Header: h, Host: cmp.Or(u.Host, host), RequestURI: target,
	}
	switch {
	case minor > 0 && hosts == 0 && method != "CONNECT":
		// Required even with an absolute URL, whose host is the one used
		// (RFC 9112, 3.2), as in net/http (which lets a CONNECT without).
		return nil, refuseHead(http.StatusBadRequest, "bad_request", "missing required Host header")
	case req.Host == "" && minor > 0:
		return nil, refuseHead(http.StatusBadRequest, "bad_request", "empty Host header")
	case !httpguts.ValidHostHeader(req.Host):
		return nil, refuseHead(http.StatusBadRequest, "bad_request", "malformed Host header %.60q", req.Host)
	case !validHostPort(req.Host):
		return nil, refuseHead(http.StatusBadRequest, "bad_host", "malformed Host header %.60q: a host, then a port of digits", req.Host)
	case u.Host != "" && hosts > 0 && (!httpguts.ValidHostHeader(host) || !validHostPort(host)):
		// The field is checked even when the target's host is the one
		// used (RFC 9112, 3.2: a Host of invalid value is a 400).
		return nil, refuseHead(http.StatusBadRequest, "bad_host", "malformed Host header %.60q beside the target's host %.60q", host, u.Host)
	}
	fixPragma(h)
	conn := h["Connection"]
	req.Close = httpguts.HeaderValuesContainsToken(conn, "close") ||
		minor == 0 && !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	if err := c.setBody(req); err != nil {
		return nil, err
	}
	return req, nil
}

// validHostPort reports whether host is uri-host [ ":" port ] as RFC 9112
// (3.2) has it, past what httpguts lets through: an IP literal in
// brackets, closed; a port of digits only (empty, as RFC 3986 allows).
func validHostPort(host string) bool {
	port := ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return false
		}
		rest := host[end+1:]
		if rest != "" && rest[0] != ':' {
			return false
		}
		port = strings.TrimPrefix(rest, ":")
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		port = host[i+1:]
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	return true
}

// requestHead is what buildRequest makes for a request, in one
// allocation: the request, its URL, and the values of up to eight header
// fields (each field's value slice is cut from them).
type requestHead struct {
	req    http.Request
	url    url.URL
	values [8]string
}

// parseOriginForm parses target into u as url.ParseRequestURI would, when
// it is in origin form ("/path?query") with a path of characters that
// neither escaping nor unescaping changes and a query of visible ASCII;
// otherwise it returns false and leaves u alone. Most targets are such,
// and this saves ParseRequestURI's allocation and its passes over the
// path to unescape it and escape it again.
func parseOriginForm(u *url.URL, target string) bool {
	if len(target) == 0 || target[0] != '/' || strings.HasPrefix(target, "//") {
		return false
	}
	path, query, hasQuery := strings.Cut(target, "?")
	if hasQuery && query == "" {
		return false // ForceQuery, and "/?"'s kin: left to ParseRequestURI
	}
	for i := 0; i < len(path); i++ {
		if !pathByte[path[i]] {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query}
	return true
}

// pathByte are the bytes url.URL's path encoding leaves as they are:
// RFC 3986's unreserved characters and the reserved ones a path may hold
// unescaped, '%' not among them (a path with one is unescaped).
var pathByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

// setBody sets req's framing (ContentLength, TransferEncoding, Trailer)
// from its header, and its body to read from the connection.
func (c *conn) setBody(req *http.Request) error {
	h := req.Header
	if te, ok := h["Transfer-Encoding"]; ok {
		switch {
		case req.ProtoMinor == 0:
			return refuseHead(http.StatusBadRequest, "bad_transfer_encoding", "Transfer-Encoding in an HTTP/1.0 request")
		case len(te) != 1:
			return refuseHead(http.StatusBadRequest, "bad_transfer_encoding", "too many transfer encodings: %.60q", te)
		case !asciiEqualFold(te[0], "chunked"):
			return refuseHead(http.StatusNotImplemented, "bad_transfer_encoding", "unsupported transfer encoding %.60q", te[0])
		}
		delete(h, "Transfer-Encoding")
		req.TransferEncoding, req.ContentLength = []string{"chunked"}, -1
		trailer, err := declaredTrailers(h)
		if err != nil {
			return refuseHead(http.StatusBadRequest, "bad_request", "%v", err)
		}
		req.Trailer = trailer
		req.Body = &chunkedBody{c: c, r: httputil.NewChunkedReader(c.br), req: req}
		return nil
	}
	if cl := h["Content-Length"]; len(cl) > 0 {
		n, err := strconv.ParseInt(cl[0], 10, 64) // readHead let digits only through
		if err != nil {
			return refuseHead(http.StatusBadRequest, "bad_content_length", "invalid Content-Length %q", cl[0])
		}
		req.ContentLength = n
	}
	if req.ContentLength > 0 {
		req.Body = &lengthBody{r: c.br, left: req.ContentLength}
	} else {
		req.Body = http.NoBody
	}
	return nil
}

// declaredTrailers takes the Trailer field out of a chunked message's
// header, as net/http does, and returns the fields it declares (each with
// no value yet), nil for none; the framing fields may not be declared.
func declaredTrailers(h http.Header) (http.Header, error) {
	vs, ok := h["Trailer"]
	if !ok {
		return nil, nil
	}
	delete(h, "Trailer")
	trailer := http.Header{}
	for _, v := range vs {
		for key := range strings.SplitSeq(v, ",") {
			key = textproto.TrimString(key)
			if key == "" {
				continue
			}
			switch key = http.CanonicalHeaderKey(key); key {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, fmt.Errorf("bad trailer key %q", key)
			}
			trailer[key] = nil
		}
	}
	if len(trailer) == 0 {
		return nil, nil
	}
	return trailer, nil
}

// field is where a field's name and value (trimmed) are in a head's bytes.
type field struct{ name, value span }

type span struct{ from, to int }

// readFields reads field lines onto c.hb.b up to the blank line that ends
// them: at most MaxHeaderBytes of them (the blank line included) and
// MaxHeaders lines, each a name (a token: no space before the colon), a
// colon and a value (no control characters but tabs), none continuing the
// line before (obs-fold). what ("header" or "trailer") names them in
// errors; each is given each field, where it is in c.hb.b and its name and
// value, and may refuse it.
func (c *conn) readFields(what string, each func(f field, name, value []byte) *headError) error {
	maxBytes, maxFields := cmp.Or(c.s.MaxHeaderBytes, DefaultMaxHeaderBytes), cmp.Or(c.s.MaxHeaders, DefaultMaxHeaders)
	total, fields := 0, 0
	for {
		start := len(c.hb.b)
		line, err := c.readLine(maxBytes-total, func(int) *headError {
			return refuseHead(http.StatusRequestHeaderFieldsTooLarge, what+"_too_large", "%s fields over %d bytes", what, maxBytes)
		})
		if err != nil {
			return err
		}
		total += len(c.hb.b) - start
		line = trimEOLBytes(line)
		if len(line) == 0 {
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return refuseHead(http.StatusBadRequest, "obs_fold", "a %s field continued on the next line (obs-fold)", what)
		}
		if fields++; fields > maxFields {
			return refuseHead(http.StatusRequestHeaderFieldsTooLarge, "too_many_"+what+"s", "more than %d %s fields", maxFields, what)
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 || !validToken(line[:colon]) { // "Transfer-Encoding : chunked" included
			return refuseHead(http.StatusBadRequest, "bad_request", "malformed %s field %.40q", what, line)
		}
		name, value := line[:colon], line[colon+1:]
		from := start + colon + 1
		for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
			value, from = value[1:], from+1
		}
		for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
			value = value[:len(value)-1]
		}
		if !validFieldValue(value) {
			return refuseHead(http.StatusBadRequest, "bad_request", "%s field %s: invalid value %.40q", what, name, value)
		}
		if err := each(field{span{start, start + colon}, span{from, from + len(value)}}, name, value); err != nil {
			return err
		}
	}
}

// readLine reads one line (up to its '\n') onto c.hb.b and returns it, or
// the error of tooLong(max) once it would be longer than max bytes. A line
// longer than the read buffer is gathered piece by piece, each growth of
// c.hb.b past headBuffered taken from the server's MaxHeadMemory.
func (c *conn) readLine(max int, tooLong func(int) *headError) ([]byte, error) {
	start := len(c.hb.b)
	for {
		piece, err := c.br.ReadSlice('\n')
		if len(c.hb.b)-start+len(piece) > max {
			return nil, tooLong(max)
		}
		if err := c.grow(len(piece)); err != nil {
			return nil, err
		}
		c.hb.b = append(c.hb.b, piece...)
		switch {
		case err == nil:
			return c.hb.b[start:], nil
		case errors.Is(err, errHeaderTooLarge):
			return nil, tooLong(max)
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, err
		}
	}
}

// grow makes room for n more bytes of head, refused when the connections'
// heads together would hold more than MaxHeadMemory.
func (c *conn) grow(n int) error {
	need := len(c.hb.b) + n
	if need <= cap(c.hb.b) {
		return nil
	}
	size := max(2*cap(c.hb.b), need, headBuffered)
	extra := int64(size - max(cap(c.hb.b), headBuffered))
	if extra > 0 {
		limit := int64(cmp.Or(c.s.MaxHeadMemory, DefaultMaxHeadMemory))
		if c.s.headMemory.Add(extra) > limit {
			c.s.headMemory.Add(-extra)
			return refuseHead(http.StatusRequestHeaderFieldsTooLarge, "head_memory", "the server holds its most request headers already (%d bytes)", limit)
		}
		c.headHeld += extra
	}
	head := make([]byte, len(c.hb.b), size)
	copy(head, c.hb.b)
	c.hb.b = head
	return nil
}

// headBuf is a request head's bytes and where its fields are in them:
// taken from headPool for a request, given back after it, so that an idle
// connection holds none.
type headBuf struct {
	b      []byte
	fields []field
}

var headPool = sync.Pool{New: func() any {
	return &headBuf{b: make([]byte, 0, headBuffered), fields: make([]field, 0, 16)}
}}

// releaseHead gives the head buffer back to the pool, and what it held
// past headBuffered back to MaxHeadMemory (that memory itself to the
// garbage collector).
func (c *conn) releaseHead() {
	if c.hb == nil {
		return
	}
	if c.headHeld > 0 {
		c.s.headMemory.Add(-c.headHeld)
		c.headHeld = 0
		c.hb.b = make([]byte, 0, headBuffered)
	}
	headPool.Put(c.hb)
	c.hb = nil
}

// lengthBody is a body of Content-Length bytes; one cut short is an
// io.ErrUnexpectedEOF. A failed read fails every later one (the body is
// broken, and the connection with it).
type lengthBody struct {
	r    io.Reader
	left int64
	err  error
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	switch {
	case err == io.EOF && b.left > 0:
		err = io.ErrUnexpectedEOF
	case err == nil && b.left == 0:
		err = io.EOF
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }

// ErrMalformedBody is wrapped by the errors of a request body whose
// chunked framing or trailers are malformed.
var ErrMalformedBody = errors.New("http1: malformed request body")

// chunkedBody is a chunked body, then its trailers (read into
// req.Trailer at its end, as net/http does, bounded and checked as the
// header fields are).
type chunkedBody struct {
	c    *conn
	r    io.Reader
	req  *http.Request
	done bool
	err  error
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	switch {
	case err == nil:
	case err == io.EOF:
		b.done, b.err = true, b.readTrailers()
		if b.err == nil {
			b.err = io.EOF
		}
	case err == io.ErrUnexpectedEOF, isNetError(err): // the connection's failure, not the framing's
		b.done, b.err = true, err
	default:
		b.done, b.err = true, fmt.Errorf("%w: %v", ErrMalformedBody, err)
	}
	return n, b.err
}

func (b *chunkedBody) Close() error { return nil }

// readTrailers reads the trailer section after the last chunk.
func (b *chunkedBody) readTrailers() error {
	b.c.hb.b = b.c.hb.b[:0]
	err := b.c.readFields("trailer", func(_ field, name, value []byte) *headError {
		if b.req.Trailer == nil {
			b.req.Trailer = http.Header{}
		}
		b.req.Trailer.Add(textproto.CanonicalMIMEHeaderKey(string(name)), string(value))
		return nil
	})
	var he *headError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		return io.ErrUnexpectedEOF
	case errors.As(err, &he):
		return fmt.Errorf("%w: %s", ErrMalformedBody, he.why)
	}
	return err
}

// validLength says whether v is a Content-Length: digits only, at most 18
// of them (no sign, no list, no overflow of an int64).
func validLength(v []byte) bool {
	if len(v) == 0 || len(v) > 18 {
		return false
	}
	for _, b := range v {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}

// validToken says whether s is a token (RFC 9110 §5.6.2), as a method
// and a field name are: a name with a space before its colon is not.
func validToken[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// validFieldValue says whether v may be a field's value: no control
// characters but horizontal tabs (RFC 9110 §5.5, as net/http has it).
func validFieldValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// fixPragma gives a header with "Pragma: no-cache" and no Cache-Control
// "Cache-Control: no-cache", as net/http's parsers do (RFC 7234 §5.4).
func fixPragma(h http.Header) {
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = []string{"no-cache"}
	}
}

// canonicalName returns a field name in its canonical form (as
// textproto.CanonicalMIMEHeaderKey has it: "Content-Type"), and false if
// it is not a token. A name in that form already is not copied.
func canonicalName(name string) (string, bool) {
	upper, canonical := true, true
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !httpguts.IsTokenRune(rune(b)) {
			return "", false
		}
		if upper && 'a' <= b && b <= 'z' || !upper && 'A' <= b && b <= 'Z' {
			canonical = false
		}
		upper = b == '-'
	}
	switch {
	case name == "":
		return "", false
	case canonical:
		return name, true
	}
	return textproto.CanonicalMIMEHeaderKey(name), true
}

// trimBlanks cuts the spaces and tabs around s.
func trimBlanks(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isNetError says whether err is a net.Error (a failed read of the
// connection); isTimeout whether it is one that timed out. (Their
// net.Error escapes: declared here, it is made only for an error.)
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// trimEOL cuts a line's end: "\n", and "\r" before it.
func trimEOL(line string) string {
	line = strings.TrimSuffix(line, "\n")
	return strings.TrimSuffix(line, "\r")
}

// trimEOLBytes is trimEOL for bytes.
func trimEOLBytes(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

// asciiEqualFold compares a field name or token with a canonical one,
// ignoring ASCII case only: a token is ASCII, and Unicode's folding would
// take "chun\u212Aed" (a Kelvin sign) for "chunked", which no other
// server or proxy does (a request smuggled past them).
func asciiEqualFold[T string | []byte](b T, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
