package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// maxBuffered is how much of a response body is kept to be written with
// its headers in one write; past it the response is streamed. A body is
// buffered in a buffer from bodyPool, given back at the response's end: an
// idle connection holds none.
const maxBuffered = 64 << 10

// bodyPool holds *[]byte: a pointer goes in and out of the pool without
// the allocation that boxing a slice header would be on every response.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, maxBuffered); return &b }}

// response is the connection's http.ResponseWriter, reused from request
// to request.
type response struct {
	c           *conn
	req         *http.Request
	header      http.Header
	status      int
	wroteHeader bool
	streaming   bool // headers are out; the body goes straight to the writer
	chunked     bool
	closeAfter  bool
	body        []byte
	bodyBuf     *[]byte // the pooled buffer body is in, nil for none
	written     int64
	declared    int64 // the handler's Content-Length; -1: none
	keys        []string
	scratch     []byte
	failed      bool
	finishing   bool // the handler has returned (finish)
}

func (w *response) reset(req *http.Request) {
	w.req = req
	if w.header == nil {
		w.header = make(http.Header, 8)
	} else {
		clear(w.header) // reused: a handler must not keep its response's Header past its return
	}
	w.status = 0
	w.wroteHeader, w.streaming, w.chunked, w.closeAfter, w.failed, w.finishing = false, false, false, false, false, false
	w.body = w.body[:0]
	w.written = 0
	w.declared = -1
}

func (w *response) Header() http.Header { return w.header }

// Unsend takes back a response of which nothing has left the server (its
// head and body still buffered: under 64 KiB, never flushed), as if the
// handler had not yet written its status or body: it may answer anew (a
// proxy whose endpoint failed before its answer was out answers 502
// instead of a cut one). The header stays as the handler set it, for the
// handler to change. False, and nothing changed, once any of it was sent.
func (w *response) Unsend() bool {
	if w.streaming || w.failed {
		return false
	}
	w.status, w.wroteHeader, w.chunked = 0, false, false
	w.body = w.body[:0]
	w.written, w.declared = 0, -1
	return true
}

// Hijack takes the connection over, as http.Hijacker: the server neither
// writes the response nor reads the connection again, nor closes it; what
// it had read ahead comes first from the returned connection. Not once
// the response has begun.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	switch {
	case c.hijacked:
		return nil, nil, errors.New("http1: the connection was hijacked already")
	case w.wroteHeader:
		return nil, nil, errors.New("http1: Hijack after the response began")
	}
	c.stopWatch() // no read ahead from now on
	var ahead []byte
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		ahead = bytes.Clone(b)
	}
	if c.cr.hasByte { // read after what the buffer holds
		ahead = append(ahead, c.cr.byteBuf[0])
		c.cr.hasByte = false
	}
	c.hijacked = true
	_ = c.rwc.SetDeadline(time.Time{})
	conn := c.rwc
	if len(ahead) > 0 {
		conn = &replayConn{Conn: c.rwc, r: io.MultiReader(bytes.NewReader(ahead), c.rwc)}
	}
	return conn, bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn)), nil
}

func (w *response) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	if status < 100 || status > 999 {
		panic("http1: invalid WriteHeader code " + strconv.Itoa(status))
	}
	if status < 200 && status != http.StatusSwitchingProtocols {
		// An informational response (103 Early Hints): written now, with the
		// headers as they are.
		if status == http.StatusContinue {
			return
		}
		w.writeHead(status, false)
		w.flush()
		return
	}
	w.wroteHeader = true
	w.status = status
	if cl := fieldValue(w.header, "Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.declared = n
		} else {
			delete(w.header, "Content-Length")
		}
	}
}

func (w *response) Write(p []byte) (int, error) { return write(w, p) }

// WriteString is Write without copying s to a []byte first when it is
// buffered (io.WriteString and fmt use it).
func (w *response) WriteString(s string) (int, error) { return write(w, s) }

func write[T string | []byte](w *response, p T) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, w.writeFailure()
	}
	if !BodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	if !w.streaming && len(w.body)+len(p) <= maxBuffered {
		if len(w.body)+len(p) > cap(w.body) && w.bodyBuf == nil {
			w.bodyBuf = bodyPool.Get().(*[]byte)
			w.body = append((*w.bodyBuf)[:0], w.body...)
		}
		w.body = append(w.body, p...)
		return len(p), nil
	}
	if !w.streaming {
		w.startStream()
	}
	return w.writeBody([]byte(p))
}

