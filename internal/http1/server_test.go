package http1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/internal/testutil"
)

// echo answers with what it was asked, for the tests: method, path, body
// length and body, and a few behaviours chosen by path.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/nocontent":
		w.WriteHeader(http.StatusNoContent)
		fmt.Fprint(w, "dropped")
		return
	case "/notmodified":
		w.WriteHeader(http.StatusNotModified)
		return
	case "/big": // past the buffer, no length: chunked on HTTP/1.1
		w.Header().Set("Content-Type", "text/plain")
		for i := 0; i < 100; i++ {
			fmt.Fprintf(w, "%04d%s\n", i, strings.Repeat("x", 1000))
		}
		return
	case "/biglength": // past the buffer, with its length: streamed as it is
		w.Header().Set("Content-Length", "200000")
		for i := 0; i < 200; i++ {
			w.Write([]byte(strings.Repeat("y", 1000)))
		}
		return
	case "/inject":
		w.Header().Set("X-Evil", "a\r\nInjected: yes")
		w.Header().Set("Transfer-Encoding", "chunked") // not the server's framing: dropped
	case "/close":
		w.Header().Set("Connection", "close")
	case "/panic":
		panic("test panic")
	case "/host":
		fmt.Fprint(w, r.Host)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s %d %s", r.Method, r.URL.RequestURI(), len(body), body)
})

// serve starts s (echo unless it has a handler) on loopback and returns
// its address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	if s.Handler == nil {
		s.Handler = echo
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// dial connects to addr, for at most 10 s, closed when the test ends.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// exchange writes raw to a new connection and reads the responses to the
// requests in it, until the server closes the connection or want
// responses arrived; it says whether the connection was closed.
func exchange(t *testing.T, addr, raw string, want int) (resps []*http.Response, bodies []string, closed bool) {
	t.Helper()
	c := dial(t, addr)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	reqs := readRequests(t, raw)
	for i := 0; i < want; i++ {
		var req *http.Request
		if i < len(reqs) {
			req = reqs[i]
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", i+1, err)
		}
		resps, bodies = append(resps, resp), append(bodies, string(b))
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) // closed: EOF at once; open: nothing more comes
	_, err := br.ReadByte()
	return resps, bodies, err == io.EOF
}

// readRequests parses raw as the requests it holds (for the methods the
// responses answer), as far as it parses.
func readRequests(t *testing.T, raw string) []*http.Request {
	var reqs []*http.Request
	br := bufio.NewReader(strings.NewReader(raw))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return reqs
		}
		io.Copy(io.Discard, req.Body)
		reqs = append(reqs, req)
	}
}

