package dataplane_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmesh/wasmesh/internal/control"
	"github.com/wasmesh/wasmesh/internal/dataplane"
	"github.com/wasmesh/wasmesh/internal/testutil"
)

// TestUpstreamRequestAcrossReload: a request routed to an upstream
// version before a reload that drops the version (its endpoint changed),
// and proxied after it — it waited for a concurrency slot meanwhile — is
// still served, by a pool made again for it, not failed by the pool the
// reload closed.
func TestUpstreamRequestAcrossReload(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer backend.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "wasmesh.yaml")
	write := func(endpoint string) {
		cfg := "drain_delay: 0s\nstore: " + filepath.Join(dir, "store") + `
services:
  users:
    limits: { max_concurrency: 1, timeout: 10s }
    versions: [ { upstream: { endpoints: [ "` + endpoint + `" ] } } ]
routes:
  - { match: { path_prefix: / }, service: users }
`
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	plane, err := dataplane.New(ctx, dataplane.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer plane.Close(ctx)
	loader := control.New(plane, control.Options{ConfigPath: path, Logger: log})
	write(backend.URL)
	if err := loader.LoadFile(ctx); err != nil {
		t.Fatal(err)
	}
	serve := func(path string) <-chan *httptest.ResponseRecorder {
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() {
			w := httptest.NewRecorder()
			plane.ServeHTTP(w, httptest.NewRequest("GET", "http://users"+path, nil))
			done <- w
		}()
		return done
	}
	slow := serve("/slow")
	<-entered // the slot is taken
	waiting := serve("/after")
	testutil.WaitFor(t, "the second request to queue", func() bool { return dataplane.Queued(plane, "users") == 1 })
	// The same backend by another name: a new version, the old one's pool closed.
	write(strings.Replace(backend.URL, "127.0.0.1", "localhost", 1))
	if err := loader.LoadFile(ctx); err != nil {
		t.Fatal(err)
	}
	close(release)
	for _, c := range []<-chan *httptest.ResponseRecorder{slow, waiting} {
		if w := <-c; w.Code != http.StatusOK || !strings.HasPrefix(w.Body.String(), "ok ") {
			t.Errorf("status %d, body %q", w.Code, w.Body.String())
		}
	}
}
