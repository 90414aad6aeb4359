package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/wasi"
)

// hostile is internal/component/testdata/hostile.wasm: a wasi:http handler
// that misbehaves as its path's first letter says (its probe.wat lists the
// cases).
const hostile = "../internal/component/testdata/hostile.wasm"

// componentFile is internal/component/testdata/name.
func componentFile(t *testing.T, name string) []byte {
	t.Helper()
	wasm, err := os.ReadFile("../internal/component/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

func hostileRequest(path string) *HTTPRequest {
	return &HTTPRequest{Method: "GET", PathWithQuery: path, Scheme: "http", Authority: "x"}
}

// TestHostileComponent: what a hostile handler does fails its own request
// with an error that says what, and the next request, in the same
// instance once it is reset, is served as if nothing happened.
func TestHostileComponent(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, hostile)
	tests := []struct {
		path       string
		wantStatus int    // with no error
		wantInErr  string // "" for none
	}{
		{path: "/a", wantStatus: 200},
		// Statuses a response may have: 204 and 304 with an empty body
		// taken and finished, as every binding does.
		{path: "/S204", wantStatus: 204},
		{path: "/S304", wantStatus: 304},
		// Statuses it may not: informational ones (the gateway's to send),
		// and those past 599.
		{path: "/S100", wantInErr: "status code 100"},
		{path: "/S101", wantInErr: "status code 101"},
		{path: "/S199", wantInErr: "status code 199"},
		{path: "/S999", wantInErr: "status code 999"},
		// A body never taken: empty, and the response whole.
		{path: "/E", wantStatus: 201},
		// Header fields over 64 KiB, as a module's are refused.
		{path: "/H", wantInErr: "header fields take 70007 bytes, more than 65536"},
		// Trailers alike.
		{path: "/R", wantInErr: "trailer fields take 70007 bytes, more than 65536"},
		// The outparam set twice: the second set's handle was consumed by
		// the first, which the error says.
		{path: "/i", wantInErr: "as response-outparam.set does its outparam"},
		// A handle dropped twice: the error names the drop.
		{path: "/f", wantInErr: "resource.drop of wasi:http/types@0.2.10#fields: canonical ABI: handle"},
	}
	for _, tc := range tests {
		for _, streamed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/streamed=%v", tc.path, streamed), func(t *testing.T) {
				req := hostileRequest(tc.path)
				if streamed {
					req.Respond = func(status int, _ ResponseHeader) io.Writer { return &strictBody{status: status} }
				}
				resp, err := e.HandleHTTP(context.Background(), m, req, 5*time.Second, 0)
				if tc.wantInErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
						t.Fatalf("err = %v, want it to mention %q", err, tc.wantInErr)
					}
				} else if err != nil {
					t.Fatalf("err = %v", err)
				} else if resp.Status != tc.wantStatus || !resp.Finished {
					t.Fatalf("status %d (finished %v), want %d, finished", resp.Status, resp.Finished, tc.wantStatus)
				}
				if resp, err := e.HandleHTTP(context.Background(), m, hostileRequest("/a"), 5*time.Second, 0); err != nil || resp.Status != 200 {
					t.Fatalf("the request after it: %v", err)
				}
			})
		}
	}
}

// strictBody is a response body as net/http's and the gateway's
// ResponseWriters take it: a write to one whose status allows none fails,
// even an empty one.
type strictBody struct {
	status int
	n      int
}

func (b *strictBody) Write(p []byte) (int, error) {
	if b.status == 204 || b.status == 304 || b.status < 200 {
		return 0, errors.New("request method or response status code does not allow body")
	}
	b.n += len(p)
	return len(p), nil
}

// TestComponentFields: fields.append adds a value to those of its name;
// the headers an outgoing-response gives after it is made are immutable
// (WASI 0.2, as wasmtime's): an append to them fails, and changes nothing.
func TestComponentFields(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, hostile)
	for _, tc := range []struct {
		path string
		want []string // x-a's values
	}{
		{"/A", []string{"va", "va"}},
		{"/M", nil},
	} {
		resp, err := e.HandleHTTP(context.Background(), m, hostileRequest(tc.path), 5*time.Second, 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if got := resp.Header.Values("X-A"); resp.Status != 200 || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %d, x-a %q, want 200 and %q", tc.path, resp.Status, got, tc.want)
		}
	}
}

// TestWarmupFailureStaysInItsPool: a warm-up that sets no response turns
// off reused instances for its own pool (its service's warm-up), not for
// another service's pool of the same component.
func TestWarmupFailureStaysInItsPool(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, hostile)
	serve := func(warmup string) {
		t.Helper()
		req := hostileRequest("/a")
		req.Warmup = warmup
		if resp, err := e.HandleHTTP(context.Background(), m, req, 5*time.Second, 0); err != nil || resp.Status != 200 {
			t.Fatalf("warm-up %s: %v", warmup, err)
		}
	}
	serve("/j") // j: the outparam dropped, never set
	for range 3 {
		serve("/a")
	}
	before := e.Stats()
	serve("/a")
	serve("/j")
	after := e.Stats()
	if reused := after.InstancesReused - before.InstancesReused; reused != 1 {
		t.Errorf("instances reused: %d, want 1 (warm-up /a's pool's, not /j's)", reused)
	}
}

