package host

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
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
