package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/modules"
)

func newEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := New(context.Background(), Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func compileFile(t testing.TB, e *Engine, path string) *Module {
	t.Helper()
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.Compile(context.Background(), "", wasm)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return m
}

func TestCompileErrors(t *testing.T) {
	e := newEngine(t)
	badimport, _ := os.ReadFile("testdata/badimport.wasm")
	badwasmesh, _ := os.ReadFile("testdata/badwasmesh.wasm")
	validatorPanic, _ := os.ReadFile("testdata/validator_panic.wasm")
	evil, _ := os.ReadFile("../internal/wasmbin/testdata/evil.wasm")
	oobData, _ := os.ReadFile("testdata/oob_data.wasm")
	badEntry, _ := os.ReadFile("testdata/rbadsig.wasm")
	tests := []struct {
		name    string
		wasm    []byte
		wantErr string
	}{
		{"empty", nil, "not a WebAssembly binary"},
		{"text", []byte("hello, this is not wasm"), "not a WebAssembly binary"},
		{"truncated", []byte("\x00asm\x01\x00\x00\x00\x01\x05"), "invalid WebAssembly module"},
		{"unknown imports", badimport, "unknown imports: env.launch_missiles, wasi_snapshot_preview1.no_such_call"},
		// 20 bytes declaring 10^8 element segments: wazero would allocate 7 GB.
		{"declared sizes", []byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x000\t\x05\xe2\x9e\x9e0\x9e"), "invalid WebAssembly module: section 9 (element) at offset 13: element segments at offset 15: 101158754 entries declared, 1 bytes left"},
		// Sets globals it does not have: valid once the yield check's globals
		// are added, and then never stopped. Refused as the invalid module it is.
		{"foreign globals", evil, "invalid WebAssembly module: invalid function[0] export[\"_start\"] (code section, body at offset 46): invalid global index"},
		// A load with alignment 48, on which wazero's validator panics.
		{"validator panic", validatorPanic, "invalid WebAssembly module: the WebAssembly runtime failed on it: runtime error: index out of range"},
		// Valid, but its instances would all fail: refused at load rather
		// than failing every request.
		{"data past the memory", oobData, "section 11 (data) at offset 41: data segment at offset 44: 10 bytes at 65530 do not fit the initial memory of 65536 bytes: every instantiation would fail"},
		{"entry with another signature", badEntry, "exports the host calls with another signature: wasmesh_handle (signature (i32)->(i32), want ()->())"},
		{"unknown wasmesh imports", badwasmesh, "unknown imports: wasmesh.http_call (signature (i32,i32)->(i32), want (i32,i32,i32,i32,i32)->(i32)), wasmesh.teleport"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Compile(context.Background(), "", tc.wasm)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestSetupMemoryLimit: a reactor's _initialize runs within the set-up
// memory limit of its compile; one that would take 1 GiB fails at 64 MiB,
// saying so (its memory.grow fails at the limit, and it traps).
func TestSetupMemoryLimit(t *testing.T) {
	e := newEngine(t)
	wasm, err := os.ReadFile("testdata/initbomb.wasm")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Compile(WithSetupMemoryLimit(context.Background(), 64<<20), "", wasm)
	if err == nil || !strings.Contains(err.Error(), "initialise the reactor within its memory limit of 67108864 bytes: _initialize:") {
		t.Fatalf("err = %v, want the reactor's set-up stopped at the limit", err)
	}
}

func TestCompileOnceConcurrently(t *testing.T) {
	e := newEngine(t)
	wasm, _ := os.ReadFile("testdata/exit7.wasm")
	var wg sync.WaitGroup
	mods := make([]*Module, 16)
	for i := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := e.Compile(context.Background(), "", wasm)
			if err != nil {
				t.Error(err)
			}
			mods[i] = m
		}()
	}
	wg.Wait()
	for _, m := range mods[1:] {
		if m != mods[0] {
			t.Fatal("concurrent compiles of one digest returned different modules")
		}
	}
	if want := modules.DigestOf(wasm); mods[0].Digest != want {
		t.Fatalf("digest = %s, want %s", mods[0].Digest, want)
	}
}

func TestRunErrors(t *testing.T) {
	e := newEngine(t)
	tests := []struct {
		file      string
		call      Call
		wantErr   error
		wantTrap  string
		wantExit  uint32
		wantInErr string
	}{
		{file: "trap_unreachable.wasm", wantTrap: "unreachable"},
		{file: "trap_divzero.wasm", wantTrap: "integer divide by zero"},
		{file: "trap_oob.wasm", wantTrap: "out of bounds memory access"},
		{file: "trap_stack.wasm", wantTrap: "stack overflow"},
		{file: "exit7.wasm", wantExit: 7},
		{file: "nostart.wasm", wantErr: ErrNoStart},
		{file: "loop.wasm", call: Call{Timeout: 200 * time.Millisecond}, wantErr: ErrDeadline, wantInErr: "200ms timeout"},
		// 2^62 calls, no loop: the yield check at its start stops it.
		{file: "recurse.wasm", call: Call{Timeout: 200 * time.Millisecond}, wantErr: ErrDeadline},
		// The same without a memory, and in a start function: stopped too
		// (they ran for ever, and froze the process at its next collection).
		{file: "recurse_nomem.wasm", call: Call{Timeout: 200 * time.Millisecond}, wantErr: ErrDeadline},
		{file: "recurse_start.wasm", call: Call{Timeout: 200 * time.Millisecond}, wantErr: ErrDeadline},
		// 2^60 calls with no loop and no recursion (each of 60 functions
		// calls the next twice): stopped by the checks at the entry of
		// functions that call twice (it ran for ever, and froze the process
		// at its next collection).
		{file: "fanout.wasm", call: Call{Timeout: 200 * time.Millisecond}, wantErr: ErrDeadline},
		// The guest's exit code, even the one wazero closes a module with
		// when its context is canceled (it passed for a client gone: 499).
		{file: "exit_canceled.wasm", wantExit: 0xffffffff},
		{file: "bigmem.wasm", call: Call{MemoryLimit: 64 << 20}, wantErr: ErrMemoryLimit},
		{file: "membomb.wasm", call: Call{MemoryLimit: 16 << 20}, wantExit: 3},
		{file: "bigout.wasm", call: Call{MaxStdout: 1 << 20}, wantErr: ErrOutputLimit, wantInErr: "more than 1048576 bytes to stdout"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m := compileFile(t, e, filepath.Join("testdata", tc.file))
			res, err := e.Run(context.Background(), m, tc.call)
			switch {
			case tc.wantTrap != "":
				var trap *TrapError
				if !errors.As(err, &trap) || trap.Cause != tc.wantTrap {
					t.Fatalf("err = %v, want trap %q", err, tc.wantTrap)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantInErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantInErr)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if res.ExitCode != tc.wantExit {
					t.Fatalf("exit code = %d, want %d", res.ExitCode, tc.wantExit)
				}
			}
		})
	}
}

func TestMemoryLimitHoldsInGuest(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "testdata/membomb.wasm")
	res, err := e.Run(context.Background(), m, Call{MemoryLimit: 16<<20 + 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 {
		t.Fatalf("exit code = %d, want 3 (memory.grow failed in the guest)", res.ExitCode)
	}
	if max := uint32(16 << 20 / pageSize); res.MemoryPages > max {
		t.Fatalf("guest reached %d pages, limit is %d", res.MemoryPages, max)
	}
	// The host is fine: the same engine runs another guest.
	if _, err := e.Run(context.Background(), compileFile(t, e, "testdata/exit7.wasm"), Call{}); err != nil {
		t.Fatal(err)
	}
}

func TestOutputCapKeepsPrefix(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "testdata/bigout.wasm")
	var out bytes.Buffer
	_, err := e.Run(context.Background(), m, Call{Stdout: &out, MaxStdout: 100_000})
	if !errors.Is(err, ErrOutputLimit) {
		t.Fatalf("err = %v, want ErrOutputLimit", err)
	}
	if out.Len() != 100_000 || strings.Trim(out.String(), "x") != "" {
		t.Fatalf("collected %d bytes, want exactly the first 100000", out.Len())
	}
}

func TestCallerCancel(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "testdata/loop.wasm")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := e.Run(ctx, m, Call{})
	if !errors.Is(err, ErrCanceled) {
		t.Fatalf("err = %v, want ErrCanceled", err)
	}
}

// A guest that misbehaves fails only its own run: others on the same engine,
// running at the same time, succeed.
func TestBadGuestsDoNotDisturbOthers(t *testing.T) {
	e := newEngine(t)
	good := compileFile(t, e, "testdata/exit7.wasm")
	bad := []struct {
		m    *Module
		call Call
	}{
		{compileFile(t, e, "testdata/loop.wasm"), Call{Timeout: 300 * time.Millisecond}},
		{compileFile(t, e, "testdata/membomb.wasm"), Call{MemoryLimit: 32 << 20}},
		{compileFile(t, e, "testdata/bigout.wasm"), Call{MaxStdout: 1 << 20}},
		{compileFile(t, e, "testdata/trap_stack.wasm"), Call{}},
		{compileFile(t, e, "testdata/trap_oob.wasm"), Call{}},
	}
	var wg sync.WaitGroup
	for _, b := range bad {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				_, _ = e.Run(context.Background(), b.m, b.call)
			}
		}()
	}
	for range 50 {
		res, err := e.Run(context.Background(), good, Call{})
		if err != nil || res.ExitCode != 7 {
			t.Fatalf("good guest: exit %d, err %v", res.ExitCode, err)
		}
	}
	wg.Wait()
}

