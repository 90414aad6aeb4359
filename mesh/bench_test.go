package mesh

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/modules"
)

// discardWriter is a ResponseWriter that keeps nothing but the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// benchGateway is a gateway on the config file at path, loaded, closed
// when b ends; it logs errors only.
func benchGateway(b *testing.B, path string) *Gateway {
	g, err := New(context.Background(), Options{
		ConfigPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError})),
		CacheDir: filepath.Join(os.TempDir(), "wasmesh-test-cache"),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close(context.Background()) })
	if err := g.LoadFile(context.Background()); err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkServeHTTP is the gateway's own cost per request, from a parsed
// request to a written response, with the guest's run: no sockets.
func BenchmarkServeHTTP(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.WriteFile(path, []byte(expand(helloConfig)), 0o644); err != nil {
		b.Fatal(err)
	}
	g := benchGateway(b, path)
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

// laneBenchConfig is a three-hop chain: frontend (Rust) calls users (Zig
// frontend), which calls orders (the Zig hello). $LANES is "" or a lane
// that puts users and orders on copies of the same guests (the same work,
// other digests).
const laneBenchConfig = `
drain_delay: 0s
services:
  frontend:
    versions: [ { path: $EX/frontend/rust/frontend.wasm } ]
    outbound: [ "wasmesh://users" ]
  users:
    versions:
      - { path: $EX/frontend/zig/frontend.wasm, name: stable, weight: 100 }
$USERS_V2
    env: { USERS_URL: "wasmesh://orders" }
    outbound: [ "wasmesh://orders" ]
  orders:
    versions:
      - { path: $EX/hello/zig/hello.wasm, name: stable, weight: 100 }
$ORDERS_V2
$LANES
routes:
  - { match: { path_prefix: / }, service: frontend }
`

// BenchmarkLanes is the three-hop chain served by a gateway without lanes
// ("none"), and by one with lanes: outside them ("off"), in a lane without
// versions ("carry": entered by a header at the edge, carried in baggage by
// the host on both calls), and in a lane with versions of both inner
// services ("on": carried and selected), one request of each in turn,
// timed apart: what carrying and selecting a lane costs
// (docs/PERFORMANCE.md), with the machine's drift shared by all four.
func BenchmarkLanes(b *testing.B) {
	dir := b.TempDir()
	copyWith := func(src, name string) string {
		wasm, err := os.ReadFile(src)
		if err != nil {
			b.Fatal(err)
		}
		// A custom section: the same guest under another digest.
		wasm = append(wasm, 0, byte(1+len(name)+1), byte(len(name)))
		wasm = append(append(wasm, name...), 'x')
		out := filepath.Join(dir, name+".wasm")
		if err := os.WriteFile(out, wasm, 0o644); err != nil {
			b.Fatal(err)
		}
		return out
	}
	usersV2 := copyWith(filepath.Join(examples, "frontend/zig/frontend.wasm"), "users-v2")
	stable := fileDigest(b, filepath.Join(examples, "frontend/zig/frontend.wasm"))
	digests := map[string]string{"none": stable, "off": stable, "carry": stable, "on": fileDigest(b, usersV2)}
	ordersV2 := copyWith(filepath.Join(examples, "hello/zig/hello.wasm"), "orders-v2")
	configs := map[string]string{
		"none": strings.NewReplacer("$USERS_V2", "", "$ORDERS_V2", "", "$LANES", "").Replace(laneBenchConfig),
		"lanes": strings.NewReplacer(
			"$USERS_V2", "      - { path: "+usersV2+", name: v2, weight: 0 }",
			"$ORDERS_V2", "      - { path: "+ordersV2+", name: v2, weight: 0 }",
			"$LANES", "lanes:\n  v2: { versions: { users: v2, orders: v2 }, entry: [ { header: X-Lane=v2 } ] }\n  carry: { entry: [ { header: X-Lane=carry } ] }").Replace(laneBenchConfig),
	}
	modes := []string{"none", "off", "carry", "on"}
	gateways := map[string]*Gateway{}
	requests := map[string]*http.Request{}
	for _, name := range []string{"none", "lanes"} {
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(expand(configs[name])), 0o644); err != nil {
			b.Fatal(err)
		}
		gateways[name] = benchGateway(b, path)
	}
	gateways["off"], gateways["carry"], gateways["on"] = gateways["lanes"], gateways["lanes"], gateways["lanes"]
	for _, mode := range modes {
		g := gateways[mode]
		req, _ := http.NewRequest("GET", "http://bench/hi", nil)
		req.Header.Set("User-Agent", "wrk")
		switch mode {
		case "on":
			req.Header.Set("X-Lane", "v2")
		case "carry":
			req.Header.Set("X-Lane", "carry")
		}
		req.RemoteAddr = "127.0.0.1:40000"
		// The chain reports the version of users that answered.
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req.Clone(context.Background()))
		if !strings.Contains(rec.Body.String(), digests[mode]) {
			b.Fatalf("%s: users %s did not answer: %d %s", mode, digests[mode], rec.Code, rec.Body)
		}
		requests[mode] = req
	}
	w := &discardWriter{h: http.Header{}}
	var spent [4]time.Duration
	b.ReportAllocs()
	turn := 0
	for b.Loop() {
		turn++
		for k := range modes { // each first in turn: no mode always follows another
			i := (turn + k) % len(modes)
			mode := modes[i]
			req := requests[mode]
			r := *req
			u := *req.URL
			r.URL = &u
			r.Header = req.Header.Clone()
			clear(w.h)
			start := time.Now()
			gateways[mode].ServeHTTP(w, &r)
			spent[i] += time.Since(start)
			if w.status != http.StatusOK {
				b.Fatalf("%s: status %d", mode, w.status)
			}
		}
	}
	for i, mode := range modes {
		b.ReportMetric(float64(spent[i].Nanoseconds())/float64(b.N), mode+"-ns/req")
	}
	b.ReportMetric(float64(spent[3])/float64(spent[0]), "on/none")
	b.ReportMetric(float64(spent[3])/float64(spent[1]), "on/off")
}

