//go:build !race

package mesh

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestServeWarmAllocs: an HTTP/2 request handed to a kept goroutine
// allocates nothing for the hand-off (its call is kept in h2Calls).
func TestServeWarmAllocs(t *testing.T) {
	served := 0
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ })
	r := httptest.NewRequest("GET", "/", nil)
	if a := testing.AllocsPerRun(1000, func() { serveWarm(h, nil, r) }); a != 0 {
		t.Errorf("serveWarm allocated %.1f times a request, want none", a)
	}
	if served == 0 {
		t.Error("the handler never ran")
	}
}