func TestServer(t *testing.T) {
	addr := serve(t, &Server{MaxHeaderBytes: 4 << 10})
	for _, tc := range []struct {
		name   string
		raw    string
		n      int      // responses expected
		status []int    // their statuses
		body   []string // and bodies ("" not checked when status says so)
		header map[string]string
		closed bool // the server closes the connection after them
	}{
		{name: "keep-alive", raw: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", n: 2,
			status: []int{200, 200}, body: []string{"GET /a 0 ", "GET /b?q=1 0 "}, header: map[string]string{"Content-Length": "9", "Content-Type": "text/plain"}},
		{name: "post with length", raw: "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /after HTTP/1.1\r\nHost: x\r\n\r\n", n: 2,
			status: []int{200, 200}, body: []string{"POST /p 5 hello", "GET /after 0 "}},
		{name: "chunked body", raw: "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", n: 1,
			status: []int{200}, body: []string{"POST /c 5 abcde"}},
		{name: "HTTP/1.0 closes", raw: "GET /old HTTP/1.0\r\n\r\n", n: 1, status: []int{200}, body: []string{"GET /old 0 "}, closed: true},
		{name: "HTTP/1.0 keep-alive", raw: "GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /k2 HTTP/1.0\r\n\r\n", n: 2,
			status: []int{200, 200}, body: []string{"GET /k 0 ", "GET /k2 0 "}, closed: true},
		{name: "client asks to close", raw: "GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", n: 1,
			status: []int{200}, closed: true},
		{name: "handler asks to close", raw: "GET /close HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n", n: 1,
			status: []int{200}, closed: true},
		{name: "missing host", raw: "GET / HTTP/1.1\r\n\r\n", n: 1, status: []int{400}, body: []string{"400 Bad Request: missing required Host header"}, closed: true},
		{name: "two hosts", raw: "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", n: 1, status: []int{400}, body: []string{"400 Bad Request: too many Host headers"}, closed: true},
		{name: "bad host", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", n: 1, status: []int{400}, closed: true},
		{name: "host", raw: "GET /host HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", n: 1, status: []int{200}, body: []string{"example.com:8080"}},
		{name: "garbage", raw: "HELLO\r\n\r\n", n: 1, status: []int{400}, closed: true},
		{name: "header too large", raw: "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 10<<10) + "\r\n\r\n", n: 1,
			status: []int{431}, closed: true},
		{name: "unknown expect", raw: "POST / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\nContent-Length: 1\r\n\r\na", n: 1, status: []int{417}, closed: true},
		{name: "head", raw: "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n", n: 2,
			status: []int{200, 200}, body: []string{"", "GET /g 0 "}, header: map[string]string{"Content-Length": "10"}},
		{name: "no content", raw: "GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\nGET /z HTTP/1.1\r\nHost: x\r\n\r\n", n: 2,
			status: []int{204, 200}, body: []string{"", "GET /z 0 "}},
		{name: "not modified", raw: "GET /notmodified HTTP/1.1\r\nHost: x\r\n\r\n", n: 1, status: []int{304}, body: []string{""}},
		{name: "big chunked", raw: "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /z HTTP/1.1\r\nHost: x\r\n\r\n", n: 2, status: []int{200, 200}},
		{name: "big with length", raw: "GET /biglength HTTP/1.1\r\nHost: x\r\n\r\nGET /z HTTP/1.1\r\nHost: x\r\n\r\n", n: 2,
			status: []int{200, 200}, body: []string{strings.Repeat("y", 200000), "GET /z 0 "}},
		{name: "header injection", raw: "GET /inject HTTP/1.1\r\nHost: x\r\n\r\n", n: 1, status: []int{200},
			header: map[string]string{"X-Evil": "a  Injected: yes", "Injected": "", "Content-Length": "14"}},
		{name: "panic", raw: "GET /panic HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n", n: 1, status: []int{500}, closed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resps, bodies, closed := exchange(t, addr, tc.raw, tc.n)
			for i, resp := range resps {
				if resp.StatusCode != tc.status[i] {
					t.Errorf("response %d: status %d, want %d (body %q)", i+1, resp.StatusCode, tc.status[i], bodies[i])
				}
				if i < len(tc.body) && tc.body[i] != "" && bodies[i] != tc.body[i] {
					t.Errorf("response %d: body %q, want %q", i+1, bodies[i], tc.body[i])
				}
				if i < len(tc.body) && tc.body[i] == "" && bodies[i] != "" {
					t.Errorf("response %d: body %q, want none", i+1, bodies[i])
				}
				if resp.StatusCode < 300 && resp.Header.Get("Date") == "" {
					t.Errorf("response %d: no Date header", i+1)
				}
			}
			for k, v := range tc.header {
				if got := resps[0].Header.Get(k); got != v {
					t.Errorf("header %s: %q, want %q", k, got, v)
				}
			}
			if tc.name == "big chunked" {
				if te := resps[0].TransferEncoding; len(te) != 1 || te[0] != "chunked" {
					t.Errorf("big response: transfer encoding %v, want chunked", te)
				}
				if len(bodies[0]) != 100*1005 || !strings.HasPrefix(bodies[0], "0000x") || !strings.HasSuffix(bodies[0], "x\n") {
					t.Errorf("big response: %d bytes, want %d", len(bodies[0]), 100*1005)
				}
			}
			if closed != tc.closed {
				t.Errorf("connection closed: %v, want %v", closed, tc.closed)
			}
		})
	}
}

// TestSplitHeaders sends a request's headers in pieces, so that they are
// not all buffered when the request is read: the repeated Host is still
// found.
func TestSplitHeaders(t *testing.T) {
	addr := serve(t, &Server{})
	for _, tc := range []struct {
		parts  []string
		status int
	}{
		{[]string{"GET /s HTTP/1.1\r\nHo", "st: a\r\nX-A: 1\r\n", "\r\n"}, 200},
		{[]string{"GET /s HTTP/1.1\r\nHost: a\r\n", "Host: b\r\n", "\r\n"}, 400},
		{[]string{"GET /s HTTP/1.1\r\nX: " + strings.Repeat("p", 8000) + "\r\n", "Host: a\r\nHost: b\r\n\r\n"}, 400},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		for _, p := range tc.parts {
			io.WriteString(c, p)
			time.Sleep(20 * time.Millisecond)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status {
			t.Errorf("%q: status %d, want %d", tc.parts, resp.StatusCode, tc.status)
		}
		c.Close()
	}
}

// TestExpectContinue: the client waits for 100 Continue before it sends
// the body, as curl and Go's client do.
func TestExpectContinue(t *testing.T) {
	addr := serve(t, &Server{})
	c := dial(t, addr)
	io.WriteString(c, "PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q, %v; want 100 Continue", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "data")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "PUT /e 4 data" {
		t.Fatalf("body %q", b)
	}
}

// TestTargetForms: the request targets RFC 9112 (3.2) allows reach the
// handler: a path, an http(s) URL, "*" for OPTIONS.
func TestTargetForms(t *testing.T) {
	addr := serve(t, &Server{})
	for raw, want := range map[string]string{
		"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n":             "GET /a?b 0 ",
		"GET http://x/p?q HTTP/1.1\r\nHost: x\r\n\r\n":     "GET /p?q 0 ",
		"GET HTTPS://x:8443/p HTTP/1.1\r\nHost: x\r\n\r\n": "GET /p 0 ",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n":            "OPTIONS * 0 ",
		"\r\nGET /after-crlf HTTP/1.1\r\nHost: x\r\n\r\n":  "GET /after-crlf 0 ", // an empty line first is skipped
		"GET /p HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n":      "GET /p 0 ",
	} {
		resps, bodies, _ := exchange(t, addr, raw, 1)
		if resps[0].StatusCode != 200 || bodies[0] != want {
			t.Errorf("%q: %d %q, want 200 %q", raw, resps[0].StatusCode, bodies[0], want)
		}
	}
}

// TestExpectAnsweredEarly: a request whose client waits for "100 Continue"
// and is answered before its body was asked for closes its connection
// (the client may not send the body, and what it sends next could not be
// told from it); an HTTP/1.0 request's expectation is ignored.
func TestExpectAnsweredEarly(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		echo.ServeHTTP(w, r)
	})})
	resps, _, closed := exchange(t, addr, "POST /refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n", 1)
	if resps[0].StatusCode != 413 || !resps[0].Close || !closed {
		t.Errorf("answered before the body was asked for: %d, Connection: close %v, closed %v; want 413, Connection: close, closed",
			resps[0].StatusCode, resps[0].Close, closed)
	}
	resps, bodies, _ := exchange(t, addr, "POST /e HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", 1)
	if resps[0].StatusCode != 200 || bodies[0] != "POST /e 5 hello" {
		t.Errorf("HTTP/1.0 with an expectation: %d %q, want 200 and the body", resps[0].StatusCode, bodies[0])
	}
}

