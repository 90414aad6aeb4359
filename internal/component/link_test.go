package component_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasip2"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
)

func decode(t *testing.T, file string) *component.Component {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := component.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRunCommands runs each command component made from a hello module:
// the CGI request in its environment and stdin, the response on stdout, as
// the module answers it.
func TestRunCommands(t *testing.T) {
	files, _ := filepath.Glob("testdata/command-*.wasm")
	if len(files) == 0 {
		t.Fatal("no command components in testdata")
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for _, file := range files {
		lang := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "command-"), ".wasm")
		t.Run(lang, func(t *testing.T) {
			l, err := component.Link(ctx, rt, decode(t, file), wasip2.Host())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close(ctx)
			for run := range 2 { // a second instance starts afresh
				var out bytes.Buffer
				inst, err := l.Instantiate(ctx, &wasip2.Context{
					Args:  []string{"hello"},
					Env:   [][2]string{{"REQUEST_METHOD", "POST"}, {"PATH_INFO", "/hello"}, {"CONTENT_LENGTH", "5"}},
					Stdin: strings.NewReader("hello"), Stdout: &out,
				})
				if err != nil {
					t.Fatal(err)
				}
				res, err := inst.Call(ctx, "wasi:cli/run@0.2.12", "run")
				inst.Close(ctx)
				var exit *wasip2.ExitError
				if errors.As(err, &exit) && exit.Code == 0 {
					err, res = nil, []any{cabi.VariantValue{}}
				}
				if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				want := "Content-Type: text/plain\n\nhello from " + lang + ": POST /hello 5 bytes\n"
				if res[0] != (cabi.VariantValue{}) || out.String() != want {
					t.Fatalf("run %d: %#v, stdout %q; want ok and %q", run, res, out.String(), want)
				}
			}
		})
	}
}

// TestLinkMissingImport: an import the host lacks is refused when linking,
// naming the interface and function.
func TestLinkMissingImport(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	_, err := component.Link(ctx, rt, decode(t, "testdata/command-c.wasm"), &component.Host{})
	if !errors.Is(err, component.ErrMissingImport) || !strings.Contains(err.Error(), "wasi:") {
		t.Fatalf("Link with no host functions: %v, want ErrMissingImport naming a wasi: function", err)
	}
	_, err = component.Link(ctx, rt, decode(t, "testdata/types.wasm"), wasip2.Host())
	if !errors.Is(err, component.ErrMissingImport) || !strings.Contains(err.Error(), "wasmesh:test/shapes@0.1#") {
		t.Fatalf("Link of a component importing a non-WASI interface: %v, want ErrMissingImport naming it", err)
	}
}