// writeError is a write of the response that failed, with the
// connection's error (a timeout at the write deadline, a reset).
type writeError struct{ err error }

func (e *writeError) Error() string {
	if e.err == nil {
		return "http1: the connection failed while writing the response"
	}
	return "http1: the connection failed while writing the response: " + e.err.Error()
}

func (e *writeError) Unwrap() error { return e.err }

// writeFailure is the error of a write after the connection failed: the
// buffered writer's, which keeps the first.
func (w *response) writeFailure() error {
	_, err := w.c.bw.Write(nil)
	return &writeError{err}
}

// Flush sends what is buffered, as http.Flusher: the response is streamed
// from then on.
func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.streaming {
		w.startStream()
	}
	w.flush()
}

// FlushError is Flush, returning the connection's error when the write
// fails (a timeout at the write deadline, a reset), as
// http.ResponseController's Flush asks.
func (w *response) FlushError() error {
	w.Flush()
	if w.failed {
		return w.writeFailure()
	}
	return nil
}

// SetReadDeadline sets the connection's read deadline, for reading the
// request's body (http.ResponseController): a body not read by then fails
// with a timeout. The server sets its own deadlines again before it reads
// the next request.
func (w *response) SetReadDeadline(t time.Time) error { return w.c.rwc.SetReadDeadline(t) }

// SetWriteDeadline sets the connection's write deadline, for writing the
// response (http.ResponseController): a write the client does not take by
// then fails with a timeout. The handler lifts it (the zero time) if the
// connection is to serve another request.
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// startStream writes the headers and the buffered body: with the
// declared length, or chunked.
func (w *response) startStream() {
	w.streaming = true
	w.chunked = w.declared < 0 && BodyAllowed(w.status) && w.req.Method != http.MethodHead && w.req.ProtoAtLeast(1, 1)
	if w.declared < 0 && !w.chunked && BodyAllowed(w.status) && w.req.Method != http.MethodHead {
		w.closeAfter = true // HTTP/1.0 without a length: the end of the body is the end of the connection
	}
	w.writeHead(w.status, true)
	if len(w.body) > 0 {
		body := w.body
		w.body = w.body[:0]
		_, _ = w.writeBody(body)
	}
}

func (w *response) writeBody(p []byte) (int, error) {
	bw := w.c.bw
	if w.chunked && len(p) > 0 {
		w.scratch = strconv.AppendInt(w.scratch[:0], int64(len(p)), 16)
		w.scratch = append(w.scratch, '\r', '\n')
		_, _ = bw.Write(w.scratch)
	}
	n, err := bw.Write(p)
	if w.chunked && len(p) > 0 {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.failed = true
		return n, &writeError{err}
	}
	return len(p), nil
}

func (w *response) flush() {
	if w.c.bw.Flush() != nil {
		w.failed = true
	}
}

// finish ends the response after the handler returned, and says whether
// the connection is still good.
func (w *response) finish() bool {
	w.finishing = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.streaming && w.declared < 0 && w.hasTrailers() && w.req.ProtoAtLeast(1, 1) {
		w.startStream() // trailers need the chunked framing
	}
	if w.streaming {
		if w.chunked {
			_, _ = w.c.bw.WriteString("0\r\n")
			w.writeTrailers()
			_, _ = w.c.bw.WriteString("\r\n")
		} else if w.declared >= 0 && w.written < w.declared && w.req.Method != http.MethodHead {
			w.closeAfter = true // short of what it declared: the client cannot find the next response
		}
	} else {
		if w.declared >= 0 && w.written != w.declared && w.req.Method != http.MethodHead && BodyAllowed(w.status) {
			delete(w.header, "Content-Length") // a wrong length is not sent; the real one is
			w.declared = -1
		}
		w.writeHead(w.status, false)
		if w.req.Method != http.MethodHead {
			_, _ = w.c.bw.Write(w.body)
		}
	}
	w.flush()
	if w.bodyBuf != nil {
		*w.bodyBuf = w.body[:0]
		bodyPool.Put(w.bodyBuf)
		w.bodyBuf, w.body = nil, nil
	}
	return !w.failed
}