// TestIsolationBetweenRuns: a run never sees memory, globals or environment
// left by an earlier run of the same module, however instances and their
// memory are recycled.
func TestIsolationBetweenRuns(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "../examples/misbehave/rust/misbehave.wasm")
	run := func(env []string, args ...string) string {
		var out bytes.Buffer
		call := Call{Stdout: &out, MemoryLimit: 16 << 20}
		call.Args, call.Env = append([]string{"misbehave"}, args...), env
		if _, err := e.Run(context.Background(), m, call); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	for i := range 20 {
		secret := run([]string{"TOKEN=hunter2"}, "secret", fmt.Sprintf("s%d", i))
		if !strings.Contains(secret, "counter=1") {
			t.Fatalf("secret run: %q", secret)
		}
		peek := run(nil, "peek")
		if !strings.Contains(peek, "secret=\n") || !strings.Contains(peek, "counter=0") {
			t.Fatalf("run %d saw what an earlier run left: %q", i, peek)
		}
		if env := run(nil, "env"); strings.Contains(env, "TOKEN") {
			t.Fatalf("run %d saw an earlier run's environment: %q", i, env)
		}
	}
}

// TestComponentRefused: a component that is no wasi:http/proxy, and no
// library a link can serve (it imports a bare function, log), is refused by
// Validate (the store's check) and Compile, naming what it lacks.
func TestComponentRefused(t *testing.T) {
	wasm, err := os.ReadFile("../internal/component/testdata/types.wasm")
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t)
	for name, err := range map[string]error{
		"Validate": e.Validate(context.Background(), wasm),
		"Compile":  func() error { _, err := e.Compile(context.Background(), "", wasm); return err }(),
	} {
		if !errors.Is(err, ErrNotHTTP) || !strings.Contains(err.Error(), "the host does not provide an import: log") {
			t.Errorf("%s: %v, want ErrNotHTTP naming the import", name, err)
		}
	}
}

