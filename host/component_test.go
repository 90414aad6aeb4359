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