// TestLiftBudgetPerCall: the budget for what one host call lifts (64 MiB)
// is each call's: a handler that answers with an error-code holding a 1
// MiB string, 80 times in one reused instance, has each answer lifted.
func TestLiftBudgetPerCall(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, hostile)
	for i := range 80 {
		_, err := e.HandleHTTP(context.Background(), m, hostileRequest("/k1"), 5*time.Second, 0)
		if err == nil || !strings.Contains(err.Error(), "error-code case 38") {
			t.Fatalf("request %d: err = %v, want the handler's error-code (case 38)", i, err)
		}
		if errors.Is(err, ErrDeadline) {
			t.Fatal(err)
		}
	}
}

// TestComponentMemoryOverLimit: a component whose memory at start is more
// than its limit is refused with ErrMemoryLimit, saying how much it
// needs, served or run (wazero was handed a memory smaller than its
// minimum, and panicked).
func TestComponentMemoryOverLimit(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, hostile) // 20 pages at start
	_, err := e.HandleHTTP(context.Background(), m, hostileRequest("/a"), 5*time.Second, 1<<20)
	if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "needs 1310720 bytes of memory at start, limit is 1048576") {
		t.Errorf("served under a limit of 1 MiB: %v", err)
	}
	if resp, err := e.HandleHTTP(context.Background(), m, hostileRequest("/a"), 5*time.Second, 2<<20); err != nil || resp.Status != 200 {
		t.Errorf("served under a limit of 2 MiB: %v", err)
	}
	_, err = e.RunComponent(context.Background(), componentFile(t, "command-c.wasm"), Call{MemoryLimit: 64 << 10, Stdout: io.Discard, Stderr: io.Discard})
	if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "of memory at start, limit is 65536") {
		t.Errorf("run under a limit of 64 KiB: %v", err)
	}
}

// TestHostHeldBounded: what the host holds for a handler beyond its
// memories (bodies written and not sent, fields) is bounded by its memory
// limit: a handler that buffers 32 MiB in each of d responses it never
// sets (N), or in d outgoing requests it never sends (O), has its writes
// refused past the limit, its answer's too (what it buffered is still
// held), which it ignores: its answer fails; one that makes d lists of a
// million fields (F) traps. What it allocates on the Go heap stops
// growing with d once the limit is reached (it grew with d before: 567
// MiB for N9).
func TestHostHeldBounded(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, hostile)
	const limit = 64 << 20
	tests := []struct {
		path      string
		few, many int
		wantInErr string
	}{
		{path: "/N", few: 3, many: 9, wantInErr: "a write failed, which the handler ignored: 67108864 bytes held already, 3 more: more than the host holds for a request"},
		{path: "/O", few: 3, many: 9, wantInErr: "a write failed, which the handler ignored: 67108864 bytes held already, 3 more: more than the host holds for a request"},
		{path: "/F", few: 2, many: 8, wantInErr: "more than the host holds for a request"},
	}
	allocated := func(t *testing.T, path string, want string) uint64 {
		t.Helper()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := e.HandleHTTP(context.Background(), m, hostileRequest(path), 20*time.Second, limit)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to mention %q", path, err, want)
		}
		if resp, err := e.HandleHTTP(context.Background(), m, hostileRequest("/a"), 5*time.Second, limit); err != nil || resp.Status != 200 {
			t.Fatalf("the request after %s: %v", path, err)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			few := allocated(t, fmt.Sprint(tc.path, tc.few), tc.wantInErr)
			many := allocated(t, fmt.Sprint(tc.path, tc.many), tc.wantInErr)
			if many > few+few/2 {
				t.Errorf("the Go heap took %d MiB for %s%d, %d MiB for %s%d: it grows with what the guest asks for", few>>20, tc.path, tc.few, many>>20, tc.path, tc.many)
			}
		})
	}
}

// TestOverlongBodyFails: a handler that writes past the 32 MiB a response
// body may have, ignoring the write's error, has its answer fail rather
// than sent as if whole.
func TestOverlongBodyFails(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, hostile)
	_, err := e.HandleHTTP(context.Background(), m, hostileRequest("/B"), 20*time.Second, 0)
	if err == nil || !strings.Contains(err.Error(), "response body: a write failed, which the handler ignored: body over 33554432 bytes") {
		t.Fatalf("err = %v", err)
	}
}

// TestNoResponseAfterTheDeadline: a handler whose wait the deadline cuts
// short (X blocks on a pollable of an hour) and that then sets a 200 has
// not its answer sent: the request failed at its deadline.
func TestNoResponseAfterTheDeadline(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, hostile)
	req := hostileRequest("/X")
	sent := false
	req.Respond = func(int, ResponseHeader) io.Writer { sent = true; return io.Discard }
	_, err := e.HandleHTTP(context.Background(), m, req, 100*time.Millisecond, 0)
	if !errors.Is(err, ErrDeadline) {
		t.Errorf("err = %v, want ErrDeadline", err)
	}
	if sent {
		t.Error("the response set after the deadline was sent")
	}
}