// TestClientGoesAway: a request that runs past WatchAfter has its context
// cancelled when the client closes the connection.
func TestClientGoesAway(t *testing.T) {
	cancelled := make(chan error, 1)
	addr := serve(t, &Server{WatchAfter: time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(10 * time.Second):
			cancelled <- errors.New("not cancelled in 10 s")
		}
	})})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("request context: %v, want canceled", err)
	}
}

// TestClientsGoAway: requests on many connections, started at different
// times and running past WatchAfter, each have their context cancelled
// when their client goes away: the server's one alarm looks at each in
// its turn.
func TestClientsGoAway(t *testing.T) {
	const n = 20
	cancelled := make(chan error, n)
	addr := serve(t, &Server{WatchAfter: 20 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(10 * time.Second):
			cancelled <- fmt.Errorf("%s not cancelled in 10 s", r.URL.Path)
		}
	})})
	var conns []net.Conn
	for i := range n {
		c := dial(t, addr)
		fmt.Fprintf(c, "GET /slow/%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		conns = append(conns, c)
		time.Sleep(3 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	for _, c := range conns {
		c.Close()
	}
	for range n {
		if err := <-cancelled; !errors.Is(err, context.Canceled) {
			t.Fatalf("request context: %v, want canceled", err)
		}
	}
}

// TestWatchSet: a request leaves the set when it ends or is looked at,
// the entry moved into its place keeping its own place, and one added
// again for a later request replaces its connection's earlier entry.
func TestWatchSet(t *testing.T) {
	var w watchSet
	c := []*conn{{}, {}, {}}
	check := func(step string, want ...*conn) {
		t.Helper()
		if len(w.due) != len(want) {
			t.Fatalf("%s: %d in the set, want %d", step, len(w.due), len(want))
		}
		for _, x := range want {
			if i := x.watchAt - 1; i < 0 || w.due[i].c != x {
				t.Fatalf("%s: a connection's place %d does not hold it", step, x.watchAt)
			}
		}
	}
	now := clock.Mono()
	w.add(c[0], 1, now, time.Hour)
	w.add(c[1], 1, now, time.Hour)
	w.add(c[2], 1, now, time.Hour)
	check("three added", c...)
	w.remove(c[0])
	check("first removed", c[1], c[2])
	if c[0].watchAt != 0 {
		t.Fatalf("removed, its place is %d", c[0].watchAt)
	}
	w.remove(c[0])
	check("removed twice", c[1], c[2])
	w.add(c[1], 2, now, time.Hour)
	check("added again", c[1], c[2])
	w.add(c[0], 2, now-time.Hour, time.Millisecond) // due: looked at (not running: nothing to do)
	w.fire()
	check("after a look", c[1], c[2])
	if c[0].watchAt != 0 {
		t.Fatalf("looked at, its place is %d", c[0].watchAt)
	}
	w.mu.Lock()
	w.alarm.Stop()
	w.mu.Unlock()
}

// TestWatchAfterEachRequest: the watch looks at a request once it has run
// for WatchAfter from its own start, though the connection's timer was set
// by a request before it: a client that goes away after a quick request
// and a slow one cancels the slow one, not before its WatchAfter.
func TestWatchAfterEachRequest(t *testing.T) {
	const after = 150 * time.Millisecond
	type ended struct {
		err error
		at  time.Time
	}
	cancelled := make(chan ended, 1)
	addr := serve(t, &Server{WatchAfter: after, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			return
		}
		select {
		case <-r.Context().Done():
			cancelled <- ended{r.Context().Err(), time.Now()}
		case <-time.After(10 * time.Second):
			cancelled <- ended{errors.New("not cancelled in 10 s"), time.Now()}
		}
	})})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n") // sets the timer
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(after / 2)
	// Timed from before it is sent: the server's watch of it begins after.
	sent := time.Now()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(after / 4)
	c.Close() // before the slow request's WatchAfter, after half the quick one's
	got := <-cancelled
	if !errors.Is(got.err, context.Canceled) {
		t.Fatalf("slow request's context: %v, want canceled", got.err)
	}
	if ran := got.at.Sub(sent); ran < after {
		t.Errorf("slow request cancelled %v after it was sent, before its WatchAfter of %v", ran, after)
	}
}

