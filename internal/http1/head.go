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
	"strconv"

	"golang.org/x/net/http/httpguts"
)

// A request's head (its line and header fields) is read here, line by
// line, before net/http's parser sees it, to refuse what RFC 9112 says a
// server must or ought to refuse and what net/http lets through: a request
// with both Content-Length and Transfer-Encoding (§6.1: a request smuggling
// attempt, to be handled as an error, the connection closed), a repeated
// or malformed Content-Length (§6.3), Transfer-Encoding on HTTP/1.0 (§6.1),
// and a field line continued on the next (obs-fold, §5.2); and to bound
// what a request can make the server hold: the request line (414), the
// header fields' bytes and their number (431), and the memory that all
// connections' heads take together. http.ReadRequest then parses the head
// from these bytes alone, and the body is read from the connection by the
// readers below (Content-Length, or chunked with its trailers, bounded as
// the header is).

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
// that ends them, into c.head, and checks them. An error that is not a
// *headError is the connection's (closed, timed out): nothing to answer.
func (c *conn) readHead() error {
	s := c.s
	c.head = c.head[:0]
	line, err := c.readLine(cmp.Or(s.MaxRequestLine, DefaultMaxRequestLine), func(n int) *headError {
		return refuseHead(http.StatusRequestURITooLong, "request_line_too_long", "request line over %d bytes", n)
	})
	if err != nil {
		return err
	}
	http10 := bytes.HasSuffix(bytes.TrimRight(line, "\r\n"), []byte(" HTTP/1.0"))
	var contentLengths, transferEncodings int
	fields, fieldBytes := 0, 0
	maxBytes, maxFields := cmp.Or(s.MaxHeaderBytes, DefaultMaxHeaderBytes), cmp.Or(s.MaxHeaders, DefaultMaxHeaders)
	for {
		start := len(c.head)
		line, err := c.readLine(maxBytes-fieldBytes, func(int) *headError {
			return refuseHead(http.StatusRequestHeaderFieldsTooLarge, "header_too_large", "header fields over %d bytes", maxBytes)
		})
		if err != nil {
			return err
		}
		fieldBytes += len(c.head) - start
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return refuseHead(http.StatusBadRequest, "obs_fold", "a header field continued on the next line (obs-fold)")
		}
		if fields++; fields > maxFields {
			return refuseHead(http.StatusRequestHeaderFieldsTooLarge, "too_many_headers", "more than %d header fields", maxFields)
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if contentLengths++; contentLengths > 1 {
				return refuseHead(http.StatusBadRequest, "bad_content_length", "Content-Length given more than once")
			}
			if !validLength(bytes.TrimSpace(value)) {
				return refuseHead(http.StatusBadRequest, "bad_content_length", "invalid Content-Length %q", bytes.TrimSpace(value))
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			transferEncodings++
		}
	}
	switch {
	case contentLengths > 0 && transferEncodings > 0:
		return refuseHead(http.StatusBadRequest, "content_length_and_transfer_encoding", "both Content-Length and Transfer-Encoding")
	case transferEncodings > 0 && http10:
		return refuseHead(http.StatusBadRequest, "bad_transfer_encoding", "Transfer-Encoding in an HTTP/1.0 request")
	}
	return nil
}

