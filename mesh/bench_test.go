package mesh

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing but the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkServeHTTP is the gateway's own cost per request, from a parsed
// request to a written response, with the guest's run: no sockets.
func BenchmarkServeHTTP(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.WriteFile(path, []byte(expand(helloConfig)), 0o644); err != nil {
		b.Fatal(err)
	}
	g, err := New(context.Background(), Options{
		ConfigPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError})),
		CacheDir: filepath.Join(os.TempDir(), "wasmesh-test-cache"),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close(context.Background())
	if err := g.LoadFile(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, lang := range []string{"rust", "zig", "c", "typescript"} {
		b.Run(lang, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			req, _ := http.NewRequest("GET", "http://bench/"+lang+"/hi", nil)
			req.Header.Set("User-Agent", "wrk")
			req.RemoteAddr = "127.0.0.1:40000"
			b.ReportAllocs()
			for b.Loop() {
				r := *req
				u := *req.URL
				r.URL = &u
				clear(w.h)
				g.ServeHTTP(w, &r)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