// TestPipelinedDuringWatch: a request sent while the previous one runs
// (and the connection is watched) is read whole, not lost to the watch.
func TestPipelinedDuringWatch(t *testing.T) {
	addr := serve(t, &Server{WatchAfter: time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(100 * time.Millisecond)
		}
		if err := r.Context().Err(); err != nil {
			t.Errorf("%s: context %v", r.URL.Path, err)
		}
		fmt.Fprint(w, r.URL.Path)
	})})
	c := dial(t, addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(30 * time.Millisecond) // the watch has started
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/slow", "/next"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != want {
			t.Fatalf("body %q, want %q", b, want)
		}
	}
}

// TestShutdown: idle connections are closed at once, a request in flight
// finishes and closes its connection, and Serve returns ErrServerClosed.
func TestShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var (
		mu     sync.Mutex
		states = map[string][]http.ConnState{}
	)
	stateOf := func(key string) []http.ConnState {
		mu.Lock()
		defer mu.Unlock()
		return append([]http.ConnState(nil), states[key]...)
	}
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		fmt.Fprint(w, "done")
	}), ConnState: func(c net.Conn, st http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		k := c.LocalAddr().String() + c.RemoteAddr().String()
		states[k] = append(states[k], st)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
	idleR := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(idleR, nil); err != nil {
		t.Fatal(err)
	} else {
		io.ReadAll(resp.Body)
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	idleKey := idle.RemoteAddr().String() + idle.LocalAddr().String()
	testutil.WaitFor(t, "the first connection to go idle", func() bool {
		l := stateOf(idleKey)
		return len(l) > 0 && l[len(l)-1] == http.StateIdle
	})

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idleR.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(release)
	busy.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(busy)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Close {
		t.Error("the response in flight at shutdown does not close its connection")
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still accepting connections after Shutdown")
	}
	want := []http.ConnState{http.StateNew, http.StateActive, http.StateIdle, http.StateClosed}
	if got := stateOf(idleKey); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("idle connection's states %v, want %v", got, want)
	}
}

// TestShutdownTimeout: Shutdown gives up when its context is done.
func TestShutdownTimeout(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	})}
	addr := serve(t, s)
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline", err)
	}
}

// TestTimeouts: a connection idle past IdleTimeout, or slow to send its
// headers past ReadHeaderTimeout, is closed.
func TestTimeouts(t *testing.T) {
	// Long enough for the client to send its first request well within them.
	var mu sync.Mutex
	var reasons []string
	addr := serve(t, &Server{IdleTimeout: 500 * time.Millisecond, ReadHeaderTimeout: 500 * time.Millisecond, Refused: func(status int, reason, _ string) {
		mu.Lock()
		defer mu.Unlock()
		reasons = append(reasons, fmt.Sprint(status, " ", reason))
	}})
	for _, first := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHost:", "GET / HT", ""} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, first)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%q: not closed by the server: %v", first, err)
		}
		if strings.HasSuffix(first, "\r\n\r\n") != strings.HasPrefix(string(b), "HTTP/1.1 200") {
			t.Errorf("%q: got %q", first, b)
		}
		c.Close()
	}
	// A head begun and not finished is the client's fault, told to
	// Refused; a connection idle (or never used) is not.
	mu.Lock()
	defer mu.Unlock()
	if got, want := fmt.Sprint(reasons), "[408 header_timeout 408 header_timeout]"; got != want {
		t.Errorf("Refused told %v, want %v", got, want)
	}
}

// TestHeaderTimeoutAfterIdle: a request after a connection's first whose
// headers stop short is cut off at the header timeout, not the (longer)
// idle one that governed the wait for its first byte.
func TestHeaderTimeoutAfterIdle(t *testing.T) {
	addr := serve(t, &Server{IdleTimeout: time.Minute, ReadHeaderTimeout: 50 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost:")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(br); err != nil {
		t.Fatalf("not closed at the header timeout: %v (read %q)", err, b)
	}
}

// TestHTTP2Handover: a connection opening with the HTTP/2 preface goes to
// HTTP2 with every byte the client sent.
func TestHTTP2Handover(t *testing.T) {
	got := make(chan string, 1)
	addr := serve(t, &Server{HTTP2: func(c net.Conn) {
		defer c.Close()
		if nc, ok := c.(interface{ NetConn() net.Conn }); !ok {
			t.Error("the handed-over connection does not give its NetConn")
		} else if _, ok := nc.NetConn().(syscall.Conn); !ok {
			t.Errorf("NetConn is a %T, which has no SyscallConn for the gateway to colour", nc.NetConn())
		}
		b := make([]byte, len(h2Preface)+5)
		_, err := io.ReadFull(c, b)
		got <- fmt.Sprint(string(b), err)
	}})
	c := dial(t, addr)
	io.WriteString(c, h2Preface[:10])
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, h2Preface[10:]+"frame")
	if g := <-got; g != h2Preface+"frame<nil>" {
		t.Fatalf("HTTP2 read %q", g)
	}
}

