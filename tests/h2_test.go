package tests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2RequestBodies: over h2c, through an upstream version, requests
// whose bodies the gateway must tell apart: a stream that ended with its
// head (no body to read), and one that declared content-length: 0 but
// stays open for trailers, which reach the upstream; both on one
// connection, which the second request finds still open. Then requests
// whose method or path HTTP/1.1 could not carry: 400, the client's fault,
// never reaching the upstream nor counted against its version.
func TestH2RequestBodies(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %q trailer=%q", r.Method, b, r.Trailer.Get("X-Req"))
	}))
	t.Cleanup(up.Close)
	g := serveUpstream(t, "native", up.URL)
	c := dialGateway(t, g)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	block := func(fields ...string) []byte {
		hb.Reset()
		for i := 0; i < len(fields); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return bytes.Clone(hb.Bytes())
	}
	// answer reads frames until stream's answer has ended, and returns its body.
	answer := func(stream uint32) string {
		t.Helper()
		var body []byte
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("stream %d: reading: %v (body so far %q)", stream, err, body)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.GoAwayFrame:
				t.Fatalf("stream %d: the gateway closed the connection: %v", stream, f.ErrCode)
			case *http2.RSTStreamFrame:
				t.Fatalf("stream %d: reset: %v (body so far %q)", f.StreamID, f.ErrCode, body)
			case *http2.DataFrame:
				if f.StreamID != stream {
					continue
				}
				body = append(body, f.Data()...)
				if f.StreamEnded() {
					return string(body)
				}
			}
		}
	}

	// A content-length of 0, the stream left open, then trailers.
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
		BlockFragment: block(":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/x", "content-length", "0", "trailer", "X-Req")})
	time.Sleep(50 * time.Millisecond) // the gateway has the request before its trailers
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true, BlockFragment: block("x-req", "t1")})
	if got, want := answer(1), `POST "" trailer="t1"`; got != want {
		t.Errorf("declared empty, then trailers: the upstream saw %s, want %s", got, want)
	}
	// The stream ended with its head.
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: true, EndStream: true,
		BlockFragment: block(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/y")})
	if got, want := answer(3), `GET "" trailer=""`; got != want {
		t.Errorf("no body: the upstream saw %s, want %s", got, want)
	}

	for i, c := range []struct{ method, path string }{{"GET", "/users?a=b c"}, {"FO(O", "/x"}} {
		stream := uint32(5 + 2*i)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, EndHeaders: true, EndStream: true,
			BlockFragment: block(":method", c.method, ":scheme", "http", ":authority", "a", ":path", c.path)})
		if got := answer(stream); !strings.HasPrefix(got, "wasmesh: Bad Request: invalid method") {
			t.Errorf("%s %q over h2: answered %q, want a 400 naming it", c.method, c.path, got)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("the upstream got %d requests, want the 2 valid ones", n)
	}
	if n := metric(t, g, `wasmesh_client_errors_total{reason="bad_request",service=""}`); n != "2" {
		t.Errorf(`wasmesh_client_errors_total{reason="bad_request"} = %q, want 2`, n)
	}
	if _, body, _ := get(t, g.admin+"/metrics"); strings.Contains(body, `status="4xx"`) || strings.Contains(body, `status="5xx"`) {
		t.Errorf("a request refused at the edge is in wasmesh_requests_total:\n%s", grepLines(body, "wasmesh_requests_total"))
	}
}

