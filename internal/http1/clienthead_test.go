package http1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

// responseSeeds are response heads (and bodies) that the client's readHead
// and net/http are compared on, each for a GET and for a HEAD.
var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 999 Weird\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Sun, 06 Dec 2026 09:00:00 GMT\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 299 Whatever Reason Here\r\ncontent-length: 1\r\nx-lower: a\r\nX-UPPER: b\r\n\r\nz",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, X-Other\r\n\r\n1\r\na\r\n0\r\nX-Sum: 9\r\nX-Late: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chun\u212Aed\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 1\r\n\r\na",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nuntil the connection ends",
	"HTTP/1.0 200 OK\r\n\r\nto the end",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: Upgrade, close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\n\tc\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n X-First: folded\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Empty-Then-Folded:\r\n 1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Folded-Blank: 0\r\n \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Spaces:  a b  \r\nX-High: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\nContent-Length: 1\r\n\r\na",
	"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 1\n\nb",
	"HTTP/1.1  200  OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 20 OK\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 -20 OK\r\n\r\n",
	"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/0.9 200 OK\r\n\r\n",
	"HTTP/0.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1\r\n\r\n",
	"garbage\r\n\r\n",
	"",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
}

// FuzzReadResponse compares readHead with net/http on arbitrary
// responses, to a GET or to a HEAD.
func FuzzReadResponse(f *testing.F) {
	for _, head := range []bool{false, true} {
		for _, raw := range responseSeeds {
			f.Add(raw, head)
		}
	}
	f.Fuzz(compareResponse)
}

// compareResponse reads raw as the response to a GET (a HEAD if head)
// with readHead and with http.ReadResponse: either both refuse it (or ours
// does, for a field name with a space before the colon), or they make the
// same response and body of it.
func compareResponse(t *testing.T, raw string, head bool) {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	if head {
		req.Method = http.MethodHead
	}
	cc := &clientConn{br: bufio.NewReaderSize(strings.NewReader(raw), 4<<10)}
	ours, oursErr := cc.readHead(req)
	theirs, theirsErr := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), req)
	switch {
	case oursErr != nil && theirsErr != nil:
		return
	case oursErr != nil && errors.Is(oursErr, ErrMalformedResponse) && spaceBeforeColon(theirs.Header):
		return
	case oursErr != nil && errors.Is(oursErr, ErrMalformedResponse) && (theirs.StatusCode < 100 || theirs.StatusCode > 599):
		return // RFC 9110 (15) has 100 to 599; net/http reads any three digits
	case oursErr != nil && errors.Is(oursErr, ErrMalformedResponse) && theirs.ProtoAtLeast(1, 0) && !theirs.ProtoAtLeast(1, 1) &&
		strings.Contains(oursErr.Error(), "Transfer-Encoding in an HTTP/1.0 response"):
		return // RFC 9112 (6.1): faulty framing, which net/http reads to the connection's end
	case oursErr != nil:
		t.Fatalf("%q (%s): refused (%v), net/http reads it", raw, req.Method, oursErr)
	case theirsErr != nil:
		t.Fatalf("%q (%s): read, net/http refuses it (%v)", raw, req.Method, theirsErr)
	}
	if theirs.Close { // net/http drops "Connection: close" but not the fields it names, which go with it
		tp := textproto.NewReader(bufio.NewReader(strings.NewReader(raw)))
		tp.ReadLine()
		if mh, err := tp.ReadMIMEHeader(); err == nil {
			for _, c := range mh["Connection"] {
				for _, name := range strings.Split(c, ",") {
					if name = textproto.TrimString(name); !strings.EqualFold(name, "close") {
						delete(theirs.Header, textproto.CanonicalMIMEHeaderKey(name))
					}
				}
			}
		}
	}
	for _, f := range []struct {
		name       string
		got, wants any
	}{
		{"status", [2]any{ours.Status, ours.StatusCode}, [2]any{theirs.Status, theirs.StatusCode}},
		{"proto", [3]any{ours.Proto, ours.ProtoMajor, ours.ProtoMinor}, [3]any{theirs.Proto, theirs.ProtoMajor, theirs.ProtoMinor}},
		{"header", ours.Header, theirs.Header},
		{"close", ours.Close, theirs.Close},
		{"content length", ours.ContentLength, theirs.ContentLength},
		{"transfer encoding", ours.TransferEncoding, theirs.TransferEncoding},
		{"trailer", ours.Trailer, theirs.Trailer},
		{"no body", ours.Body == http.NoBody, theirs.Body == http.NoBody},
	} {
		if !reflect.DeepEqual(f.got, f.wants) {
			t.Fatalf("%q (%s): %s %#v, net/http %#v", raw, req.Method, f.name, f.got, f.wants)
		}
	}
	ob, oerr := io.ReadAll(ours.Body)
	tb, terr := io.ReadAll(theirs.Body)
	switch {
	case oerr == nil && terr == nil:
		if string(ob) != string(tb) || !reflect.DeepEqual(ours.Trailer, theirs.Trailer) {
			t.Fatalf("%q (%s): body %q trailer %v, net/http %q %v", raw, req.Method, ob, ours.Trailer, tb, theirs.Trailer)
		}
	case oerr != nil && terr == nil && !spaceBeforeColon(theirs.Trailer):
		t.Fatalf("%q (%s): body error %v, net/http reads %q", raw, req.Method, oerr, tb)
	}
	// Where net/http fails to read trailers ours reads (ended by a bare
	// LF), ours may read more.
}

// spaceBeforeColon says whether net/http read a field name with a space
// before its colon into h, which readHead refuses.
func spaceBeforeColon(h http.Header) bool {
	for k := range h {
		if strings.ContainsAny(k, " ") {
			return true
		}
	}
	return false
}

// BenchmarkReadResponseHead reads a typical upstream response head with
// readHead and, as the reference, with http.ReadResponse (what the client
// did before).
func BenchmarkReadResponseHead(b *testing.B) {
	const raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Sun, 06 Dec 2026 09:00:00 GMT\r\n" +
		"Cache-Control: no-store\r\nX-Request-Id: 5f0c3a9e-7d2b-4c61-9d7e-0b8a1f2e3c4d\r\nContent-Length: 2\r\n\r\n{}"
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	var r strings.Reader
	br := bufio.NewReaderSize(&r, 4<<10)
	for _, bc := range []struct {
		name string
		read func() (*http.Response, error)
	}{
		{"readHead", func() (*http.Response, error) { return (&clientConn{br: br}).readHead(req) }},
		{"net/http", func() (*http.Response, error) { return http.ReadResponse(br, req) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				r.Reset(raw)
				br.Reset(&r)
				resp, err := bc.read()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestResponseStatusRange: a status code outside 100 to 599 (RFC 9110, 15)
// is a malformed response, not an informational one to wait past or a
// status to pass on.
func TestResponseStatusRange(t *testing.T) {
	for _, raw := range []string{"HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 099 X\r\n\r\n", "HTTP/1.1 600 X\r\n\r\n", "HTTP/1.1 999 Weird\r\n\r\n"} {
		req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		cc := &clientConn{br: bufio.NewReaderSize(strings.NewReader(raw), 4<<10)}
		if resp, err := cc.readHead(req); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("%q: %v, %v; want ErrMalformedResponse", raw, resp, err)
		}
	}
}
