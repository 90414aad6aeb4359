package mesh

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWarmStacks: an HTTP/2 request's handler runs on a kept goroutine and
// serve waits for it; many at once each get theirs; a panic reaches the
// caller (net/http's recovery), http.ErrAbortHandler as it is, any other
// with the stack it was raised on.
func TestWarmStacks(t *testing.T) {
	var ws warmStacks
	var mu sync.Mutex
	seen := map[string]int{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			panic(http.ErrAbortHandler)
		case "/boom":
			panic("boom")
		}
		mu.Lock()
		seen[r.URL.Path]++
		mu.Unlock()
		fmt.Fprint(w, r.URL.Path)
	})
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			path := fmt.Sprintf("/r%d", i)
			rec := httptest.NewRecorder()
			ws.serve(h, rec, httptest.NewRequest("GET", path, nil))
			if rec.Body.String() != path { // written before serve returned
				t.Errorf("%s answered %q", path, rec.Body.String())
			}
		})
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Errorf("%d distinct requests handled, want 200", len(seen))
	}
	idle := func() int {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		return len(ws.idle)
	}
	// A worker goes back to the idle set just after its answer.
	for deadline := time.Now().Add(time.Second); idle() == 0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
	}
	if n := idle(); n == 0 || n > maxWarm {
		t.Errorf("%d goroutines wait for work, want 1 to %d", n, maxWarm)
	}
	for _, tc := range []struct{ path, want string }{{"/abort", http.ErrAbortHandler.Error()}, {"/boom", "boom\ngoroutine "}} {
		func() {
			defer func() {
				v := recover()
				if v == nil {
					t.Fatalf("%s: no panic reached the caller", tc.path)
				}
				if tc.path == "/abort" && v != http.ErrAbortHandler {
					t.Errorf("%s: the panic %v, want http.ErrAbortHandler itself", tc.path, v)
				}
				if !strings.HasPrefix(fmt.Sprint(v), tc.want) || (tc.path == "/boom" && !strings.Contains(fmt.Sprint(v), "TestWarmStacks")) {
					t.Errorf("%s: the panic %q, want %q and the handler's stack", tc.path, v, tc.want)
				}
			}()
			ws.serve(h, httptest.NewRecorder(), httptest.NewRequest("GET", tc.path, nil))
		}()
	}
	// A worker that passed a panic on still serves.
	rec := httptest.NewRecorder()
	ws.serve(h, rec, httptest.NewRequest("GET", "/after", nil))
	if rec.Body.String() != "/after" {
		t.Errorf("after the panics: %q", rec.Body.String())
	}
	// A handler's runtime.Goexit ends the caller's goroutine as it would
	// have ended the handler's own, after its deferred calls.
	exited := make(chan bool)
	go func() {
		returned := false
		defer func() { exited <- returned }()
		ws.serve(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { runtime.Goexit() }), httptest.NewRecorder(),
			httptest.NewRequest("GET", "/goexit", nil))
		returned = true
	}()
	select {
	case returned := <-exited:
		if returned {
			t.Error("serve returned after the handler's Goexit")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve still waits 5 s after the handler's Goexit")
	}
}