// TestLikeNetHTTP sends the same requests to this server and to net/http's
// with the same handler: statuses, bodies and the headers a client acts on
// agree.
func TestLikeNetHTTP(t *testing.T) {
	stricter := map[string]int{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n": 400,
	}
	ours := serve(t, &Server{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	std := &http.Server{Handler: echo}
	go std.Serve(ln)
	t.Cleanup(func() { std.Close() })
	for _, raw := range []string{
		"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
		"GET http://other/abs HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /notmodified HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /big HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /old HTTP/1.0\r\n\r\n",
		"GET /host HTTP/1.1\r\nHost: h.example\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n Folded: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("h", 2<<20) + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: \x7f\r\n\r\n",
	} {
		a, ab, ac := exchange(t, ours, raw, 1)
		b, bb, bc := exchange(t, ln.Addr().String(), raw, 1)
		name := raw
		if len(name) > 80 {
			name = name[:80] + "..."
		}
		if want, ok := stricter[raw]; ok { // where RFC 9112 asks more than net/http does
			if a[0].StatusCode != want || !ac {
				t.Errorf("%q: ours %d closed %v, want %d and closed (net/http: %d)", name, a[0].StatusCode, ac, want, b[0].StatusCode)
			}
			continue
		}
		// Ours say why after net/http's words (or after the status, where
		// net/http has words of its own).
		words := strings.SplitN(bb[0], ":", 2)[0]
		if a[0].StatusCode == http.StatusNotImplemented {
			words = "501 Not Implemented: unsupported transfer encoding"
		}
		if a[0].StatusCode != b[0].StatusCode || !strings.HasPrefix(ab[0], words) || ac != bc {
			t.Errorf("%q:\n ours:     %d %q closed %v\n net/http: %d %q closed %v", name, a[0].StatusCode, ab[0], ac, b[0].StatusCode, bb[0], bc)
			continue
		}
		if a[0].StatusCode >= 400 { // net/http's errors end with the connection, ours have a length
			continue
		}
		for _, h := range []string{"Content-Length", "Content-Type", "Transfer-Encoding"} {
			if a[0].Header.Get(h) != b[0].Header.Get(h) {
				t.Errorf("%q: %s %q, net/http %q", name, h, a[0].Header.Get(h), b[0].Header.Get(h))
			}
		}
	}
}

// TestUnreadBodyStalls: a client that stops sending a body the handler did
// not read gets its answer, then the connection closed after
// ReadHeaderTimeout, instead of holding it for ever.
func TestUnreadBodyStalls(t *testing.T) {
	addr := serve(t, &Server{ReadHeaderTimeout: 100 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})})
	c := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly ten b")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("connection not closed: %v (read %q)", err, b)
	}
	if !strings.Contains(string(b), "\r\n\r\nok") {
		t.Fatalf("got %q, want the answer", b)
	}
}

// TestUnreadBodyLingers: a connection closed after an answer with much
// of its request's body unread (past what the server reads past) is
// half-closed and what the client sent read and dropped before the close:
// the client reads the answer and a clean end, not a reset.
func TestUnreadBodyLingers(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})})
	c := dial(t, addr)
	const size = 4 << 20
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, size/2)) // half the body, then nothing: the answer is read before the close
		sent <- err
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the connection reset: %v (read %q)", err, b)
	}
	if !strings.Contains(string(b), "\r\n\r\nok") {
		t.Fatalf("got %q, want the answer", b)
	}
	if err := <-sent; err != nil {
		t.Errorf("the body's write: %v", err)
	}
}

// flakyListener fails its first Accept with a temporary error (EMFILE).
type flakyListener struct {
	net.Listener
	failed bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed {
		l.failed = true
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// TestAcceptRetries: a temporary accept error (out of file descriptors) is
// waited out, not the end of Serve.
func TestAcceptRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: echo}
	done := make(chan error, 1)
	go func() { done <- s.Serve(&flakyListener{Listener: ln}) }()
	defer func() {
		s.Close()
		<-done
	}()
	resps, _, _ := exchange(t, ln.Addr().String(), "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", 1)
	if resps[0].StatusCode != 200 {
		t.Fatalf("status %d", resps[0].StatusCode)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v on a temporary error", err)
	default:
	}
}

// TestTurn: a connection yields at its first request and then only once
// TurnLength has passed since it last did.
func TestTurn(t *testing.T) {
	var turn Turn
	t0 := time.Unix(1000, 0)
	for _, st := range []struct {
		at    time.Duration
		yield bool
	}{
		{0, true},
		{TurnLength / 2, false},
		{TurnLength - 1, false},
		{TurnLength, true},
		{TurnLength + TurnLength/2, false},
		{3 * TurnLength, true},
	} {
		before := turn.last
		turn.Take(t0.Add(st.at))
		if yielded := turn.last != before; yielded != st.yield {
			t.Errorf("at %v: yielded %v, want %v", st.at, yielded, st.yield)
		}
	}
}

