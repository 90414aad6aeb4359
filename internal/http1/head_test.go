package http1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// headSeeds are request heads (and bodies) that readHead and net/http are
// compared on.
var headSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n",
	"GET /%41b%2Fc?x=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET http://other.example/abs?q HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET https://u:p@h/ HTTP/1.1\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	"CONNECT /rpc HTTP/1.1\r\nHost: x\r\n\r\n",
	"PURGE /cache HTTP/1.1\r\nHost: x\r\n\r\n",
	"get / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: Keep-Alive, foo\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade, CLOSE\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nconnection: keep-alive\r\nconnection: close\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\nx-lower-case: 1\r\nX-UPPER: 2\r\nx-Mixed-CASE: 3\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\nX-A: 4\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Spaces:    \t  \r\nX-Inner: a  b\t c  \r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-Tab:\tv\t\r\nX-High: caf\xc3\xa9 \xff\r\n\r\n",
	"GET / HTTP/1.1\nHost: x\nX-Bare-LF: 1\n\n",
	"GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\nCache-Control: max-age=3\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n1234567",
	"POST /p HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
	"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
	"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
	"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, x-other\r\nTrailer: ,X-Third,\r\n\r\n1\r\na\r\n0\r\nX-Sum: 1\r\n\r\n",
	"POST /c HTTP/1.1\r\nHost: x\r\nTrailer: X-Sum\r\nContent-Length: 1\r\n\r\na",
	"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n",
	"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
	"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chun\u212Aed\r\n\r\n0\r\n\r\n",
	"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
	"GET / HTTP/0.9\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\r\nHost: x\r\n\r\n",
	"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET\r\n\r\n",
	"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET %zz HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET a/b HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\n: empty name\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: \x7f\r\n\r\n",
	"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.0\nX: 0\n\r\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\r \r\n\r\n",
	"POST / HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\nTrailer: \n\n0\r\n\r\n",
}

// TestReadAsNetHTTP builds requests from the heads in headSeeds, and
// responses (to a GET and to a HEAD) from those in responseSeeds
// (clienthead_test.go), and compares them with what net/http's parsers
// (and its server's checks after them) make of the same bytes.
func TestReadAsNetHTTP(t *testing.T) {
	for _, raw := range headSeeds {
		compareWithNetHTTP(t, raw)
	}
	for _, raw := range responseSeeds {
		compareResponse(t, raw, false)
		compareResponse(t, raw, true)
	}
}

// FuzzReadRequest compares readHead with net/http on arbitrary heads.
func FuzzReadRequest(f *testing.F) {
	for _, raw := range headSeeds {
		f.Add(raw)
	}
	f.Fuzz(compareWithNetHTTP)
}

// compareWithNetHTTP reads raw's first request with readHead and with
// http.ReadRequest: either both refuse it (or ours does, for what RFC 9112
// asks more than net/http), or they make the same request and body of it.
func compareWithNetHTTP(t *testing.T, raw string) {
	c := &conn{s: &Server{}, br: bufio.NewReaderSize(strings.NewReader(raw), bufSize)}
	ours, oursErr := c.readHead()
	defer c.releaseHead()
	// Up to four empty lines before the request line are skipped (RFC
	// 9112, 2.2), which net/http does not do.
	theirsRaw := raw
	for range 4 {
		if r, ok := strings.CutPrefix(theirsRaw, "\r\n"); ok {
			theirsRaw = r
		} else if r, ok := strings.CutPrefix(theirsRaw, "\n"); ok {
			theirsRaw = r
		}
	}
	theirs, theirsErr := http.ReadRequest(bufio.NewReader(strings.NewReader(theirsRaw)))
	if theirsErr == nil {
		theirsErr = serverChecks(theirs, hostField(theirsRaw))
	}
	var he *headError
	switch {
	case oursErr != nil && theirsErr != nil:
		return
	case oursErr != nil && errors.As(oursErr, &he) && stricterThanNetHTTP[he.reason]:
		return
	case oursErr != nil:
		t.Fatalf("%q: refused (%v), net/http reads it", raw, oursErr)
	case theirsErr != nil:
		t.Fatalf("%q: read, net/http refuses it (%v)", raw, theirsErr)
	}
	for _, f := range []struct {
		name       string
		got, wants any
	}{
		{"method", ours.Method, theirs.Method},
		{"URL", ours.URL, theirs.URL},
		{"proto", [3]any{ours.Proto, ours.ProtoMajor, ours.ProtoMinor}, [3]any{theirs.Proto, theirs.ProtoMajor, theirs.ProtoMinor}},
		{"header", ours.Header, theirs.Header},
		{"host", ours.Host, theirs.Host},
		{"close", ours.Close, theirs.Close},
		{"content length", ours.ContentLength, theirs.ContentLength},
		{"transfer encoding", ours.TransferEncoding, theirs.TransferEncoding},
		{"trailer", ours.Trailer, theirs.Trailer},
		{"request URI", ours.RequestURI, theirs.RequestURI},
	} {
		if !reflect.DeepEqual(f.got, f.wants) {
			t.Fatalf("%q: %s %#v, net/http %#v", raw, f.name, f.got, f.wants)
		}
	}
	ob, oerr := io.ReadAll(ours.Body)
	tb, terr := io.ReadAll(theirs.Body)
	// The bodies' readers were not changed with the head's: where
	// net/http's fails to read a body (its chunked trailers on a bare LF),
	// ours may read it; where ours fails, net/http's fails or the framing
	// is one ours refuses.
	if oerr != nil && terr == nil && !errors.Is(oerr, ErrMalformedBody) {
		t.Fatalf("%q: body error %v, net/http reads %q", raw, oerr, tb)
	}
	if oerr == nil && terr == nil && (string(ob) != string(tb) || !reflect.DeepEqual(ours.Trailer, theirs.Trailer)) {
		t.Fatalf("%q: body %q trailer %v, net/http %q %v", raw, ob, ours.Trailer, tb, theirs.Trailer)
	}
}