func fileDigest(tb testing.TB, path string) string {
	wasm, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return modules.DigestOf(wasm)
}

// BenchmarkReloadOneOf is a load of a config of n services (each one
// version of its own module, all compiled already, and a route) that
// changes one service's sticky key: what a reload costs as the fleet
// grows, the work that does not depend on the change.
func BenchmarkReloadOneOf(b *testing.B) {
	wasm, err := os.ReadFile(filepath.Join(examples, "hello", "zig", "hello.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			var cfg strings.Builder
			cfg.WriteString("listen: 127.0.0.1:0\nadmin: off\nstore: " + filepath.Join(dir, "store") + "\nservices:\n")
			for i := range n {
				m := filepath.Join(dir, fmt.Sprintf("m%d.wasm", i))
				// A custom section makes each module its own (wazero 1.12
				// refuses one with no data at a module's end).
				name := fmt.Sprintf("m%d", i)
				section := append([]byte{byte(len(name))}, name...)
				section = append(section, 1)
				if err := os.WriteFile(m, append(append(slices.Clone(wasm), 0, byte(len(section))), section...), 0o644); err != nil {
					b.Fatal(err)
				}
				fmt.Fprintf(&cfg, "  s%d: { versions: [ { path: %s, weight: 100 } ] }\n", i, m)
			}
			cfg.WriteString("routes:\n")
			for i := range n {
				fmt.Fprintf(&cfg, "  - { match: { path_prefix: /s%d/ }, service: s%d }\n", i, i)
			}
			path := filepath.Join(dir, "wasmesh.yaml")
			if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			g := benchGateway(b, path)
			configs := [2][]byte{[]byte(cfg.String()), []byte(strings.Replace(cfg.String(), "weight: 100 } ] }\n", "weight: 100 } ], sticky: \"header:x-user\" }\n", 1))}
			b.ResetTimer()
			for i := range b.N {
				if err := g.Reload(context.Background(), configs[(i+1)%2]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