// TestTrailers: a request's trailers reach the handler once its body is
// read, and the trailers a handler sets (http.TrailerPrefix) follow its
// chunked body, streamed or not; framing fields are not sent as trailers.
func TestTrailers(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/stream" {
			w.Write(b)
			http.NewResponseController(w).Flush()
		}
		w.Header().Set(http.TrailerPrefix+"X-Echo", r.Trailer.Get("X-Sum"))
		w.Header().Set(http.TrailerPrefix+"Content-Length", "99")
	})})
	for _, path := range []string{"/stream", "/empty"} {
		req, err := http.NewRequest("POST", "http://"+addr+path, io.MultiReader(strings.NewReader("body")))
		if err != nil {
			t.Fatal(err)
		}
		req.Trailer = http.Header{"X-Sum": {"42"}}
		req.ContentLength = -1 // chunked, with trailers
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Trailer.Get("X-Echo"); got != "42" {
			t.Errorf("%s: trailer X-Echo %q, want 42 (trailers %v)", path, got, resp.Trailer)
		}
		if _, ok := resp.Trailer["Content-Length"]; ok {
			t.Errorf("%s: Content-Length sent as a trailer", path)
		}
	}
}

// TestStrictHead: what RFC 9112 says a server must or ought to refuse, and
// the limits on a request's head, each answered with its status and the
// connection closed, the reason told to Refused; a request smuggled after
// a refused one is never served.
func TestStrictHead(t *testing.T) {
	var mu sync.Mutex
	var reasons []string
	addr := serve(t, &Server{MaxHeaderBytes: 1 << 10, MaxHeaders: 10, MaxRequestLine: 256, Refused: func(status int, reason, remote string) {
		mu.Lock()
		reasons = append(reasons, fmt.Sprintf("%d %s", status, reason))
		if !strings.HasPrefix(remote, "127.0.0.1:") {
			reasons = append(reasons, "remote "+remote)
		}
		mu.Unlock()
	}})
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	fields := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-%d: v\r\n", i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, raw string
		status    int
		reason    string
	}{
		{"content length and chunked", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			400, "content_length_and_transfer_encoding"},
		{"chunked and content length", "POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n" + smuggled,
			400, "content_length_and_transfer_encoding"},
		{"two equal lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na" + smuggled, 400, "bad_content_length"},
		{"length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\na" + smuggled, 400, "bad_content_length"},
		{"signed length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na" + smuggled, 400, "bad_content_length"},
		{"huge length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, "bad_content_length"},
		{"chunked on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_transfer_encoding"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  continued\r\n\r\n" + smuggled, 400, "obs_fold"},
		{"request line", "GET /" + strings.Repeat("a", 300) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request_line_too_long"},
		{"header bytes", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 2<<10) + "\r\n\r\n", 431, "header_too_large"},
		{"header count", "GET / HTTP/1.1\r\nHost: x\r\n" + fields(10) + "\r\n", 431, "too_many_headers"},
		{"unterminated line", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("c", 8<<10), 431, "header_too_large"},
		{"space before the colon", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled,
			400, "bad_request"},
		{"opaque target", "GET a:%2fprivate HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request_target"},
		{"target of another scheme", "GET mailto:x@y HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request_target"},
		{"URL without a host", "GET http:/p HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request_target"},
		{"URL but no Host field", "GET http://other.example/p HTTP/1.1\r\n\r\n", 400, "bad_request"},
		{"URL beside a malformed Host field", "GET http://other.example/p HTTP/1.1\r\nHost: a b c\r\n\r\n", 400, "bad_host"},
		{"asterisk but for OPTIONS", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request_target"},
		{"unclosed IP literal in Host", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, "bad_host"},
		{"port of letters in Host", "GET / HTTP/1.1\r\nHost: api.example.com:abc\r\n\r\n", 400, "bad_host"},
		{"an expectation but 100-continue", "POST / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: 1\r\n\r\na", 417, "bad_expect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			reasons = nil
			mu.Unlock()
			resps, bodies, closed := exchange(t, addr, tc.raw, 1)
			if resps[0].StatusCode != tc.status || !closed {
				t.Errorf("%d %q, closed %v; want %d and closed", resps[0].StatusCode, bodies[0], closed, tc.status)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := fmt.Sprintf("%d %s", tc.status, tc.reason); len(reasons) != 1 || reasons[0] != want {
				t.Errorf("Refused told %v, want [%s]", reasons, want)
			}
		})
	}
	// Within the limits: served, and the connection kept.
	resps, _, closed := exchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n"+fields(9)+"\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", 2)
	if resps[1].StatusCode != 200 || closed {
		t.Errorf("9 fields: %d, closed %v", resps[1].StatusCode, closed)
	}
}

// TestMalformedBody: a chunked body whose framing or trailers are
// malformed fails the handler's read with ErrMalformedBody, and the
// connection is closed after the answer; one cut short is an
// io.ErrUnexpectedEOF.
func TestMalformedBody(t *testing.T) {
	errs := make(chan error, 1)
	addr := serve(t, &Server{MaxHeaders: 3, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		errs <- err
		w.WriteHeader(http.StatusBadRequest)
	})})
	for _, tc := range []struct {
		name, body string
		want       error
	}{
		{"bad chunk size", "zz\r\nabc\r\n0\r\n\r\n", ErrMalformedBody},
		{"chunk longer than said", "1\r\nabc\r\n0\r\n\r\n", ErrMalformedBody},
		{"folded trailer", "1\r\na\r\n0\r\nX-T: 1\r\n more\r\n\r\n", ErrMalformedBody},
		{"bad trailer", "1\r\na\r\n0\r\nX T: 1\r\n\r\n", ErrMalformedBody},
		{"too many trailers", "1\r\na\r\n0\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n", ErrMalformedBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, closed := exchange(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+tc.body+"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1)
			if err := <-errs; !errors.Is(err, tc.want) {
				t.Errorf("body error %v, want %v", err, tc.want)
			}
			if !closed {
				t.Error("the connection was kept after a malformed body")
			}
		})
	}
	c := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
	c.(*net.TCPConn).CloseWrite()
	if err := <-errs; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("body cut short: %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestBodyAfterReturn: a handler that leaves a goroutine reading its
// request's body has it read http.ErrBodyReadAfterClose once the handler
// returned, not the connection's next request.
func TestBodyAfterReturn(t *testing.T) {
	late := make(chan error, 1)
	release := make(chan struct{})
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/leave" {
			go func() {
				<-release
				_, err := io.ReadAll(r.Body)
				late <- err
			}()
		}
		fmt.Fprint(w, r.URL.Path)
	})})
	c := dial(t, addr)
	io.WriteString(c, "POST /leave HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first: %v %v", resp, err)
	} else {
		io.ReadAll(resp.Body)
	}
	// The next request answered: the server is past the first one's body.
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "/next" {
		t.Errorf("the next request answered %q", b)
	}
	close(release)
	if err := <-late; !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Errorf("a read after the handler returned: %v, want http.ErrBodyReadAfterClose", err)
	}
}

