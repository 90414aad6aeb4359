package mesh

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

// TestUpstreamUnaskedSwitch: an upstream answering 101 to a request that
// asked for no upgrade it may take (none, or h2c, which the gateway does
// not pass on) gets the client a 502, and the client's bytes after it
// never reach the upstream raw: no tunnel past the gateway's routing.
func TestUpstreamUnaskedSwitch(t *testing.T) {
	raw := make(chan string, 16) // what the upstream read after its 101s
	addr := testutil.RawServer(t, func(conn net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		upgrade := ""
		if strings.HasSuffix(req.URL.Path, "/h2c") {
			upgrade = "Upgrade: h2c\r\n"
		}
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"+upgrade+"\r\n")
		b := make([]byte, 512)
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, _ := br.Read(b); n > 0 {
			raw <- string(b[:n])
		}
	})
	f := newFixture(t, `
drain_delay: 0s
services:
  native: { versions: [ { upstream: { endpoints: [ "http://`+addr+`" ] } } ] }
routes:
  - { match: { path_prefix: /p }, service: native }
`)
	base := strings.TrimPrefix(serveFixture(t, f), "http://")
	for _, tc := range []struct{ path, head string }{
		{"/p/none", ""},
		{"/p/h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"},
	} {
		conn, err := net.Dial("tcp", base)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET "+tc.path+" HTTP/1.1\r\nHost: a\r\n"+tc.head+"\r\n")
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: %d %q, want 502", tc.path, resp.StatusCode, body)
		}
		io.WriteString(conn, "GET /internal-admin HTTP/1.1\r\nHost: internal\r\n\r\n")
	}
	select {
	case got := <-raw:
		t.Fatalf("the upstream read %q from the client after its 101", got)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestOptionsAsterisk: OPTIONS * asks about the gateway, not a service's
// resource: answered 200 by the gateway, never sent on as "/*".
func TestOptionsAsterisk(t *testing.T) {
	var reached atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	t.Cleanup(upstream.Close)
	conn := dialProxy(t, upstream.URL)
	br := bufio.NewReader(conn)
	for i, want := range []int64{0, 1} {
		io.WriteString(conn, []string{"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "GET /after HTTP/1.1\r\nHost: a\r\n\r\n"}[i])
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || reached.Load() != want {
			t.Fatalf("request %d: %d, the upstream reached %d times; want 200 and %d", i, resp.StatusCode, reached.Load(), want)
		}
	}
}

// TestUpstreamHostOfHTTP10: an HTTP/1.0 request without a Host field
// reaches the upstream with the endpoint's own, not an empty one.
func TestUpstreamHostOfHTTP10(t *testing.T) {
	hosts := make(chan string, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hosts <- r.Host }))
	t.Cleanup(upstream.Close)
	conn := dialProxy(t, upstream.URL)
	io.WriteString(conn, "GET /x HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := <-hosts, strings.TrimPrefix(upstream.URL, "http://"); resp.StatusCode != 200 || got != want {
		t.Errorf("%d, the upstream saw Host %q; want 200 and %q", resp.StatusCode, got, want)
	}
}

// dialProxy serves a gateway whose one route, for every path, is to an
// upstream version of endpoint, and returns a connection to it, with a
// deadline of 5 s.
func dialProxy(t *testing.T, endpoint string) net.Conn {
	t.Helper()
	f := newFixture(t, `
drain_delay: 0s
services:
  native: { versions: [ { upstream: { endpoints: [ "`+endpoint+`" ] } } ] }
routes:
  - { match: { path_prefix: / }, service: native }
`)
	conn, err := net.Dial("tcp", strings.TrimPrefix(serveFixture(t, f), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	return conn
}

// TestUpstreamStripPrefixKeepsEscapes: strip_prefix takes the prefix off
// the path as the client sent it: an escaped "/" (%2F) stays escaped.
func TestUpstreamStripPrefixKeepsEscapes(t *testing.T) {
	paths := make(chan string, 2)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { paths <- r.URL.EscapedPath() }))
	t.Cleanup(upstream.Close)
	f := newFixture(t, `
drain_delay: 0s
services:
  native: { versions: [ { upstream: { endpoints: [ "`+upstream.URL+`" ] } } ] }
routes:
  - { match: { path_prefix: /strip }, service: native, strip_prefix: true }
`)
	base := serveFixture(t, f)
	for sent, want := range map[string]string{"/strip/a%2Fb": "/a%2Fb", "/strip/a/b": "/a/b"} {
		resp, err := http.Get(base + sent)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := <-paths; resp.StatusCode != 200 || got != want {
			t.Errorf("%s: %d, the upstream saw %q; want %q", sent, resp.StatusCode, got, want)
		}
	}
}
