package http1

import (
	"bufio"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

// TestWarmRequests: a request runs on the connection's own goroutine only
// when it and the one before each came within warmAfter of the previous
// one's start (pipelined here); the first two on a connection, one after a
// wait and the first quick one after it run on one of workers. On a
// worker as on the connection's goroutine, a handler's panic is answered
// 500 and logged, and http.ErrAbortHandler closes the connection without
// an answer and is not logged.
func TestWarmRequests(t *testing.T) {
	panics := map[string]any{"/abort": http.ErrAbortHandler, "/boom": "boom"}
	var mu sync.Mutex
	ran := map[string]int{} // path → goroutine id
	connGoroutine := 0      // ConnState runs on the connection's goroutine
	var log testutil.LockedBuffer
	// Longer than the constant, so that a slow machine serves pipelined
	// requests within it.
	const after = 300 * time.Millisecond
	addr := serve(t, &Server{
		warmAfter: after,
		Logger:    slog.New(slog.NewTextHandler(&log, nil)),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateActive {
				mu.Lock()
				connGoroutine = testutil.GoroutineID()
				mu.Unlock()
			}
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if v, ok := panics[r.URL.Path]; ok {
				panic(v)
			}
			mu.Lock()
			ran[r.URL.Path] = testutil.GoroutineID()
			mu.Unlock()
			io.WriteString(w, r.URL.Path)
		}),
	})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	ask := func(paths ...string) {
		t.Helper()
		var b strings.Builder
		for _, p := range paths {
			b.WriteString("GET " + p + " HTTP/1.1\r\nHost: x\r\n\r\n")
		}
		io.WriteString(c, b.String())
		for _, p := range paths {
			readAnswer(t, br, p, p)
		}
	}
	ask("/1", "/2", "/3", "/4")
	time.Sleep(after + 50*time.Millisecond)
	ask("/5", "/6")
	mu.Lock()
	conn, on := connGoroutine, maps.Clone(ran)
	mu.Unlock()
	for _, tc := range []struct {
		path   string
		inConn bool
	}{{"/1", false}, {"/2", false}, {"/3", true}, {"/4", true}, {"/5", false}, {"/6", false}} {
		if got := on[tc.path] == conn; got != tc.inConn {
			t.Errorf("%s ran on goroutine %d, the connection's is %d: want on the connection's goroutine %v", tc.path, on[tc.path], conn, tc.inConn)
		}
	}

	// Panics in requests on workers (each the first on its connection).
	for _, tc := range []struct {
		path   string
		status int // 0: no answer
	}{{"/boom", 500}, {"/abort", 0}} {
		resps, _, closed := exchange(t, addr, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n", min(tc.status, 1))
		if tc.status != 0 && resps[0].StatusCode != tc.status {
			t.Errorf("%s: answered %d, want %d", tc.path, resps[0].StatusCode, tc.status)
		}
		if !closed {
			t.Errorf("%s: the connection was left open", tc.path)
		}
	}
	testutil.WaitFor(t, "the handler's panic logged", func() bool { return strings.Contains(log.String(), "boom") })
	time.Sleep(50 * time.Millisecond) // the aborted connection's goroutine ends after its answer
	logged := log.String()
	if strings.Contains(logged, "abort") {
		t.Errorf("http.ErrAbortHandler was logged:\n%s", logged)
	}
}