// TestHeadMemory: heads past a connection's read buffer are taken from
// MaxHeadMemory; once the connections together hold it, a request whose
// head needs more is refused, and what a connection held is given back
// when it closes.
func TestHeadMemory(t *testing.T) {
	s := &Server{MaxHeadMemory: 64 << 10}
	addr := serve(t, s)
	big := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("m", 30<<10) // unterminated: held
	var held []net.Conn
	for range 2 {
		c := dial(t, addr)
		io.WriteString(c, big)
		held = append(held, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.headMemory.Load() < 60<<10 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	resps, _, _ := exchange(t, addr, big+"\r\n\r\n", 1)
	if resps[0].StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a third large head with two held: %d, want 431", resps[0].StatusCode)
	}
	for _, c := range held {
		c.Close()
	}
	for s.headMemory.Load() != 0 && time.Now().Before(deadline.Add(5*time.Second)) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := s.headMemory.Load(); n != 0 {
		t.Errorf("%d bytes still counted after the connections closed", n)
	}
	if resps, _, _ := exchange(t, addr, big+"\r\n\r\n", 1); resps[0].StatusCode != 200 {
		t.Errorf("a large head once the others closed: %d, want 200", resps[0].StatusCode)
	}
}

// TestIdleBuffers: a connection idle past idleHold gives its buffers back
// and takes them again for its next request — whole, or sent in pieces
// across the hold — and one that becomes idle while a request is pipelined
// behind another keeps serving both; every answer is whole.
func TestIdleBuffers(t *testing.T) {
	addr := serve(t, &Server{})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	ask := func(step, raw string, parts ...string) {
		t.Helper()
		io.WriteString(c, raw)
		for _, p := range parts {
			time.Sleep(idleHold + 50*time.Millisecond)
			io.WriteString(c, p)
		}
	}
	answer := func(step, want string) {
		t.Helper()
		readAnswer(t, br, step, want)
	}
	ask("first", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	answer("first", "POST /a 3 abc")
	time.Sleep(idleHold + 100*time.Millisecond) // buffers back in the pools
	ask("after idle", "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	answer("after idle", "GET /b 0 ")
	ask("in pieces", "P", "OST /c HTTP/1.1\r\nHost: x\r\nContent-", "Length: 2\r\n\r\nhi")
	answer("in pieces", "POST /c 2 hi")
	ask("pipelined", "GET /d HTTP/1.1\r\nHost: x\r\n\r\nGET /e HTTP/1.1\r\nHost: x\r\n\r\n")
	answer("pipelined 1", "GET /d 0 ")
	answer("pipelined 2", "GET /e 0 ")
}

// readAnswer reads a response from br and fails t, naming step, unless it
// is a 200 with the body want.
func readAnswer(t *testing.T, br *bufio.Reader, step, want string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != want {
		t.Fatalf("%s: %d %q, want %q", step, resp.StatusCode, b, want)
	}
}

// TestHijack: a handler takes the connection over, with what the client
// sent after the request's head (read ahead into the server's buffer, and
// the byte the watch read) coming first; the server writes nothing of its
// own, and a second Hijack or one after the response began fails.
func TestHijack(t *testing.T) {
	errs := make(chan error, 3)
	addr := serve(t, &Server{WatchAfter: time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			io.WriteString(w, "x")
			w.(http.Flusher).Flush()
			_, _, err := http.NewResponseController(w).Hijack()
			errs <- err
			return
		}
		if r.URL.Path == "/watched" {
			time.Sleep(50 * time.Millisecond) // the watch reads the first byte ahead
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			errs <- err
			return
		}
		_, _, again := http.NewResponseController(w).Hijack()
		errs <- again
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(brw, io.LimitReader(brw, 10))
		brw.Flush()
	})})
	for _, path := range []string{"/now", "/watched"} {
		c := dial(t, addr)
		head := "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
		if path == "/now" { // the request and the start of the tunnel's bytes in one write
			io.WriteString(c, head+"hello")
		} else { // the tunnel's first byte read by the watch
			io.WriteString(c, head)
			time.Sleep(20 * time.Millisecond)
			io.WriteString(c, "hello")
		}
		time.Sleep(100 * time.Millisecond)
		io.WriteString(c, "world")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhelloworld"; string(got) != want || err != nil {
			t.Errorf("%s: got %q, %v; want %q", path, got, err, want)
		}
		if err := <-errs; err == nil {
			t.Errorf("%s: a second Hijack succeeded", path)
		}
	}
	c := dial(t, addr)
	io.WriteString(c, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := <-errs; err == nil {
		t.Error("Hijack after the response began succeeded")
	}
}

