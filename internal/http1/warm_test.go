package http1

import (
	"bufio"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

// TestWarmRequests: a connection's first request, and one that comes more
// than warmAfter after the one before started, runs on one of workers; one
// right after the one before (pipelined here) runs on the connection's own
// goroutine. On a worker as on the connection's goroutine, a handler's
// panic is answered 500 and logged, and http.ErrAbortHandler closes the
// connection without an answer and is not logged.
func TestWarmRequests(t *testing.T) {
	panics := map[string]any{"/abort": http.ErrAbortHandler, "/boom": "boom"}
	var mu sync.Mutex
	var ids []int
	var log testutil.LockedBuffer
	// Longer than the constant, so that a slow machine serves the first
	// request and the next within it.
	const after = 300 * time.Millisecond
	addr := serve(t, &Server{
		warmAfter: after,
		Logger:    slog.New(slog.NewTextHandler(&log, nil)),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if v, ok := panics[r.URL.Path]; ok {
				panic(v)
			}
			mu.Lock()
			ids = append(ids, testutil.GoroutineID())
			mu.Unlock()
			io.WriteString(w, r.URL.Path)
		}),
	})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	read := func(path string) {
		t.Helper()
		readAnswer(t, br, path, path)
	}
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
	read("/1")
	read("/2")
	time.Sleep(after + 50*time.Millisecond)
	io.WriteString(c, "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
	read("/3")
	mu.Lock()
	first, next, later := ids[0], ids[1], ids[2]
	mu.Unlock()
	if first == next {
		t.Errorf("the first request and the one pipelined after it ran on the same goroutine (%d): want a worker, then the connection's", first)
	}
	if later == next {
		t.Errorf("a request %v after the one before ran on the connection's goroutine (%d), want a worker's", after+50*time.Millisecond, later)
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
