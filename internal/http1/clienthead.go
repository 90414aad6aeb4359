package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// A response's head is read here, line by line, and the response built
// from it in one pass, as http.ReadResponse would build it (its status
// line, fields, framing and body; FuzzReadResponse holds the two to the
// same responses), but for a field name with a space before the colon,
// which net/http reads as a name of its own and RFC 9112 (§5.1) has
// refused: "Transfer-Encoding : chunked" is a smuggling attempt.

// readHead reads a response's head from cc.br and builds the response to
// req with its body reading from the connection. An error wrapping
// ErrMalformedResponse is the endpoint's (a head that is not HTTP/1.x);
// others are the connection's.
func (cc *clientConn) readHead(req *http.Request) (*http.Response, error) {
	hb := headPool.Get().(*headBuf)
	defer func() {
		if cap(hb.b) > headBuffered {
			hb.b = make([]byte, 0, headBuffered)
		}
		headPool.Put(hb)
	}()
	// The head's lines, up to the blank line that ends them. The reader
	// below bounds the bytes (ErrResponseHeaderTooLarge).
	hb.b = hb.b[:0]
	for first := true; ; first = false {
		start := len(hb.b)
		for {
			piece, err := cc.br.ReadSlice('\n')
			hb.b = append(hb.b, piece...)
			if err == nil {
				break
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err == io.EOF && len(hb.b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if !first && len(trimEOLBytes(hb.b[start:])) == 0 {
			break
		}
	}
	head := string(hb.b)
	line, rest, _ := strings.Cut(head, "\n")
	return buildResponse(req, trimEOL(line), rest, cc.br)
}

// malformed is an error wrapping ErrMalformedResponse that says where.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedResponse, fmt.Sprintf(format, args...))
}

// buildResponse makes the response to req of its status line and the
// field lines in fields (each ending in "\n", the blank line last), its
// body read from r.
func buildResponse(req *http.Request, line, fields string, r *bufio.Reader) (*http.Response, error) {
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return nil, malformed("status line %.60q", line)
	}
	status = strings.TrimLeft(status, " ")
	codeText, _, _ := strings.Cut(status, " ")
	code, err := strconv.Atoi(codeText)
	if len(codeText) != 3 || err != nil || code < 100 || code > 599 { // RFC 9110, 15: 100 to 599
		return nil, malformed("status code %.20q", codeText)
	}
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		return nil, malformed("HTTP version %.20q", proto)
	}
	h, err := parseFields(fields)
	if err != nil {
		return nil, err
	}
	resp := &http.Response{
		Status: status, StatusCode: code, Proto: proto, ProtoMajor: major, ProtoMinor: minor,
		Header: h, Request: req,
	}
	fixPragma(h)
	if err := setResponseBody(resp, r); err != nil {
		return nil, err
	}
	return resp, nil
}

// parseFields makes the header of a head's field lines (each ending in
// "\n", up to the blank line), as textproto.Reader.ReadMIMEHeader does: a
// line that starts with a space or a tab continues the one before (obs-fold,
// joined with a space), names are canonical, values trimmed.
func parseFields(fields string) (http.Header, error) {
	n := strings.Count(fields, "\n") - 1
	h := make(http.Header, n)
	values := make([]string, 0, n)
	for i := 0; ; i++ {
		var line string
		line, fields, _ = strings.Cut(fields, "\n")
		line = trimEOL(line)
		if line == "" {
			return h, nil
		}
		if i == 0 && (line[0] == ' ' || line[0] == '\t') {
			return nil, malformed("first field line %.40q starts with a space", line)
		}
		line = trimBlanks(line)
		for len(fields) > 0 && (fields[0] == ' ' || fields[0] == '\t') { // obs-fold
			var more string
			more, fields, _ = strings.Cut(fields, "\n")
			line += " " + trimBlanks(trimEOL(more))
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, malformed("field line %.40q", line)
		}
		key, ok := canonicalName(name) // a space before the colon is not a token (RFC 9112 §5.1)
		if !ok {
			return nil, malformed("field name %.40q", name)
		}
		for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') { // the line's end is trimmed already
			value = value[1:]
		}
		if !validFieldValue(value) {
			return nil, malformed("field %s: invalid value %.40q", name, value)
		}
		values = append(values, value)
		if vs, ok := h[key]; ok {
			h[key] = append(vs, value)
		} else {
			h[key] = values[len(values)-1 : len(values) : len(values)]
		}
	}
}