// hasTrailers says the handler set trailers: header keys with
// http.TrailerPrefix, as with net/http.
func (w *response) hasTrailers() bool {
	for k := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// writeTrailers writes the trailers after a chunked body's last chunk;
// the fields that frame the message are not sent.
func (w *response) writeTrailers() {
	b := w.scratch[:0]
	for k, vs := range w.header {
		name, ok := strings.CutPrefix(k, http.TrailerPrefix)
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			continue
		}
		switch http.CanonicalHeaderKey(name) {
		case "Content-Length", "Transfer-Encoding", "Trailer", "Host", "Connection":
			continue
		}
		for _, v := range vs {
			b = append(b, name...)
			b = append(b, ": "...)
			b = appendFieldValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	w.scratch = b
	_, _ = w.c.bw.Write(b)
}

// writeHead writes the status line and headers, adding Date, the
// length of a buffered body and the connection's fate.
func (w *response) writeHead(status int, streaming bool) {
	bw := w.c.bw
	b := w.scratch[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\n"...)
	final := status >= 200 || status == http.StatusSwitchingProtocols
	if final {
		h := w.header
		if fieldValue(h, "Connection") == "close" || w.req.Close || w.c.s.closing.Load() || w.c.s.noKeep.Load() ||
			w.c.expecting != nil && w.c.expecting.unasked() && status != http.StatusSwitchingProtocols ||
			w.c.bodyLeft(w.req, w.finishing) && status != http.StatusSwitchingProtocols {
			// (A body failed, or, the handler done, too much of it left to
			// read past: the connection closes after the answer, which
			// says so, as RFC 9112, 9.6 asks. A head a handler sends before
			// it reads the body, as a full-duplex one does, says nothing
			// of what it will leave.)
			w.closeAfter = true
		}
		// The framing is the server's: a handler's Transfer-Encoding would
		// contradict the length or chunking written here.
		delete(h, "Transfer-Encoding")
		switch {
		case !BodyAllowed(status):
			delete(h, "Content-Length")
		case streaming && w.chunked:
			delete(h, "Content-Length")
			h["Transfer-Encoding"] = []string{"chunked"}
		case !streaming && w.declared < 0:
			n := len(w.body)
			if w.req.Method == http.MethodHead {
				n = int(w.written)
			}
			if w.req.Method != http.MethodHead || n > 0 {
				b = append(b, "Content-Length: "...)
				b = strconv.AppendInt(b, int64(n), 10)
				b = append(b, "\r\n"...)
			}
		}
		if _, ok := h["Content-Type"]; !ok && BodyAllowed(status) && len(w.body) > 0 {
			b = append(b, "Content-Type: "...)
			b = append(b, http.DetectContentType(w.body)...)
			b = append(b, "\r\n"...)
		}
		if _, ok := h["Date"]; !ok {
			b = append(b, "Date: "...)
			b = append(b, httpDate()...)
			b = append(b, "\r\n"...)
		}
		if w.closeAfter {
			delete(h, "Connection")
			b = append(b, "Connection: close\r\n"...)
		} else if w.req.ProtoMajor == 1 && w.req.ProtoMinor == 0 {
			delete(h, "Connection")
			b = append(b, "Connection: keep-alive\r\n"...)
		}
	}
	w.keys = w.keys[:0]
	for k := range w.header {
		w.keys = append(w.keys, k)
	}
	slices.Sort(w.keys)
	for _, k := range w.keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range w.header[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendFieldValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	w.scratch = b
	if _, err := bw.Write(b); err != nil {
		w.failed = true
	}
}

// appendFieldValue appends v with the bytes a header value may not hold
// (CR, LF, NUL) replaced by spaces, as net/http does, and trimmed.
func appendFieldValue(b []byte, v string) []byte {
	v = strings.TrimSpace(v)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' || c == 0 {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// fieldValue is h.Get(name) for a name in canonical form, without
// canonicalising it again.
func fieldValue(h http.Header, name string) string {
	if vs := h[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// BodyAllowed reports whether a response of status may have a body: not
// a 1xx, 204 or 304 (RFC 9110, 6.4.1).
func BodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == http.StatusNoContent || status == http.StatusNotModified)
}

// httpDate is the Date header's value, formatted once a second.
func httpDate() string {
	now := time.Now().Unix()
	if d := date.Load(); d != nil && d.unix == now {
		return d.text
	}
	d := &dated{unix: now, text: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	date.Store(d)
	return d.text
}

type dated struct {
	unix int64
	text string
}

var date atomic.Pointer[dated]
