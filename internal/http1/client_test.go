package http1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

// serveClient starts a net/http server of h on loopback, and returns it,
// a Client of it and the number of connections the server has accepted.
func serveClient(t *testing.T, h http.HandlerFunc) (*httptest.Server, *Client, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := &Client{Addr: strings.TrimPrefix(srv.URL, "http://")}
	t.Cleanup(c.Close)
	return srv, c, &conns
}

func newRequest(t *testing.T, ctx context.Context, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func roundTrip(t *testing.T, c *Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

// TestClientKeepAlive: requests of every kind reuse one connection, one
// after the other; bodies arrive whole in both framings, trailers both
// ways.
func TestClientKeepAlive(t *testing.T) {
	srv, c, conns := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		fmt.Fprintf(w, "%s %s len=%d te=%v body=%q trailer=%q host=%s", r.Method, r.URL.RequestURI(), r.ContentLength, r.TransferEncoding, b, r.Trailer.Get("X-Req"), r.Host)
		w.Header().Set("X-Sum", fmt.Sprint(len(b)))
	})
	ctx := context.Background()
	for i, tc := range []struct {
		method, body string
		chunked      bool
		want         string
	}{
		{"GET", "", false, `GET /x?q=1 len=0 te=[] body="" trailer=""`},
		{"POST", "hello", false, `POST /x?q=1 len=5 te=[] body="hello" trailer=""`},
		{"POST", "streamed", true, `POST /x?q=1 len=-1 te=[chunked] body="streamed" trailer="t"`},
		{"HEAD", "", false, ``},
		{"PUT", "", false, `PUT /x?q=1 len=0 te=[] body="" trailer=""`},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // no length known
			}
		}
		req := newRequest(t, ctx, tc.method, srv.URL+"/x?q=1", body)
		req.Host = "users.example"
		if tc.chunked {
			req.Trailer = http.Header{"X-Req": {"t"}}
		}
		resp, got := roundTrip(t, c, req)
		if tc.method != "HEAD" && got != tc.want+" host=users.example" {
			t.Errorf("%d: got %q, want %q", i, got, tc.want+" host=users.example")
		}
		if tc.method != "HEAD" && resp.Trailer.Get("X-Sum") != fmt.Sprint(len(tc.body)) {
			t.Errorf("%d: trailer X-Sum %q, want %d", i, resp.Trailer.Get("X-Sum"), len(tc.body))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 requests in turn, want 1", n)
	}
	if active, idle := c.Conns(); active != 0 || idle != 1 {
		t.Errorf("Conns() = %d active, %d idle; want 0, 1", active, idle)
	}
}