// TestH2MaxHeaders: http.max_headers bounds an HTTP/2 request's header
// fields as it bounds an HTTP/1 request's (net/http's HTTP/2 server bounds
// their bytes only): 431, counted as the client's too_many_headers.
func TestH2MaxHeaders(t *testing.T) {
	g := serve(t, `
http: { max_headers: 20 }
services:
  hello: { versions: [ { path: $EX/hello/zig/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2c}}
	get := func(fields int) int {
		req, _ := http.NewRequest("GET", g.url+"/x", nil)
		for i := range fields {
			req.Header.Set(fmt.Sprintf("X-F%d", i), "v")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("answered over %s, want HTTP/2", resp.Proto)
		}
		return resp.StatusCode
	}
	if got := get(10); got != 200 {
		t.Errorf("10 fields over h2c: %d, want 200", got)
	}
	if got := get(30); got != 431 {
		t.Errorf("30 fields over h2c, max_headers 20: %d, want 431", got)
	}
	if n := metric(t, g, `wasmesh_client_errors_total{reason="too_many_headers",service=""}`); n != "1" {
		t.Errorf(`wasmesh_client_errors_total{reason="too_many_headers"} = %q, want 1`, n)
	}
	// A gateway without tls has no SVID: no expiry exported (a 0 would
	// fire every expiry alert).
	if v := metric(t, g, "wasmesh_svid_expiry_timestamp_seconds"); v != "" {
		t.Errorf("without tls, wasmesh_svid_expiry_timestamp_seconds = %s, want none", v)
	}
}

// TestH2ShutWindowCut: a client that keeps its HTTP/2 streams' window
// shut (an initial window of 0), so that no answer's body can be sent,
// has each stream reset once http.send_timeout passed after its handler
// returned, instead of holding the stream and its goroutine for good.
func TestH2ShutWindowCut(t *testing.T) {
	g := serve(t, `
http: { send_timeout: 300ms }
services:
  hello: { versions: [ { path: $EX/hello/rust/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	_, fr := h2Client(t, g, 10*time.Second, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	hb := getBlock("/")
	began := time.Now()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true, BlockFragment: hb})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("stream 1 was not reset: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				fr.WritePing(true, f.Data)
			}
		case *http2.DataFrame:
			if len(f.Data()) > 0 {
				t.Fatalf("%d bytes of body sent with the window shut", len(f.Data()))
			}
		case *http2.RSTStreamFrame:
			if took := time.Since(began); f.StreamID != 1 || took < 300*time.Millisecond {
				t.Fatalf("stream %d reset after %s, want stream 1 after send_timeout", f.StreamID, took)
			}
			return
		}
	}
}

// TestNULInPathRefused: a path with a NUL once decoded is the client's
// 400, before routing (the data plane's check, which h2 requests pass
// too): no guest sees it.
func TestNULInPathRefused(t *testing.T) {
	g := serve(t, `
services:
  hello: { versions: [ { path: $EX/hello/rust/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	status, body, _ := get(t, g.url+"/admin%00/x")
	if status != 400 || !strings.Contains(body, "NUL") {
		t.Errorf("GET /admin%%00/x: %d %q, want 400 naming the NUL", status, body)
	}
	if n := metric(t, g, `wasmesh_client_errors_total{reason="bad_request",service=""}`); n != "1" {
		t.Errorf(`wasmesh_client_errors_total{reason="bad_request"} = %q, want 1`, n)
	}
}

// TestH2NoResetAfterTheEnd: streams answered in full are never reset
// afterwards by the send timeout set as their handlers return (a deadline
// net/http may apply after the frame that ended the stream). Hundreds of
// streams in flight at once, then a wait past http.send_timeout: no
// RST_STREAM comes.
func TestH2NoResetAfterTheEnd(t *testing.T) {
	g := serve(t, `
http: { send_timeout: 100ms }
services:
  hello: { versions: [ { path: $EX/hello/rust/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	_, fr := h2Client(t, g, 20*time.Second)
	hb := getBlock("/")
	const rounds, streams = 8, 64
	id := uint32(1)
	var ended time.Time
	for range rounds {
		open := map[uint32]bool{}
		for range streams {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: hb})
			open[id] = true
			id += 2
		}
		for len(open) > 0 {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("%d streams unanswered: %v", len(open), err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.RSTStreamFrame:
				t.Fatalf("stream %d reset (%v) before its answer ended", f.StreamID, f.ErrCode)
			case *http2.DataFrame:
				if f.StreamEnded() {
					delete(open, f.StreamID)
				}
				if n := len(f.Data()); n > 0 {
					fr.WriteWindowUpdate(0, uint32(n))
				}
			case *http2.HeadersFrame:
				if f.StreamEnded() {
					delete(open, f.StreamID)
				}
			}
		}
		ended = time.Now()
	}
	// Past the send timeout: a PING's answer marks how far the server's
	// frames have been read.
	time.Sleep(time.Until(ended.Add(300 * time.Millisecond)))
	fr.WritePing(false, [8]byte{1})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			t.Fatalf("stream %d reset (%v) after its answer ended", f.StreamID, f.ErrCode)
		case *http2.PingFrame:
			if f.IsAck() {
				return
			}
		}
	}
}

// TestH2ConnectionTakingNoBytesClosed: an HTTP/2 client that opens its
// windows wide, asks for more than the sockets' buffers hold and reads
// nothing has its connection closed once http.send_timeout passed with no
// byte taken, instead of holding it and its streams for good.
func TestH2ConnectionTakingNoBytesClosed(t *testing.T) {
	g := serve(t, `
http: { send_timeout: 300ms }
services:
  big: { versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: big }
`)
	const wide = 1<<31 - 1
	c, fr := h2Client(t, g, 30*time.Second, http2.Setting{ID: http2.SettingInitialWindowSize, Val: wide})
	fr.WriteWindowUpdate(0, wide-65535)
	hb := getBlock("/?do=big&arg=2097152")
	const streams = 32 // 64 MiB of answers
	for i := range streams {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), EndHeaders: true, EndStream: true, BlockFragment: hb})
	}
	time.Sleep(2 * time.Second) // the buffers fill; past send_timeout
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after %d bytes: %v", n, err)
	}
	if n >= streams<<21 {
		t.Fatalf("all %d bytes were sent: the gateway's writes never waited", n)
	}
	t.Logf("closed after %d bytes (%v)", n, err)
}

// h2Client is a raw HTTP/2 connection to g's listener (prior knowledge,
// h2c) with its deadline in d and its SETTINGS sent, and its framer.
func h2Client(t *testing.T, g *gateway, d time.Duration, settings ...http2.Setting) (net.Conn, *http2.Framer) {
	t.Helper()
	c := dialGateway(t, g)
	c.SetDeadline(time.Now().Add(d))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings(settings...)
	return c, fr
}

// getBlock is the header block of a GET of path, for a HEADERS frame.
func getBlock(path string) []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return hb.Bytes()
}
