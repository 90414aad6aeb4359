package dataplane_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/internal/control"
	"github.com/wasmesh/wasmesh/internal/dataplane"
)

// discardWriter is a ResponseWriter that keeps nothing but the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// benchPlane is a data plane serving cfg (a config without its store,
// which goes in a temp dir), loaded, closed when b ends.
func benchPlane(b *testing.B, cfg string) *dataplane.Plane {
	dir := b.TempDir()
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.WriteFile(path, []byte("drain_delay: 0s\nstore: "+filepath.Join(dir, "store")+cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
	plane, err := dataplane.New(ctx, dataplane.Options{Logger: log, CacheDir: filepath.Join(os.TempDir(), "wasmesh-test-cache")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { plane.Close(ctx) })
	if err := control.New(plane, control.Options{ConfigPath: path, Logger: log}).LoadFile(ctx); err != nil {
		b.Fatal(err)
	}
	return plane
}

// BenchmarkReleaseFigures is what collecting the per-version figures that
// release checks need costs the request path: the same gateway serves the
// Rust and Zig hello guests with the figures on and off, request after
// request, each first in turn; reported as ns per request of each and
// their ratio (docs/PERFORMANCE.md; the bar is on/off ≤ 1.02).
func BenchmarkReleaseFigures(b *testing.B) {
	examples, _ := filepath.Abs("../../examples")
	for _, guest := range []string{"hello/rust/hello.wasm", "hello/zig/hello.wasm"} {
		if _, err := os.Stat(filepath.Join(examples, guest)); err != nil {
			b.Skipf("%s is not built (make examples): %v", guest, err)
		}
	}
	plane := benchPlane(b, `
services:
  hello:
    versions:
      - { path: `+filepath.Join(examples, "hello/rust/hello.wasm")+`, name: v1, weight: 50 }
      - { path: `+filepath.Join(examples, "hello/zig/hello.wasm")+`, name: v2, weight: 50 }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	req, _ := http.NewRequest("GET", "http://bench/hi", nil)
	req.Header.Set("User-Agent", "wrk")
	req.RemoteAddr = "127.0.0.1:40000"
	w := &discardWriter{h: http.Header{}}
	serve := func() {
		r := *req
		u := *req.URL
		r.URL = &u
		r.Header = req.Header.Clone()
		clear(w.h)
		plane.ServeHTTP(w, &r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	var spent [2]time.Duration // off, on
	b.ReportAllocs()
	turn := 0
	for b.Loop() {
		turn++
		for k := range 2 {
			on := (turn+k)%2 == 1
			dataplane.SetFigures(plane, on)
			start := time.Now()
			serve()
			if on {
				spent[1] += time.Since(start)
			} else {
				spent[0] += time.Since(start)
			}
		}
	}
	dataplane.SetFigures(plane, true)
	b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N), "off-ns/req")
	b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N), "on-ns/req")
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "on/off")
}

// BenchmarkLinkCall is a typed call against the same work over an
// in-process wasmesh:// HTTP call, side by side: the Zig hasher-http
// component exports example:crypto/hash and serves HTTP, both hashing 1
// KiB to 32 bytes; the link calls sha256(1 KiB) as the C client's calls
// are made, the HTTP call POSTs the 1 KiB to wasmesh://crypto/. Reported
// as ns per call of each and their ratio (docs/PERFORMANCE.md; the bar is
// link/http ≤ 0.10).
func BenchmarkLinkCall(b *testing.B) {
	examples, _ := filepath.Abs("../../examples")
	client, hasher := filepath.Join(examples, "links/c/client.wasm"), filepath.Join(examples, "links/zig/hasher-http.wasm")
	for _, f := range []string{client, hasher} {
		if _, err := os.Stat(f); err != nil {
			b.Skipf("%s is not built (make examples): %v", f, err)
		}
	}
	plane := benchPlane(b, `
services:
  front:
    versions: [ { path: `+client+` } ]
    links: { "example:crypto/hash": crypto }
  crypto:
    versions: [ { path: `+hasher+` } ]
routes:
  - { match: { path_prefix: / }, service: front }
`)
	data := bytes.Repeat([]byte("wasmesh!"), 128) // 1 KiB
	want := sha256.Sum256(data)
	const iface = "example:crypto/hash@0.1"
	link := func() {
		out, err := dataplane.CallLink(plane, "front", iface, "sha256", data)
		if got, _ := out.([]byte); err != nil || !bytes.Equal(got, want[:]) {
			b.Fatalf("link: %x, %v", out, err)
		}
	}
	call := func() {
		resp, code := dataplane.CallService(plane, "front", "wasmesh://crypto/", data)
		if code != host.CodeOK || resp.Status != http.StatusOK || !bytes.Equal(resp.Body, want[:]) {
			b.Fatalf("http: code %d, %+v", code, resp)
		}
	}
	var spent [2]time.Duration // link, http
	turn := 0
	for b.Loop() {
		turn++
		for k := range 2 {
			start := time.Now()
			if (turn+k)%2 == 0 {
				link()
				spent[0] += time.Since(start)
			} else {
				call()
				spent[1] += time.Since(start)
			}
		}
	}
	b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N), "link-ns/call")
	b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N), "http-ns/call")
	b.ReportMetric(float64(spent[0])/float64(spent[1]), "link/http")
}