// TestClientStaleConnection: a kept connection the server closed while
// idle is found out and a request without a body is sent again on a new
// one, never failed.
func TestClientStaleConnection(t *testing.T) {
	srv, c, conns := serveClient(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for i := range 3 {
		_, got := roundTrip(t, c, newRequest(t, context.Background(), "GET", srv.URL, nil))
		if got != "ok" {
			t.Fatalf("%d: %q", i, got)
		}
		srv.CloseClientConnections()
		if i == 1 {
			time.Sleep(50 * time.Millisecond) // found by the check before use
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (each closed after its request)", n)
	}
}

// TestClientStrayBytes: bytes an endpoint sends on a kept connection after
// the response it answered (a body after a 204's head, a second response)
// close that connection: the next request never reads them as its answer.
func TestClientStrayBytes(t *testing.T) {
	var conns atomic.Int64
	addr := testutil.RawServer(t, func(conn net.Conn, br *bufio.Reader) {
		conns.Add(1)
		for first := true; ; first = false {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if !first {
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
				continue
			}
			io.WriteString(conn, "HTTP/1.1 204 No Content\r\n\r\n")
			if req.URL.Path == "/late" {
				time.Sleep(20 * time.Millisecond)
			}
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED")
		}
	})
	c := &Client{Addr: addr}
	t.Cleanup(c.Close)
	for i, path := range []string{"/late", "/late", "/soon"} {
		resp, got := roundTrip(t, c, newRequest(t, context.Background(), "GET", "http://"+c.Addr+path, nil))
		if resp.StatusCode != 204 || got != "" {
			t.Fatalf("request %d: %d %q, want the 204 its connection answered first", i, resp.StatusCode, got)
		}
		time.Sleep(40 * time.Millisecond) // the stray response arrives meanwhile
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections for 3 requests, want each on a new one", n)
	}
}

// TestClientLimits: MaxConns makes a request wait for a connection,
// MaxPending refuses one past it, and a waiting request's context ends its
// wait.
func TestClientLimits(t *testing.T) {
	release := make(chan struct{})
	srv, c, conns := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		io.WriteString(w, "ok")
	})
	c.MaxConns, c.MaxPending = 1, 1
	held := make(chan error, 1)
	go func() {
		resp, err := c.RoundTrip(newRequest(t, context.Background(), "GET", srv.URL+"/hold", nil))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		held <- err
	}()
	testutil.WaitFor(t, "the held request to take its connection", func() bool {
		active, _ := c.Conns()
		return active == 1
	})
	waited := make(chan string, 1)
	go func() {
		resp, err := c.RoundTrip(newRequest(t, context.Background(), "GET", srv.URL+"/after", nil))
		if err != nil {
			waited <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		waited <- string(b)
	}()
	testutil.WaitFor(t, "the second request to wait", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.waiting) == 1
	})
	if _, err := c.RoundTrip(newRequest(t, context.Background(), "GET", srv.URL, nil)); !errors.Is(err, ErrPoolFull) {
		t.Errorf("a third request: %v, want ErrPoolFull", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c.MaxPending = 2
	if _, err := c.RoundTrip(newRequest(t, ctx, "GET", srv.URL, nil)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a request waiting past its deadline: %v", err)
	}
	// A context with a deadline and no timer to end it (as the gateway's
	// proxy gives): the wait ends at the deadline all the same.
	dctx := deadlineOnly{context.Background(), time.Now().Add(50 * time.Millisecond)}
	timerless := make(chan error, 1)
	go func() {
		_, err := c.Do(dctx, newRequest(t, context.Background(), "GET", srv.URL, nil))
		timerless <- err
	}()
	select {
	case err := <-timerless:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a request waiting past a deadline without a timer: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("a request waiting past a deadline without a timer still waits")
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if got := <-waited; got != "ok" {
		t.Errorf("the waiting request: %q", got)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (MaxConns)", n)
	}
}

// deadlineOnly is a context with a deadline that nothing ends: Done never
// closes.
type deadlineOnly struct {
	context.Context
	at time.Time
}

func (d deadlineOnly) Deadline() (time.Time, bool) { return d.at, true }

// TestClientExpectContinue: a request with Expect: 100-continue sends its
// body once the server says 100, and not at all when the server answers
// first.
func TestClientExpectContinue(t *testing.T) {
	srv, c, _ := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			http.Error(w, "too big", http.StatusRequestEntityTooLarge)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %q", b)
	})
	c.ExpectContinueTimeout = time.Minute // the server's 100 is what sends the body
	var got1xx []int
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { got1xx = append(got1xx, code); return nil },
	})
	req := newRequest(t, ctx, "PUT", srv.URL, strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	if _, got := roundTrip(t, c, req); got != `got "payload"` || time.Since(start) > 10*time.Second {
		t.Errorf("after 100-continue: %q in %s", got, time.Since(start))
	}
	read := &countingReader{r: strings.NewReader("payload")}
	req = newRequest(t, context.Background(), "PUT", srv.URL+"/refuse", read)
	req.ContentLength = 7
	req.Header.Set("Expect", "100-continue")
	resp, _ := roundTrip(t, c, req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || read.n.Load() != 0 {
		t.Errorf("refused before the body: %d, %d bytes of the body read", resp.StatusCode, read.n.Load())
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestClientBadResponses: a response head over MaxHeaderBytes, a
// malformed one, a connection that never answers (the context's deadline
// ends the request) fail the request, each with its error.
func TestClientBadResponses(t *testing.T) {
	addr := testutil.RawServer(t, func(conn net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		switch req.URL.Path {
		case "/huge":
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 100<<10))
		case "/garbage":
			io.WriteString(conn, "SMTP ready\r\n\r\n")
		case "/silent":
			io.Copy(io.Discard, conn)
		case "/bare-lf-chunk":
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nHELLO\n0\n\n")
		case "/http10-chunked": // HTTP/1.0 has no transfer codings: faulty framing
			io.WriteString(conn, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHELLO\r\n0\r\n\r\n")
		case "/cut-chunk": // a network failure, not a malformed body
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHE")
		}
	})
	c := &Client{Addr: addr}
	defer c.Close()
	for _, tc := range []struct {
		path string
		want func(error) bool
	}{
		{"/huge", func(err error) bool { return errors.Is(err, ErrResponseHeaderTooLarge) }},
		{"/garbage", func(err error) bool { return err != nil && strings.Contains(err.Error(), "malformed") }},
		{"/silent", func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"/bare-lf-chunk", func(err error) bool { return errors.Is(err, ErrMalformedResponse) }},
		{"/http10-chunked", func(err error) bool { return errors.Is(err, ErrMalformedResponse) }},
		{"/cut-chunk", func(err error) bool {
			return errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrMalformedResponse)
		}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		resp, err := c.RoundTrip(newRequest(t, ctx, "GET", "http://"+c.Addr+tc.path, nil))
		if resp != nil {
			_, err = io.ReadAll(resp.Body) // the body's error
			resp.Body.Close()
		}
		cancel()
		if !tc.want(err) {
			t.Errorf("%s: %v", tc.path, err)
		}
	}
	if active, idle := c.Conns(); active != 0 || idle != 0 {
		t.Errorf("after failures: %d active, %d idle connections; want none", active, idle)
	}
}

// TestClientUpgrade: a 101 response's body is the connection, both ways.
func TestClientUpgrade(t *testing.T) {
	srv, c, _ := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := newRequest(t, ctx, "GET", srv.URL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := c.RoundTrip(req)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("the body of a 101 is a %T", resp.Body)
	}
	defer rw.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.WriteString(rw, "ping")
		rw.(interface{ CloseWrite() error }).CloseWrite()
	}()
	b, err := io.ReadAll(rw)
	wg.Wait()
	if string(b) != "ping" || err != nil {
		t.Errorf("echoed %q, %v", b, err)
	}
}

// TestClientPoisonedConnection: bytes an endpoint sends past a response
// (a body after a HEAD) never become the next request's answer: that
// connection is not reused.
func TestClientPoisonedConnection(t *testing.T) {
	addr := testutil.RawServer(t, func(conn net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.Method == "HEAD" { // a body it must not send: a whole forged response
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
				continue
			}
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")
		}
	})
	c := &Client{Addr: addr}
	defer c.Close()
	roundTrip(t, c, newRequest(t, context.Background(), "HEAD", "http://"+c.Addr, nil))
	if _, got := roundTrip(t, c, newRequest(t, context.Background(), "GET", "http://"+c.Addr, nil)); got != "real" {
		t.Errorf("the GET after a HEAD answered with a body got %q", got)
	}
}

