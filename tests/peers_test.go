package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLikeWasmtimeServe is the differential test of components: every
// example wasi:http/proxy component gives the same answers (status, content
// type, body) under wasmesh serve as under `wasmtime serve`, the reference
// host, for the same requests. It runs where wasmtime is installed (`make
// peers`, about 30 minutes of building; not part of CI) and says so where
// not.
func TestLikeWasmtimeServe(t *testing.T) {
	wasmtime, err := exec.LookPath("wasmtime")
	if err != nil {
		t.Skip("wasmtime is not installed: `make peers` builds it (not part of CI)")
	}
	components := []string{"javascript/hello.wasm", "typescript/hello.wasm", "python/hello.wasm",
		"c/hello.wasm", "zig/hello.wasm", "rust/hello.wasm"}
	var config strings.Builder
	config.WriteString("services:\n")
	for i, c := range components {
		fmt.Fprintf(&config, "  c%d: { versions: [ { path: $EX/components/%s } ] }\n", i, c)
	}
	config.WriteString("routes:\n")
	for i := range components {
		fmt.Fprintf(&config, "  - { match: { headers: { x-component: \"%d\" } }, service: c%d }\n", i, i)
	}
	g := serve(t, config.String())
	requests := []struct{ method, path, body string }{
		{"GET", "/a", ""}, {"POST", "/b/c", "hello"}, {"GET", "/d?x=1", ""}, {"PUT", "/", strings.Repeat("z", 100_000)},
	}
	for i, c := range components {
		t.Run(c, func(t *testing.T) {
			ref := wasmtimeServe(t, wasmtime, repoPath("examples", "components", c))
			for _, rq := range requests {
				want := send(t, ref, rq.method, rq.path, rq.body)
				got := send(t, g.url, rq.method, rq.path, rq.body, "X-Component", fmt.Sprint(i))
				if got != want {
					t.Errorf("%s %s:\nwasmesh: %s\nwasmtime: %s", rq.method, rq.path, got, want)
				}
			}
		})
	}
}

// wasmtimeServe starts `wasmtime serve` on file and returns its URL.
func wasmtimeServe(t *testing.T, wasmtime, file string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, wasmtime, "serve", "-Scli", "--addr", addr, file)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	poll(t, "wasmtime serve to listen on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return "http://" + addr
}

// send makes one request and describes the answer as
// "STATUS content-type BODY".
func send(t *testing.T, base, method, path, body string, header ...string) string {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
}