// setResponseBody sets resp's framing (ContentLength, TransferEncoding,
// Trailer, Close) from its header, status and request, as net/http does,
// and its body to read from r.
func setResponseBody(resp *http.Response, r *bufio.Reader) error {
	h, code := resp.Header, resp.StatusCode
	http11 := resp.ProtoAtLeast(1, 1)
	conn := h["Connection"]
	resp.Close = httpguts.HeaderValuesContainsToken(conn, "close")
	switch {
	case resp.ProtoMajor < 1:
		resp.Close = true
	case resp.ProtoMajor == 1 && resp.ProtoMinor == 0:
		resp.Close = resp.Close || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	case resp.Close:
		// The fields it names go with it (RFC 9110, 7.6.1): a proxy that
		// drops the hop-by-hop fields would not see them named.
		for _, c := range conn {
			for _, name := range strings.Split(c, ",") {
				if name = textproto.TrimString(name); name != "" && !asciiEqualFold(name, "close") {
					delete(h, textproto.CanonicalMIMEHeaderKey(name))
				}
			}
		}
		delete(h, "Connection")
	}

	chunked := false
	if te, ok := h["Transfer-Encoding"]; ok {
		delete(h, "Transfer-Encoding")
		if http11 || resp.ProtoMajor == 0 && resp.ProtoMinor == 0 { // net/http reads HTTP/0.0 as 1.1
			if len(te) != 1 || !asciiEqualFold(te[0], "chunked") {
				return malformed("unsupported transfer encoding %.60q", te)
			}
			chunked = true
		} else if resp.ProtoMajor == 1 && BodyAllowed(code) && (resp.Request == nil || resp.Request.Method != http.MethodHead) {
			// HTTP/1.0 has no transfer codings: its framing is faulty
			// (RFC 9112, 6.1), and read to the connection's end it would
			// pass the chunks' sizes on as the body's bytes.
			return malformed("Transfer-Encoding in an HTTP/1.0 response")
		}
	}
	noBody := !BodyAllowed(code)
	length := int64(-1)
	if cl := h["Content-Length"]; len(cl) > 0 {
		for _, v := range cl[1:] {
			if textproto.TrimString(v) != textproto.TrimString(cl[0]) {
				return malformed("Content-Length given more than once: %.60q", cl)
			}
		}
		n, err := strconv.ParseUint(textproto.TrimString(cl[0]), 10, 63)
		if err != nil {
			return malformed("invalid Content-Length %.30q", cl[0])
		}
		length = int64(n)
		if len(cl) > 1 {
			h["Content-Length"] = cl[:1:1]
		}
	}
	head := resp.Request != nil && resp.Request.Method == http.MethodHead
	switch {
	case head:
		resp.ContentLength = length
	case noBody:
		resp.ContentLength = 0
	case chunked:
		delete(h, "Content-Length")
		resp.ContentLength = -1
	default:
		resp.ContentLength = length
	}
	if chunked {
		resp.TransferEncoding = []string{"chunked"}
		trailer, err := declaredTrailers(h)
		if err != nil {
			return malformed("%v", err)
		}
		resp.Trailer = trailer
	}
	switch {
	case head || noBody:
		resp.Body = http.NoBody
	case chunked:
		resp.Body = &chunkedResponseBody{r: r, chunks: httputil.NewChunkedReader(r), resp: resp}
	case length > 0:
		resp.Body = &lengthBody{r: r, left: length}
	case length == 0:
		resp.Body = http.NoBody
	default: // no length: the body ends with the connection
		resp.Close = true
		resp.Body = io.NopCloser(r)
	}
	return nil
}

// chunkedResponseBody is a chunked response body, then its trailers (set
// in resp.Trailer at its end, as net/http does).
type chunkedResponseBody struct {
	r      *bufio.Reader
	chunks io.Reader
	resp   *http.Response
	err    error
}

func (b *chunkedResponseBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.chunks.Read(p)
	switch {
	case err == io.EOF:
		if err = b.readTrailers(); err == nil {
			err = io.EOF
		}
	case err != nil && !readFailure(err):
		err = malformed("chunked body: %v", err) // the chunks' framing
	}
	b.err = err
	return n, err
}

// readFailure reports whether err, of a read of a response's body, is the
// connection's (cut, reset, timed out), not the body's bytes'.
func readFailure(err error) bool {
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) || errors.Is(err, net.ErrClosed)
}

func (b *chunkedResponseBody) Close() error { return nil }

// readTrailers reads the trailer section after the last chunk, of at most
// DefaultMaxHeaderBytes, its lines no longer than the read buffer.
func (b *chunkedResponseBody) readTrailers() error {
	if end, _ := b.r.Peek(2); string(end) == "\r\n" { // no trailers, most often
		_, _ = b.r.Discard(2)
		return nil
	}
	var lines []byte
	for {
		line, err := b.r.ReadSlice('\n')
		switch {
		case err == io.EOF:
			return io.ErrUnexpectedEOF
		case errors.Is(err, bufio.ErrBufferFull):
			return malformed("a trailer line over %d bytes", b.r.Size())
		case err != nil:
			return err
		}
		if lines = append(lines, line...); len(lines) > DefaultMaxHeaderBytes {
			return malformed("trailer fields over %d bytes", DefaultMaxHeaderBytes)
		}
		if len(trimEOLBytes(line)) == 0 {
			break
		}
	}
	t, err := parseFields(string(lines))
	if err != nil {
		return err
	}
	if b.resp.Trailer == nil {
		b.resp.Trailer = t
		return nil
	}
	for k, vs := range t {
		b.resp.Trailer[k] = vs
	}
	return nil
}
