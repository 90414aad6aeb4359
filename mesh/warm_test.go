package mesh

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestServeWarm: an HTTP/2 request's handler runs on a kept goroutine
// (internal/warm) and serveWarm waits for it; many at once each get
// theirs; a panic reaches the caller (net/http's recovery),
// http.ErrAbortHandler as it is, any other with the stack it was raised on.
func TestServeWarm(t *testing.T) {
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
			serveWarm(h, rec, httptest.NewRequest("GET", path, nil))
			if rec.Body.String() != path { // written before serve returned
				t.Errorf("%s answered %q", path, rec.Body.String())
			}
		})
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Errorf("%d distinct requests handled, want 200", len(seen))
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
				if !strings.HasPrefix(fmt.Sprint(v), tc.want) || (tc.path == "/boom" && !strings.Contains(fmt.Sprint(v), "TestServeWarm")) {
					t.Errorf("%s: the panic %q, want %q and the handler's stack", tc.path, v, tc.want)
				}
			}()
			serveWarm(h, httptest.NewRecorder(), httptest.NewRequest("GET", tc.path, nil))
		}()
	}
	// A worker that passed a panic on still serves.
	rec := httptest.NewRecorder()
	serveWarm(h, rec, httptest.NewRequest("GET", "/after", nil))
	if rec.Body.String() != "/after" {
		t.Errorf("after the panics: %q", rec.Body.String())
	}
}
