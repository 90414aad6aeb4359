package host

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHandleHTTPErrors: a wasi:http handler that breaks the rules fails its
// own request with an error that says how.
func TestHandleHTTPErrors(t *testing.T) {
	e := newEngine(t)
	tests := []struct {
		file      string
		timeout   time.Duration
		wantErr   error
		wantInErr string
	}{
		{file: "misbehave-never.wasm", wantErr: ErrNoResponse},
		{file: "misbehave-trap.wasm", wantInErr: "unreachable"},
		{file: "misbehave-loop.wasm", timeout: 200 * time.Millisecond, wantErr: ErrDeadline},
		// The body finished while its stream lives.
		{file: "misbehave-children.wasm", wantInErr: "incoming-body.finish: resource has children"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m := compileFile(t, e, filepath.Join("../internal/component/testdata", tc.file))
			_, err := e.HandleHTTP(context.Background(), m, &HTTPRequest{Method: "POST", PathWithQuery: "/",
				Scheme: "http", Authority: "x", Body: strings.NewReader("body")}, tc.timeout, 0)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("err = %v, want it to mention %q", err, tc.wantInErr)
			}
		})
	}
}

// TestComponentIsolation: a request served by a reset instance finds it
// as instantiation left it, whatever the requests before it did: counted
// in memory and a global (GET), trapped (POST), grew the memory (PUT), or
// left a handle behind (DELETE). isolation.wasm answers 211 from a pristine
// instance and more from one that kept state (its probe.wat says how).
func TestComponentIsolation(t *testing.T) {
	for _, mode := range engineModes(t) {
		t.Run(mode.name, func(t *testing.T) {
			ctx, e := context.Background(), mode.e
			m := compileFile(t, e, "../internal/component/testdata/isolation.wasm")
			if m.Reusable == (mode.name == "fresh") {
				t.Fatalf("Reusable = %v (%s)", m.Reusable, m.NotReusable)
			}
			before := e.Stats()
			methods := []string{"GET", "GET", "POST", "GET", "PUT", "GET", "DELETE", "GET", "GET"}
			for i, method := range methods {
				resp, err := e.HandleHTTP(ctx, m, &HTTPRequest{Method: method, PathWithQuery: "/", Scheme: "http", Authority: "x"}, 0, 0)
				if method == "POST" {
					if err == nil || !strings.Contains(err.Error(), "unreachable") {
						t.Fatalf("request %d (POST): err = %v, want the trap", i, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("request %d (%s): %v", i, method, err)
				}
				if resp.Status != 211 {
					t.Errorf("request %d (%s): status %d, want 211 (state of an earlier request seen)", i, method, resp.Status)
				}
			}
			after := e.Stats()
			if mode.name == "reused" {
				// The first GET creates; the trap and the grown memory
				// each cost a new instance.
				if created := after.InstancesCreated - before.InstancesCreated; created != 3 {
					t.Errorf("%d instances created, want 3", created)
				}
				if reused := after.InstancesReused - before.InstancesReused; reused != int64(len(methods)-3) {
					t.Errorf("%d requests served by a reset instance, want %d", reused, len(methods)-3)
				}
			}
		})
	}
}

// TestHandleHTTPConcurrent: concurrent requests to components whose
// instantiation differs from instance to instance (wasi-libc's reactor
// start seeds its stack protector from wasi:random; a second _initialize
// on its memory traps) are each answered right by reset instances.
func TestHandleHTTPConcurrent(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	for _, lang := range []string{"c", "zig", "rust"} {
		t.Run(lang, func(t *testing.T) {
			m := compileFile(t, e, "../examples/components/"+lang+"/hello.wasm")
			before := e.Stats()
			const workers, each = 8, 50
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						path := fmt.Sprintf("/w%d/%d", w, i)
						resp, err := e.HandleHTTP(ctx, m, &HTTPRequest{Method: "POST", PathWithQuery: path + "?q", Scheme: "http",
							Authority: "x", Body: strings.NewReader(path)}, 10*time.Second, 64<<20)
						want := fmt.Sprintf("hello from %s: POST %s %d bytes\n", lang, path, len(path))
						if err != nil {
							t.Errorf("POST %s: %v", path, err)
							return
						}
						if string(resp.Body) != want {
							t.Errorf("POST %s: %q, want %q", path, resp.Body, want)
							return
						}
					}
				}()
			}
			wg.Wait()
			after := e.Stats()
			created, reused := after.InstancesCreated-before.InstancesCreated, after.InstancesReused-before.InstancesReused
			if created > workers || created+reused != workers*each {
				t.Errorf("%d instances created and %d reused for %d requests from %d workers", created, reused, workers*each, workers)
			}
		})
	}
}