// TestPollStdin: poll_oneoff on a stdin that has nothing to read yet (a
// pipe) waits with the clock and answers with the clock's event; with
// bytes in the pipe, with stdin's. A stdin read from memory is always
// ready.
func TestPollStdin(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "testdata/pollstdin.wasm")
	run := func(stdin io.Reader) string {
		t.Helper()
		var out bytes.Buffer
		if _, err := e.Run(context.Background(), m, Call{Stdin: stdin, Stdout: &out, Timeout: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if got := run(r); got != "0" {
		t.Errorf("an empty pipe: first event %q, want the clock's (0)", got)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := run(r); got != "1" {
		t.Errorf("a pipe with a byte in it: first event %q, want stdin's (1)", got)
	}
	if got := run(strings.NewReader("")); got != "1" {
		t.Errorf("stdin from memory: first event %q, want stdin's (1)", got)
	}
}

// TestRecursionStopsFresh: a guest that runs for ever by recursing, without
// a loop, is stopped at its deadline in a fresh instance too.
func TestRecursionStopsFresh(t *testing.T) {
	e, err := New(context.Background(), Options{CacheDir: t.TempDir(), FreshInstances: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	m := compileFile(t, e, "testdata/recurse.wasm")
	if _, err := e.Run(context.Background(), m, Call{Timeout: 200 * time.Millisecond}); !errors.Is(err, ErrDeadline) {
		t.Fatalf("err = %v, want ErrDeadline", err)
	}
}

// TestStoppedInRandomGet: 300 random_get calls of 64 MiB (fewer than a
// yield check's loop iterations) are stopped at the run's deadline, in
// the calls: the guest ran for 30 s past it, in a reused instance and a
// fresh one.
func TestStoppedInRandomGet(t *testing.T) {
	for _, mode := range engineModes(t) {
		m := compileFile(t, mode.e, "testdata/randloop.wasm")
		start := time.Now()
		_, err := mode.e.Run(context.Background(), m, Call{Timeout: 300 * time.Millisecond})
		if took := time.Since(start); !errors.Is(err, ErrDeadline) || took > 5*time.Second {
			t.Errorf("%s instances: %v after %v, want ErrDeadline at about 300ms", mode.name, err, took)
		}
	}
}