// readLine reads one line (up to its '\n') onto c.head and returns it, or
// the error of tooLong(max) once it would be longer than max bytes. A line
// longer than the read buffer is gathered piece by piece, each growth of
// c.head past headBuffered taken from the server's MaxHeadMemory.
func (c *conn) readLine(max int, tooLong func(int) *headError) ([]byte, error) {
	start := len(c.head)
	for {
		piece, err := c.br.ReadSlice('\n')
		if len(c.head)-start+len(piece) > max {
			return nil, tooLong(max)
		}
		if err := c.grow(len(piece)); err != nil {
			return nil, err
		}
		c.head = append(c.head, piece...)
		switch {
		case err == nil:
			return c.head[start:], nil
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
	need := len(c.head) + n
	if need <= cap(c.head) {
		return nil
	}
	size := max(2*cap(c.head), need, headBuffered)
	extra := int64(max(size, headBuffered) - max(cap(c.head), headBuffered))
	if extra > 0 {
		limit := int64(cmp.Or(c.s.MaxHeadMemory, DefaultMaxHeadMemory))
		if c.s.headMemory.Add(extra) > limit {
			c.s.headMemory.Add(-extra)
			return refuseHead(http.StatusRequestHeaderFieldsTooLarge, "head_memory", "the server holds its most request headers already (%d bytes)", limit)
		}
		c.headHeld += extra
	}
	head := make([]byte, len(c.head), size)
	copy(head, c.head)
	c.head = head
	return nil
}

// releaseHead gives back a head buffer larger than headBuffered.
func (c *conn) releaseHead() {
	if c.headHeld > 0 {
		c.s.headMemory.Add(-c.headHeld)
		c.headHeld = 0
		c.head = nil
	}
}

// parseHead parses c.head with net/http's parser and sets the request's
// body to read from the connection.
func (c *conn) parseHead() (*http.Request, error) {
	c.headR.Reset(c.head)
	if c.headBR == nil {
		c.headBR = bufio.NewReaderSize(&c.headR, headBuffered)
	} else {
		c.headBR.Reset(&c.headR)
	}
	req, err := http.ReadRequest(c.headBR)
	if err != nil {
		return nil, err
	}
	switch {
	case len(req.TransferEncoding) > 0: // "chunked": ReadRequest refuses any other
		req.Body = &chunkedBody{c: c, r: httputil.NewChunkedReader(c.br), req: req}
	case req.ContentLength > 0:
		req.Body = &lengthBody{r: c.br, left: req.ContentLength}
	default:
		req.Body = http.NoBody
	}
	return req, nil
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
	var ne net.Error
	switch {
	case err == nil:
	case err == io.EOF:
		b.done, b.err = true, b.readTrailers()
		if b.err == nil {
			b.err = io.EOF
		}
	case err == io.ErrUnexpectedEOF, errors.As(err, &ne): // the connection's failure, not the framing's
		b.done, b.err = true, err
	default:
		b.done, b.err = true, fmt.Errorf("%w: %v", ErrMalformedBody, err)
	}
	return n, b.err
}

func (b *chunkedBody) Close() error { return nil }

// readTrailers reads the trailer section after the last chunk.
func (b *chunkedBody) readTrailers() error {
	c := b.c
	maxBytes, maxFields := cmp.Or(c.s.MaxHeaderBytes, DefaultMaxHeaderBytes), cmp.Or(c.s.MaxHeaders, DefaultMaxHeaders)
	c.head = c.head[:0]
	total, fields := 0, 0
	var lines [][]byte
	for {
		start := len(c.head)
		line, err := c.readLine(maxBytes-total, func(int) *headError {
			return refuseHead(http.StatusRequestHeaderFieldsTooLarge, "trailer_too_large", "trailer fields over %d bytes", maxBytes)
		})
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			if he, ok := err.(*headError); ok {
				return fmt.Errorf("%w: %s", ErrMalformedBody, he.why)
			}
			return err
		}
		total += len(c.head) - start
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fmt.Errorf("%w: a trailer field continued on the next line (obs-fold)", ErrMalformedBody)
		}
		if fields++; fields > maxFields {
			return fmt.Errorf("%w: more than %d trailer fields", ErrMalformedBody, maxFields)
		}
		lines = append(lines, line)
	}
	for _, line := range lines {
		name, value, ok := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(":"))
		k, v := string(name), string(bytes.TrimSpace(value))
		if !ok || !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) {
			return fmt.Errorf("%w: trailer field %q", ErrMalformedBody, bytes.TrimRight(line, "\r\n"))
		}
		if b.req.Trailer == nil {
			b.req.Trailer = http.Header{}
		}
		b.req.Trailer.Add(textproto.CanonicalMIMEHeaderKey(k), v)
	}
	return nil
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
	_, err := strconv.ParseInt(string(v), 10, 64)
	return err == nil
}

// asciiEqualFold compares a field name with a canonical one, ignoring
// ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
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