// TestClientNotReplayed: a POST without a body on a kept connection that
// the endpoint closes after reading it is not sent again (it may have been
// done); a GET is.
func TestClientNotReplayed(t *testing.T) {
	var posts, gets atomic.Int64
	addr := testutil.RawServer(t, func(conn net.Conn, br *bufio.Reader) {
		for first := true; ; first = false {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch {
			case first:
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			case req.Method == "POST":
				posts.Add(1)
				return // closed without an answer
			default:
				gets.Add(1)
				return
			}
		}
	})
	c := &Client{Addr: addr}
	defer c.Close()
	roundTrip(t, c, newRequest(t, context.Background(), "GET", "http://"+c.Addr, nil))
	if _, err := c.RoundTrip(newRequest(t, context.Background(), "POST", "http://"+c.Addr, nil)); err == nil || posts.Load() != 1 {
		t.Errorf("a POST on a connection closed after it: %v, sent %d times; want an error after once", err, posts.Load())
	}
	roundTrip(t, c, newRequest(t, context.Background(), "GET", "http://"+c.Addr, nil))
	resp, err := c.RoundTrip(newRequest(t, context.Background(), "GET", "http://"+c.Addr, nil))
	if err != nil || gets.Load() != 1 {
		t.Errorf("a GET on a connection closed after it: %v, %v; want it answered on a new one", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestClientKeepAliveAfterDeadline: a connection whose request had a
// short deadline is reused after that deadline has passed.
func TestClientKeepAliveAfterDeadline(t *testing.T) {
	_, c, conns := serveClient(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		roundTrip(t, c, newRequest(t, ctx, "GET", "http://"+c.Addr, nil))
		cancel()
		time.Sleep(300 * time.Millisecond)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 requests 300 ms apart, want 1", n)
	}
}

// TestClientCutWithServerConnection: round trips made in a server
// connection's request context (a proxy's) are watched through the
// connection's cutSet, not a context.AfterFunc each: they reuse their
// upstream connection one after the other, two at once both come back,
// and when the client goes away a round trip waiting on an upstream that
// never answers is cut at once (not at its 10 s deadline), as is one
// started after.
func TestClientCutWithServerConnection(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	// /a and /b each wait for the other at the upstream, so that the
	// pair's round trips overlap and take a connection each.
	var pair sync.WaitGroup
	pair.Add(2)
	_, c, conns := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			select {
			case <-hold:
			case <-r.Context().Done():
			}
			return
		case "/a", "/b":
			pair.Done()
			pair.Wait()
		}
		io.WriteString(w, r.URL.Path)
	})
	type result struct {
		err     error
		watched bool // through the cutSet
		took    time.Duration
	}
	results := make(chan result, 8)
	sets := make(chan *cutSet, 1)
	do := func(ctx context.Context, path string) result {
		ctx, cancel := deadlineIn(ctx, 10*time.Second) // the deadline only, no cancel of its own
		defer cancel()
		start := time.Now()
		_, watched := ctx.Value(cutSetKey{}).(*cutSet)
		watched = watched && ctx.Done() == ctx.Value(cutSetKey{}).(*cutSet).done
		resp, err := c.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://upstream"+path, nil))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		return result{err, watched, time.Since(start)}
	}
	addr := serve(t, &Server{WatchAfter: time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/pair": // two round trips at once in the request's context
			var wg sync.WaitGroup
			for _, p := range []string{"/a", "/b"} {
				wg.Go(func() { results <- do(r.Context(), p) })
			}
			wg.Wait()
		case "/hang":
			sets <- r.Context().Value(cutSetKey{}).(*cutSet)
			results <- do(r.Context(), "/hang")
			<-r.Context().Done()
			results <- do(r.Context(), "/after")
		case "/cancel": // a cancel of its own: watched with an AfterFunc
			ctx, cancel := context.WithCancel(r.Context())
			time.AfterFunc(50*time.Millisecond, cancel)
			results <- do(ctx, "/hang")
		default:
			results <- do(r.Context(), r.URL.Path)
		}
	})})
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for _, path := range []string{"/one", "/two", "/pair", "/three"} {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		n := 1
		if path == "/pair" {
			n = 2
		}
		for range n {
			if r := <-results; r.err != nil || !r.watched {
				t.Fatalf("%s: %v (watched through the cutSet: %v)", path, r.err, r.watched)
			}
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d upstream connections for four requests, two at once, want 2", n)
	}

	resp, err := client.Get("http://" + addr + "/cancel")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r := <-results; r.err == nil || r.watched || r.took > 5*time.Second {
		t.Errorf("a round trip whose context has a cancel of its own: %v after %v (through the cutSet: %v), want an error at its cancel", r.err, r.took, r.watched)
	}

	conn := dial(t, addr)
	io.WriteString(conn, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
	set := <-sets
	testutil.WaitFor(t, "the round trip under way in its server connection's cutSet", func() bool {
		set.mu.Lock()
		defer set.mu.Unlock()
		return len(set.conns) == 1
	})
	conn.Close()
	for _, what := range []string{"the round trip under way", "one started after"} {
		r := <-results
		if r.err == nil || r.took > 5*time.Second {
			t.Errorf("%s when the client went away: %v after %v, want an error at once", what, r.err, r.took)
		}
	}
}

// deadlineIn is ctx with a deadline d from now but no Done of its own
// (the data plane's deadlineCtx has none either): only its parent's end
// is signalled.
func deadlineIn(ctx context.Context, d time.Duration) (context.Context, func()) {
	return &deadlineOnlyCtx{Context: ctx, at: time.Now().Add(d)}, func() {}
}

type deadlineOnlyCtx struct {
	context.Context
	at time.Time
}

func (c *deadlineOnlyCtx) Deadline() (time.Time, bool) { return c.at, true }

// BenchmarkClientRoundTrip: a GET and its small answer on a kept
// connection to a net/http server on loopback, the server's work
// included.
func BenchmarkClientRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	c := &Client{Addr: strings.TrimPrefix(srv.URL, "http://")}
	defer c.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/x", nil)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