// stricterThanNetHTTP are the refusals (Server.Refused's reasons) where
// RFC 9112 asks more than net/http does; readHead may refuse where net/http
// reads.
var stricterThanNetHTTP = map[string]bool{
	"content_length_and_transfer_encoding": true,
	"bad_content_length":                   true,
	"bad_transfer_encoding":                true, // on HTTP/1.0, which net/http ignores
	"obs_fold":                             true,
	"request_line_too_long":                true,
	"header_too_large":                     true,
	"too_many_headers":                     true,
	"bad_request_target":                   true, // "*" but for OPTIONS, a URL of another scheme or none
	"bad_host":                             true, // an unclosed IP literal, a port not of digits
}

// serverChecks are what the server refuses in a request that
// http.ReadRequest read: as net/http's server does, but for Host, where
// it is stricter, as it was before requests were built from the head:
// an empty Host on HTTP/1.1 is refused (net/http takes it), CONNECT to a
// path needs a Host too, and a malformed Host field beside an absolute
// URL is refused (as net/http does) as bad_host, one of ours.
func serverChecks(req *http.Request, hasHost bool) error {
	switch {
	case req.ProtoMajor != 1:
		return errors.New("unsupported protocol version")
	case req.ProtoAtLeast(1, 1) && !hasHost && req.Method != "CONNECT":
		return errors.New("missing required Host header") // though the URL has a host
	case req.ProtoAtLeast(1, 1) && req.Host == "":
		return errors.New("empty Host header")
	case !httpguts.ValidHostHeader(req.Host):
		return errors.New("malformed Host header")
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return errors.New("invalid header name")
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return errors.New("invalid header value")
			}
		}
	}
	return nil
}

// hostField reports whether raw's head has a Host field, which
// http.ReadRequest takes out of the header it returns.
func hostField(raw string) bool {
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(raw)))
	if _, err := tp.ReadLine(); err != nil {
		return false
	}
	h, _ := tp.ReadMIMEHeader()
	return len(h["Host"]) > 0
}

// targetSeeds are request targets parseOriginForm and url.ParseRequestURI
// are compared on.
var targetSeeds = []string{
	"/", "/a/b", "/a/b?c=d&e", "/a/b?", "/?", "/?x", "//x/y", "///", "/a//b", "/a?b?c", "/a?b#c", "/a#b",
	"/~user/.././x", "/a;b=c,d/e:f@g$h&i+j", "/%41", "/a%2Fb", "/a%zz", "/a!b", "/a(b)*c'd", "/café", "/a\\b",
	"/a?q=%zz", "/a?q=caf\xc3\xa9", "/a?q=a b", "/a?q=\x7f", "/a\x00", "/a?\t", "*", "a/b", "", "http://h/p", "/a[b]", "/a{b}|c^d`e",
	"/a\"b<c>", "/a?b=\"<>{}|", "/a?b=[1]",
}

// TestParseOriginForm checks that parseOriginForm either leaves a target
// to url.ParseRequestURI or parses it into the same URL, and that it takes
// the common targets itself.
func TestParseOriginForm(t *testing.T) {
	for _, target := range targetSeeds {
		compareOriginForm(t, target)
	}
	for _, target := range []string{"/", "/a/b", "/a/b?c=d&e", "/a;b=c,d/e:f@g$h&i+j", "/api/v1/users/42?fields=name,email&sort=-id"} {
		if !parseOriginForm(&url.URL{}, target) {
			t.Errorf("parseOriginForm(%q) left it to ParseRequestURI", target)
		}
	}
}

// FuzzParseOriginForm compares parseOriginForm with url.ParseRequestURI on
// arbitrary targets.
func FuzzParseOriginForm(f *testing.F) {
	for _, target := range targetSeeds {
		f.Add(target)
	}
	f.Fuzz(compareOriginForm)
}

func compareOriginForm(t *testing.T, target string) {
	var u url.URL
	if !parseOriginForm(&u, target) {
		if u != (url.URL{}) {
			t.Errorf("parseOriginForm(%q) returned false but set %+v", target, u)
		}
		return
	}
	want, err := url.ParseRequestURI(target)
	switch {
	case err != nil:
		t.Errorf("parseOriginForm(%q) = %+v, but url.ParseRequestURI refuses it: %v", target, u, err)
	case u != *want:
		t.Errorf("parseOriginForm(%q) = %+v, url.ParseRequestURI: %+v", target, u, *want)
	}
}

// BenchmarkReadHead reads a browser-like request head with readHead and,
// as the reference, with http.ReadRequest (what the server did before).
func BenchmarkReadHead(b *testing.B) {
	const head = "GET /api/users/42?fields=name,email HTTP/1.1\r\nHost: users.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: application/json\r\n" +
		"Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-GB,en;q=0.9\r\n" +
		"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n"
	var r strings.Reader
	br := bufio.NewReaderSize(&r, bufSize)
	b.Run("readHead", func(b *testing.B) {
		c := &conn{s: &Server{}, br: br}
		b.ReportAllocs()
		for range b.N {
			r.Reset(head)
			br.Reset(&r)
			if _, err := c.readHead(); err != nil {
				b.Fatal(err)
			}
			c.releaseHead()
		}
	})
	b.Run("net/http", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			r.Reset(head)
			br.Reset(&r)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}