// TestHeaderTimeoutAfterEmptyLines: empty lines before a partial head,
// sent with the request before it, do not pass for a buffered head: the
// partial head is read under the header timeout.
func TestHeaderTimeoutAfterEmptyLines(t *testing.T) {
	addr := serve(t, &Server{IdleTimeout: time.Minute, ReadHeaderTimeout: 100 * time.Millisecond})
	c := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na\r\n\r\nGET /b HTTP/1.1\r\nX: ")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	start := time.Now()
	if b, err := io.ReadAll(br); err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("not closed at the header timeout: %v after %s (read %q)", err, time.Since(start), b)
	}
}

// failingListener fails its first Accepts with a temporary error, as a
// listener out of file descriptors does.
type failingListener struct {
	net.Listener
	fails atomic.Int32
}

type emfile struct{}

func (emfile) Error() string   { return "accept4: too many open files" }
func (emfile) Temporary() bool { return true }
func (emfile) Timeout() bool   { return false }

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, emfile{}
	}
	return l.Listener.Accept()
}

// TestServeAcceptErrorLogged: accept errors the server waits out (out of
// descriptors) are logged, once, and connections are taken again after.
func TestServeAcceptErrorLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: ln}
	fl.fails.Store(3)
	var log testutil.LockedBuffer
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		Logger: slog.New(slog.NewTextHandler(&log, nil))}
	go s.Serve(fl)
	t.Cleanup(func() { s.Close() })
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := strings.Count(log.String(), "accepting connections: trying again"); n != 1 || !strings.Contains(log.String(), "too many open files") {
		t.Errorf("%d log lines of the accept errors, want 1 naming the error:\n%s", n, log.String())
	}
}

// TestSendTimeout: a client that sends pipelined requests and never reads
// their answers has its connection closed once a write has waited
// SendTimeout for it to take bytes, though each answer is small; until
// then its answers are written as they come.
func TestSendTimeout(t *testing.T) {
	var served atomic.Int64
	answer := strings.Repeat("x", 4096)
	addr := serve(t, &Server{SendTimeout: 300 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, answer)
	})})
	c := dial(t, addr)
	go func() {
		_, _ = io.WriteString(c, strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5000))
	}()
	// The answers fill the socket buffers, and the server's write waits.
	for last := int64(-1); ; time.Sleep(200 * time.Millisecond) {
		n := served.Load()
		if n == last {
			break
		}
		last = n
	}
	time.Sleep(time.Second) // past SendTimeout
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after %d of 5000 answers: %v", served.Load(), err)
	}
	if n := served.Load(); n >= 5000 {
		t.Fatalf("all %d requests were answered: the server's writes never waited", n)
	}
}

// TestCloseAnnounced: an answer after which the server closes the
// connection because of the request's body says Connection: close (RFC
// 9112, 9.6): a body whose read failed (malformed chunks), and one with
// more of its declared length left unread than the server reads past; a
// small one left unread does not close it.
func TestCloseAnnounced(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
		}
		http.NotFound(w, r)
	})})
	for _, tc := range []struct {
		name, raw string
		close     bool
	}{
		{"malformed chunks", "POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", true},
		{"large body unread", "POST /skip HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\nabc", true},
		{"small body unread", "POST /skip HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", false},
	} {
		c := dial(t, addr)
		io.WriteString(c, tc.raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.Close != tc.close {
			t.Errorf("%s: %d, Connection: close %v, want %v", tc.name, resp.StatusCode, resp.Close, tc.close)
		}
	}
}

// TestFullDuplexKeepsTheConnection: a handler that sends its head, then
// reads a large body whole (a streaming echo), keeps the connection: the
// head said nothing of a body it would leave, and it left none.
func TestFullDuplexKeepsTheConnection(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	})})
	c := dial(t, addr)
	go func() {
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
		c.Write(make([]byte, 1<<20))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	}()
	br := bufio.NewReader(c)
	for i, want := range []string{"1048576", "0"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.Close || string(b) != want {
			t.Fatalf("answer %d: %q, Connection: close %v; want %q on a kept connection", i, b, resp.Close, want)
		}
	}
}