// TestHandlerSignature: a wasi:http handler whose handle is not
// handle(own<incoming-request>, own<response-outparam>) is refused at
// compile, saying what it takes (it was called with its arguments read
// as what they are not).
func TestHandlerSignature(t *testing.T) {
	e := newEngine(t)
	for _, tc := range []struct{ file, want string }{
		{"badsig-1.wasm", "takes (own<wasi:http/types@0.2.0#incoming-request>) and returns 0 results"},
		{"badsig-2.wasm", "takes (borrow<wasi:http/types@0.2.0#incoming-request>, own<wasi:http/types@0.2.0#response-outparam>)"},
		{"badsig-3.wasm", "takes (u32, u32)"},
		{"badsig-4.wasm", "and returns 1 results"},
		{"badsig-5.wasm", "takes (own<wasi:http/types@0.2.0#response-outparam>, own<wasi:http/types@0.2.0#incoming-request>)"},
	} {
		_, err := e.Compile(context.Background(), "", componentFile(t, tc.file))
		if !errors.Is(err, ErrNotHTTP) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrNotHTTP and %q", tc.file, err, tc.want)
		}
	}
}

// TestNotHandlerSaysWhy: a component with no wasi:http/incoming-handler
// of 0.2.x whose exports say why is told so, not called a library for an
// instance of its own it exports (componentize-py's "exports").
func TestNotHandlerSaysWhy(t *testing.T) {
	e := newEngine(t)
	for _, tc := range []struct{ file, want string }{
		{"nothandler-command-lib.wasm", "it is a wasi:cli command (it exports wasi:cli/run@0.2.0): run it with wasmesh run"},
		{"nothandler-handler-rc.wasm", "it exports wasi:http/incoming-handler@0.2.0-rc-2023-12-05, and this host serves wasi:http/incoming-handler@0.2.x; version 0.2.0-rc-2023-12-05 is not one"},
		{"command-c.wasm", "it is a wasi:cli command (it exports wasi:cli/run@0.2."},
	} {
		m, err := e.Compile(context.Background(), "", componentFile(t, tc.file))
		if err != nil {
			if !errors.Is(err, ErrNotHTTP) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want ErrNotHTTP and %q", tc.file, err, tc.want)
			}
			continue
		}
		if got := m.NotHandler(); !strings.Contains(got, tc.want) {
			t.Errorf("%s: NotHandler() = %q, want %q", tc.file, got, tc.want)
		}
	}
}

// TestComponentNestingLimit: a component's core modules are checked as a
// module version is (wasmbin.CheckLimits): one nesting 1,001 loops is
// refused before wazero compiles it.
func TestComponentNestingLimit(t *testing.T) {
	e := newEngine(t)
	if _, err := e.Compile(context.Background(), "", componentFile(t, "deep-loops.wasm")); err == nil || !strings.Contains(err.Error(), "core instance 0: section 10 (code) at offset") || !strings.Contains(err.Error(), "nests loops more than 1000 deep") {
		t.Fatalf("err = %v", err)
	}
}

// TestHeldGivenBack: a response's body counts in what the host holds for
// the handler from when it comes until the handler drops it, taken (G)
// or not (K, the future alone dropped): one that fetches a hundred 1 MiB
// responses one after another, dropping each, stays within a 64 MiB limit
// (without the drops, from the 64th on each would fail as too large).
func TestHeldGivenBack(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, hostile)
	body := bytes.Repeat([]byte("x"), 1<<20)
	for _, path := range []string{"/G", "/K"} {
		req := hostileRequest(path)
		req.Outbound = func(context.Context, *wasi.OutboundRequest) (*wasi.OutboundResponse, int) {
			return &wasi.OutboundResponse{Status: 200, Body: body}, CodeOK
		}
		resp, err := e.HandleHTTP(context.Background(), m, req, 20*time.Second, 64<<20)
		if err != nil || resp.Status != 200 {
			t.Errorf("%s: status %v, %v: want 200 (none of them failed)", path, resp, err)
		}
	}
}

// TestHeldUntaken: responses that come and are never taken nor dropped
// count in what the host holds: a handler that fetches a hundred
// responses of almost 1 MiB and keeps their futures gets, past a 64 MiB
// limit, a failed one (HTTP-response-body-size): the host holds no more.
func TestHeldUntaken(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, hostile)
	body := bytes.Repeat([]byte("x"), 1<<20-4096) // 64 fit, with room for the answer
	req := hostileRequest("/D")
	req.Outbound = func(context.Context, *wasi.OutboundRequest) (*wasi.OutboundResponse, int) {
		return &wasi.OutboundResponse{Status: 200, Body: body}, CodeOK
	}
	resp, err := e.HandleHTTP(context.Background(), m, req, 20*time.Second, 64<<20)
	if err != nil || resp.Status != 201 {
		t.Errorf("status %v, %v: want 201 (the last of a hundred kept failed)", resp, err)
	}
}