func TestInterface(t *testing.T) {
	for in, want := range map[string]string{
		"wasi:io/streams@0.2.12":           "wasi:io/streams@0.2",
		"wasi:http/types@0.2.0-rc-2023-11": "wasi:http/types@0.2.0-rc-2023-11",
		"example:crypto/hash@1.4.2":        "example:crypto/hash@1",
		"example:crypto/hash@0.1.3":        "example:crypto/hash@0.1",
		"example:crypto/hash@0.0.3":        "example:crypto/hash@0.0.3",
		"example:crypto/hash@0.0.3+build":  "example:crypto/hash@0.0.3",
		"log":                              "log",
		"wasi:io/streams@":                 "wasi:io/streams@",
	} {
		if got := component.Interface(in); got != want {
			t.Errorf("Interface(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestResourceDestructor: dropping an own handle of the component's own
// resource calls the destructor its type names, with the resource's rep
// (testdata/dtor.wat).
func TestResourceDestructor(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	l, err := component.Link(ctx, rt, decode(t, "testdata/dtor.wasm"), &component.Host{})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := l.Instantiate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := inst.Call(ctx, "", "run")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0] != uint32(42) {
		t.Errorf("run = %v, want [42]: the destructor got the rep", out)
	}
}

// snapshotMap is a LinkOptions.Cache that counts its calls.
type snapshotMap struct {
	m           map[[32]byte]*wasmbin.Snapshot
	load, store int
}

func (c *snapshotMap) Load(sum [32]byte) (*wasmbin.Snapshot, bool) {
	c.load++
	s, ok := c.m[sum]
	return s, ok
}

func (c *snapshotMap) Store(sum [32]byte, s *wasmbin.Snapshot) { c.store++; c.m[sum] = s }

// TestLinkCache: the core modules rewritten are stored, and a later link
// of the same component loads them instead of rewriting them, keyed by
// their bytes, or by the component's digest when given: one with another
// digest (another component's bytes, as far as the cache can tell)
// rewrites and stores them again; every link's instances run.
func TestLinkCache(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	stoppable := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	defer stoppable.Close(ctx)
	wasm, err := os.ReadFile("testdata/dtor.wasm")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	cache := &snapshotMap{m: map[[32]byte]*wasmbin.Snapshot{}}
	for _, step := range []struct {
		digest      string
		load, store int // the cache's counts after the link
	}{
		{"", 2, 2},           // by bytes: stored
		{"", 4, 2},           // loaded
		{digest, 6, 4},       // by digest: stored
		{digest, 8, 4},       // loaded
		{"sha256:00", 10, 6}, // another digest: rewritten, stored
	} {
		l, err := component.LinkWith(ctx, rt, decode(t, "testdata/dtor.wasm"), &component.Host{}, component.LinkOptions{Cache: cache, Stoppable: stoppable, Digest: step.digest})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Resettable(); err != nil {
			t.Fatalf("digest %q: %v", step.digest, err)
		}
		inst, err := l.Instantiate(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := inst.Call(ctx, "", "run"); err != nil || out[0] != uint32(42) {
			t.Fatalf("digest %q: run = %v, %v", step.digest, out, err)
		}
		l.Close(ctx)
		if cache.load != step.load || cache.store != step.store || len(cache.m) != step.store {
			t.Fatalf("digest %q: %d Load and %d Store calls, %d modules stored; want %d, %d, %d",
				step.digest, cache.load, cache.store, len(cache.m), step.load, step.store, step.store)
		}
	}
}

// TestLinkStoppable: a component whose looping core modules can all be
// given the yield check is linked in the Stoppable runtime, which does not
// close instances on context done, and a call that loops for ever still
// ends at its context's deadline (the stop globals set): with a memory
// (misbehave-spin), and without one (misbehave-loop), whose check is the
// stop global's alone.
func TestLinkStoppable(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	defer rt.Close(ctx)
	stoppable := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	defer stoppable.Close(ctx)
	host := &component.Host{Funcs: map[string]component.HostFunc{}}
	for _, tc := range []struct {
		file      string
		stoppable bool
	}{
		{"testdata/misbehave-spin.wasm", true},
		{"testdata/misbehave-loop.wasm", true},
		{"testdata/dtor.wasm", true}, // no loop: nothing to stop
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			l, err := component.LinkWith(ctx, rt, decode(t, tc.file), host, component.LinkOptions{Stoppable: stoppable})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close(ctx)
			if l.Stoppable() != tc.stoppable {
				t.Fatalf("Stoppable = %v, want %v", l.Stoppable(), tc.stoppable)
			}
			if !strings.HasPrefix(tc.file, "testdata/misbehave") {
				return
			}
			inst, err := l.Instantiate(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			// Stopped by its deadline, then (reset: its stop global clear
			// again) by its caller going away without one.
			if tc.stoppable {
				if err := inst.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			for _, deadline := range []bool{true, false} {
				cctx, cancel := context.WithCancel(ctx)
				if deadline {
					cctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
				} else {
					time.AfterFunc(100*time.Millisecond, cancel)
				}
				done := make(chan error, 1)
				go func() {
					_, err := inst.Call(cctx, "wasi:http/incoming-handler@0.2.0", "handle", inst.NewObject(nil), inst.NewObject(nil))
					done <- err
				}()
				select {
				case err := <-done:
					if err == nil {
						t.Errorf("deadline %v: a call that loops for ever returned no error", deadline)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("deadline %v: the call was not stopped 10 s after its context was done", deadline)
				}
				cancel()
				if !tc.stoppable {
					break // the runtime closed the instance
				}
				inst.Reset()
			}
		})
	}
}

// TestSpinningGuestLetsGCThrough: a garbage collection completes while a
// guest spins in a loop, in a core module with a memory (misbehave-spin)
// or without one (misbehave-loop, which the rewrite gives a memory for the
// yield check): the guest enters Go every YieldEvery iterations, where the
// scheduler can preempt it. A guest that never did would hold the
// collection until its deadline, and with as few processors as spinning
// guests, for ever (the deadline's timer waits for the collection): when
// this test fails, it hangs until go test's timeout, whose goroutine dump
// shows runtime.GC waiting here.
func TestSpinningGuestLetsGCThrough(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3)) // a processor for the deadline's timer: a hold, not a hang, when this fails
	ctx := context.Background()
	stoppable := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	defer stoppable.Close(ctx)
	host := &component.Host{Funcs: map[string]component.HostFunc{}}
	for _, file := range []string{"testdata/misbehave-spin.wasm", "testdata/misbehave-loop.wasm"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			l, err := component.LinkWith(ctx, stoppable, decode(t, file), host, component.LinkOptions{Stoppable: stoppable})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close(ctx)
			inst, err := l.Instantiate(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := inst.Call(cctx, "wasi:http/incoming-handler@0.2.0", "handle", inst.NewObject(nil), inst.NewObject(nil))
				done <- err
			}()
			time.Sleep(50 * time.Millisecond) // the guest spinning
			start := time.Now()
			runtime.GC()
			if took := time.Since(start); took > time.Second {
				t.Errorf("a garbage collection took %s while the guest spun: it waited for the guest", took)
			}
			cancel()
			if err := <-done; err == nil {
				t.Error("the spinning call returned no error")
			}
		})
	}
}
