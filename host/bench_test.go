package host

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/wasi"
)

var langs = []string{"rust", "zig", "c", "typescript", "go"}

func helloWasm(tb testing.TB, lang string) []byte {
	tb.Helper()
	return readFile(tb, filepath.Join("..", "examples", "hello", lang, "hello.wasm"))
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// engineMode is an engine that runs guests in one of the two ways.
type engineMode struct {
	name string
	e    *Engine
}

// engineModes are an engine with reset and reused instances ("reused")
// and one with a new instance for every run ("fresh"), closed when tb ends.
func engineModes(tb testing.TB) []engineMode {
	var modes []engineMode
	for _, m := range []struct {
		name string
		opts Options
	}{
		{"reused", Options{}},
		{"fresh", Options{FreshInstances: true}},
	} {
		e, err := New(context.Background(), m.opts)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { e.Close(context.Background()) })
		modes = append(modes, engineMode{m.name, e})
	}
	return modes
}

// helloCall is a CGI request as the gateway makes it.
func helloCall(out *bytes.Buffer) Call {
	return Call{
		Capabilities: wasi.Capabilities{
			Args: []string{"hello.wasm"},
			Env:  []string{"REQUEST_METHOD=POST", "PATH_INFO=/hello", "QUERY_STRING=", "CONTENT_LENGTH=5"},
		},
		Stdin:       strings.NewReader("hello"),
		Stdout:      out,
		MaxStdout:   1 << 20,
		MemoryLimit: 64 << 20,
	}
}

// TestHelloExamples runs every language's hello through the engine, as the
// gateway does: a GET with no body and a POST with one.
func TestHelloExamples(t *testing.T) {
	e := newEngine(t)
	for _, lang := range langs {
		t.Run(lang, func(t *testing.T) {
			m, err := e.Compile(context.Background(), "", helloWasm(t, lang))
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct{ method, body, want string }{
				{"GET", "", "GET /hello 0 bytes"},
				{"POST", "12345", "POST /hello 5 bytes"},
			} {
				var out bytes.Buffer
				call := helloCall(&out)
				call.Env = []string{"REQUEST_METHOD=" + tc.method, "PATH_INFO=/hello"}
				call.Stdin = strings.NewReader(tc.body)
				if _, err := e.Run(context.Background(), m, call); err != nil {
					t.Fatal(err)
				}
				want := "Content-Type: text/plain\n\nhello from " + lang + ": " + tc.want + "\n"
				if out.String() != want {
					t.Fatalf("%s: got %q, want %q", tc.method, out.String(), want)
				}
			}
		})
	}
}

// BenchmarkCompile measures compiling each hello: cold (no cache), and with
// wazero's file cache warm, as a restarted gateway sees it.
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	for _, lang := range langs {
		wasm := helloWasm(b, lang)
		b.Run(lang+"/cold", func(b *testing.B) {
			for b.Loop() {
				e, err := New(ctx, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.Compile(ctx, "", wasm); err != nil {
					b.Fatal(err)
				}
				e.Close(ctx)
			}
		})
		b.Run(lang+"/filecache", func(b *testing.B) {
			dir := b.TempDir()
			warm, _ := New(ctx, Options{CacheDir: dir})
			if _, err := warm.Compile(ctx, "", wasm); err != nil {
				b.Fatal(err)
			}
			warm.Close(ctx)
			for b.Loop() {
				e, err := New(ctx, Options{CacheDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.Compile(ctx, "", wasm); err != nil {
					b.Fatal(err)
				}
				e.Close(ctx)
			}
		})
	}
}

// BenchmarkRun measures one CGI request as the gateway runs it, after
// Engine.Warm: "reused", in an instance reset after the previous run (or a
// new one where the module grows its memory on every run, see reused/op);
// "fresh", in an instance created and closed for it. go-reactor and
// typescript-reactor are those hellos as reactors (examples/reactor/),
// served from their snapshots. setup-ns/op is the
// time from Run to the guest's first instruction.
func BenchmarkRun(b *testing.B) {
	ctx := context.Background()
	for _, mode := range engineModes(b) {
		e := mode.e
		for _, lang := range append(langs, "go-reactor", "typescript-reactor") {
			var wasm []byte
			if l, ok := strings.CutSuffix(lang, "-reactor"); ok {
				wasm = readFile(b, "../examples/reactor/"+l+"/hello.wasm")
			} else {
				wasm = helloWasm(b, lang)
			}
			m, err := e.Compile(ctx, "", wasm)
			if err != nil {
				b.Fatal(err)
			}
			if err := e.Warm(ctx, m); err != nil {
				b.Fatal(err)
			}
			b.Run(mode.name+"/"+lang, func(b *testing.B) {
				var out bytes.Buffer
				b.ReportAllocs()
				before := e.Stats()
				var setup time.Duration
				for b.Loop() {
					out.Reset()
					res, err := e.Run(ctx, m, helloCall(&out))
					if err != nil {
						b.Fatal(err)
					}
					setup += res.Instantiate
				}
				after := e.Stats()
				b.ReportMetric(float64(setup.Nanoseconds())/float64(b.N), "setup-ns/op")
				if runs := after.InstancesCreated - before.InstancesCreated + after.InstancesReused - before.InstancesReused; runs > 0 {
					b.ReportMetric(float64(after.InstancesReused-before.InstancesReused)/float64(runs), "reused/op")
				}
			})
		}
	}
}

// BenchmarkHandleHTTP serves a GET with each example wasi:http hello
// component: "reused", in an instance reset after the previous request
// (component_pool.go); "fresh", in an instance made and closed for it; a
// "-warm" language, reset to the state a first GET left
// (HTTPRequest.Warmup). reused/op is the share of requests served by a
// reset instance.
func BenchmarkHandleHTTP(b *testing.B) {
	ctx := context.Background()
	for _, mode := range engineModes(b) {
		e := mode.e
		for _, lang := range []string{"javascript", "python", "c", "zig", "rust", "python-warm", "c-warm"} {
			b.Run(mode.name+"/"+lang, func(b *testing.B) {
				lang, warm := strings.CutSuffix(lang, "-warm")
				warmup := ""
				if warm {
					warmup = "/"
				}
				m, err := e.Compile(ctx, "", readFile(b, "../examples/components/"+lang+"/hello.wasm"))
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				before := e.Stats()
				for b.Loop() {
					resp, err := e.HandleHTTP(ctx, m, &HTTPRequest{Method: "GET", PathWithQuery: "/", Scheme: "http",
						Authority: "bench", Header: http.Header{"User-Agent": {"wrk"}}, Warmup: warmup}, 30*time.Second, 64<<20)
					if err != nil {
						b.Fatal(err)
					}
					if resp.Status != http.StatusOK {
						b.Fatalf("status %d", resp.Status)
					}
				}
				after := e.Stats()
				if runs := after.InstancesCreated - before.InstancesCreated + after.InstancesReused - before.InstancesReused; runs > 0 {
					b.ReportMetric(float64(after.InstancesReused-before.InstancesReused)/float64(runs), "reused/op")
				}
			})
		}
	}
}
