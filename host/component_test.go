package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/wasi"
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
		// Stopped by its stop global, not by wazero (component.Linked.Stoppable).
		{file: "misbehave-spin.wasm", timeout: 200 * time.Millisecond, wantErr: ErrDeadline},
		// 2^62 calls without a loop: stopped at its recursive function's
		// start (wasmbin's entry checks).
		{file: "misbehave-recurse.wasm", timeout: 200 * time.Millisecond, wantErr: ErrDeadline},
		// The body finished while its stream lives.
		{file: "misbehave-children.wasm", wantInErr: "incoming-body.finish: resource has children"},
		// Its realloc calls the host (the canonical ABI's may_leave).
		{file: "reenter.wasm", wantInErr: "[constructor]fields: called from a realloc or post-return function"},
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

// TestNoResponseKeepsInstance: a handler that returns without a response
// (or with an error response) ran cleanly: its instance is reset and used
// again, not closed.
func TestNoResponseKeepsInstance(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "../internal/component/testdata/misbehave-never.wasm")
	before := e.Stats()
	for i := 0; i < 3; i++ {
		if _, err := e.HandleHTTP(context.Background(), m, &HTTPRequest{Method: "GET", PathWithQuery: "/", Scheme: "http", Authority: "x"}, 0, 0); !errors.Is(err, ErrNoResponse) {
			t.Fatalf("request %d: %v, want ErrNoResponse", i, err)
		}
	}
	after := e.Stats()
	if created, reused, discarded := after.InstancesCreated-before.InstancesCreated, after.InstancesReused-before.InstancesReused, after.InstancesDiscarded-before.InstancesDiscarded; created != 1 || reused != 2 || discarded != 0 {
		t.Errorf("three requests answered with no response: %d instances created, %d reused, %d discarded; want 1, 2, 0", created, reused, discarded)
	}
}

// TestComponentWaitDeadline: a handler waiting in a host call (stream.wasm
// blocks on a 300 ms pollable between two writes) is cut off at its
// request's deadline, in its reused instance and in a new one.
func TestComponentWaitDeadline(t *testing.T) {
	for _, fresh := range []bool{false, true} {
		e, err := New(context.Background(), Options{CacheDir: t.TempDir(), FreshInstances: fresh})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(context.Background())
		m := compileFile(t, e, "../internal/component/testdata/stream.wasm")
		start := time.Now()
		_, err = e.HandleHTTP(context.Background(), m, &HTTPRequest{Method: "GET", PathWithQuery: "/", Scheme: "http", Authority: "x"}, 50*time.Millisecond, 0)
		if took := time.Since(start); !errors.Is(err, ErrDeadline) || took >= 250*time.Millisecond {
			t.Errorf("fresh instances %v: %v after %v, want ErrDeadline at about 50ms (not after the 300 ms wait)", fresh, err, took)
		}
	}
}

// TestComponentIsolation: a request served by a reset instance finds it
// as instantiation left it, whatever the requests before it did: counted
// in memory and a global (GET), trapped (POST), grew the memory (PUT),
// left a handle behind (DELETE), or answered with a handle it does not
// have (PATCH, an error naming it). isolation.wasm answers 211 from a pristine
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
			methods := []string{"GET", "GET", "POST", "GET", "PUT", "GET", "DELETE", "GET", "PATCH", "GET"}
			for i, method := range methods {
				resp, err := e.HandleHTTP(ctx, m, &HTTPRequest{Method: method, PathWithQuery: "/", Scheme: "http", Authority: "x"}, 0, 0)
				if wantErr := map[string]string{"POST": "unreachable", "PATCH": "handle 99 is not in the table"}[method]; wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), wantErr) {
						t.Fatalf("request %d (%s): err = %v, want %q", i, method, err, wantErr)
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
				// The first GET creates; the trap, the grown memory and
				// the bad handle each cost a new instance.
				if created := after.InstancesCreated - before.InstancesCreated; created != 4 {
					t.Errorf("%d instances created, want 4", created)
				}
				if reused := after.InstancesReused - before.InstancesReused; reused != int64(len(methods)-4) {
					t.Errorf("%d requests served by a reset instance, want %d", reused, len(methods)-4)
				}
			}
		})
	}
}

// TestComponentWarmup: with HTTPRequest.Warmup, each new instance serves a
// GET before its state is kept, and every request starts from the state
// that GET left, never from another request's: isolation.wasm answers 222
// (its counts at 1 before each request) to every one, across resets, a
// trap and a grown memory. A warm-up that fails (a handler that traps)
// makes the version's instances fresh ones, saying why.
func TestComponentWarmup(t *testing.T) {
	ctx, e := context.Background(), newEngine(t)
	m := compileFile(t, e, "../internal/component/testdata/isolation.wasm")
	for i, method := range []string{"GET", "GET", "POST", "GET", "PUT", "GET", "GET"} {
		resp, err := e.HandleHTTP(ctx, m, &HTTPRequest{Method: method, PathWithQuery: "/", Scheme: "http", Authority: "x", Warmup: "/warm"}, 0, 0)
		if method == "POST" {
			if err == nil {
				t.Fatalf("request %d (POST): no trap", i)
			}
			continue
		}
		if err != nil {
			t.Fatalf("request %d (%s): %v", i, method, err)
		}
		if resp.Status != 222 {
			t.Errorf("request %d (%s): status %d, want 222 (the warm-up's state, and only it)", i, method, resp.Status)
		}
	}
	// Without a warm-up, the same version's other pool starts pristine.
	if resp, err := e.HandleHTTP(ctx, m, &HTTPRequest{Method: "GET", PathWithQuery: "/", Scheme: "http", Authority: "x"}, 0, 0); err != nil || resp.Status != 211 {
		t.Errorf("without warm-up: %v, %v; want 211", resp, err)
	}

	// A warm-up cut short by its request's deadline fails that request
	// only: the next instance warms up again.
	loop := compileFile(t, e, "../internal/component/testdata/misbehave-spin.wasm")
	if _, err := e.HandleHTTP(ctx, loop, &HTTPRequest{Method: "GET", PathWithQuery: "/", Scheme: "http", Authority: "x", Warmup: "/warm"}, 100*time.Millisecond, 0); !errors.Is(err, ErrDeadline) {
		t.Errorf("a warm-up past the deadline: %v, want ErrDeadline", err)
	}
	if why := poolDisabled(loop, "/warm"); why != nil {
		t.Errorf("a warm-up past its request's deadline disabled reuse: %v", why)
	}

	trap := compileFile(t, e, "../internal/component/testdata/misbehave-trap.wasm")
	if _, err := e.HandleHTTP(ctx, trap, &HTTPRequest{Method: "GET", PathWithQuery: "/", Scheme: "http", Authority: "x", Warmup: "/warm"}, 0, 0); err == nil {
		t.Fatal("misbehave-trap.wasm answered")
	}
	if why := poolDisabled(trap, "/warm"); why == nil || !strings.Contains(why.Error(), "warm-up GET /warm") {
		t.Errorf("after a failed warm-up, reuse disabled by %v, want the warm-up named", why)
	}
}

// poolDisabled is why m's pool of warm-up warmup no longer reuses
// instances, nil while it does.
func poolDisabled(m *Module, warmup string) error {
	c := m.components
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pools {
		if p.warmup == warmup {
			return p.disabled
		}
	}
	return nil
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

// filesOutput is what testdata/files prints, as a module and as a
// component, run on filesDirs' directories.
const filesOutput = `read /in/greeting.txt: hello, files
list /in: greeting.txt
list /in: sub/
stat /in/greeting.txt: 13 bytes, file
stat /in/sub: 4096 bytes, directory
read /in/missing.txt: No such file or directory
read /in/../outside.txt: Operation not permitted
create /in/new.txt: Read-only file system
create /out/result.txt: ok
read /out/result.txt: written by arg1
appended
mkdir /out/sub: ok
mkdir /out/sub again: File exists
rename: ok
list /out/sub: moved.txt
stat /out/sub/moved.txt: 25 bytes, file
rmdir /out/sub (not empty): Directory not empty
unlink: ok
rmdir /out/sub: ok
`

// filesDirs makes the directories testdata/files runs on: in (read-only
// to the guest: greeting.txt, sub/), out (empty, writable), and a file
// beside them that the guest must not reach.
func filesDirs(t *testing.T) []wasi.Mount {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{"in/sub", "out"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"in/greeting.txt": "hello, files\n", "outside.txt": "secret\n"} {
		if err := os.WriteFile(filepath.Join(base, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return []wasi.Mount{
		{HostPath: filepath.Join(base, "in"), GuestPath: "/in", ReadOnly: true},
		{HostPath: filepath.Join(base, "out"), GuestPath: "/out"},
	}
}

// TestRunComponentFiles: a C program's file system calls (read, list,
// stat, create, append, mkdir, rename, unlink, rmdir, and the refusals of
// a read-only mount and of a path out of its mount) give the same results
// as a wasi:cli/command component (wasi:filesystem, through the preview-1
// adapter) as they give as a preview-1 module. A component's exit status is
// 0 or 1: WASI 0.2's exit says only success or failure.
func TestRunComponentFiles(t *testing.T) {
	e := newEngine(t)
	for _, tc := range []struct {
		file string
		exit uint32
	}{
		{"testdata/files.wasm", 3},
		{"testdata/files-component.wasm", 1},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			mounts := filesDirs(t)
			var out, errOut bytes.Buffer
			c := Call{Capabilities: wasi.Capabilities{Args: []string{"files", "arg1"}, Mounts: mounts},
				Stdout: &out, Stderr: &errOut, Timeout: 10 * time.Second}
			var res Result
			var err error
			if strings.Contains(tc.file, "component") {
				res, err = e.RunComponent(context.Background(), readFile(t, tc.file), c)
			} else {
				res, err = e.Run(context.Background(), compileFile(t, e, tc.file), c)
			}
			if err != nil {
				t.Fatalf("%v (stderr %q)", err, errOut.String())
			}
			if out.String() != filesOutput {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), filesOutput)
			}
			if res.ExitCode != tc.exit {
				t.Errorf("exit code %d, want %d", res.ExitCode, tc.exit)
			}
			left, _ := os.ReadDir(mounts[1].HostPath)
			if len(left) != 0 {
				t.Errorf("the program left %v in its output directory", left)
			}
			if _, err := os.Stat(filepath.Join(mounts[0].HostPath, "new.txt")); err == nil {
				t.Errorf("the program created a file in its read-only mount")
			}
		})
	}
}

// TestHandleHTTPTrailers: a request's trailers reach the component
// (future-trailers.get) and the trailers it finishes its body with come
// back; testdata/trailers.wasm answers with the request's.
func TestHandleHTTPTrailers(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "../internal/component/testdata/trailers.wasm")
	for _, trailer := range []http.Header{{"X-Checksum": {"abc"}, "X-Count": {"1", "2"}}, nil} {
		// The trailers come after the body: what the handler did not
		// read of it is read before they are asked for.
		body := strings.NewReader("body")
		resp, err := e.HandleHTTP(context.Background(), m, &HTTPRequest{Method: "POST", PathWithQuery: "/", Scheme: "http",
			Authority: "x", Body: body, Trailer: func() http.Header {
				if body.Len() != 0 {
					t.Errorf("trailers asked for with %d bytes of the body unread", body.Len())
				}
				return trailer
			}}, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Finished || !reflect.DeepEqual(resp.Trailer, trailer) {
			t.Errorf("trailers %v (finished %v), want %v", resp.Trailer, resp.Finished, trailer)
		}
	}
}

// TestHandleHTTPEnvironment: a component's wasi:cli/environment is the
// request's Env, read by wasi-libc when the instance starts: instances
// made with one environment never serve another.
func TestHandleHTTPEnvironment(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "../examples/components/c/hello.wasm")
	for _, greeting := range []string{"hi", "hey", "hi", ""} {
		var env [][2]string
		want := "hello from c: GET / 0 bytes\n"
		if greeting != "" {
			env, want = [][2]string{{"GREETING", greeting}}, greeting+" from c: GET / 0 bytes\n"
		}
		resp, err := e.HandleHTTP(context.Background(), m, &HTTPRequest{Method: "GET", PathWithQuery: "/", Scheme: "http",
			Authority: "x", Env: env}, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if string(resp.Body) != want {
			t.Errorf("GREETING=%q: %q, want %q", greeting, resp.Body, want)
		}
	}
}

// TestSnapshotCache: an engine stores the rewritten core modules of a
// component in its cache directory, and a second engine on the same
// directory (a restart) serves the component from them; an entry that is
// not one of ours is rewritten over, not trusted.
func TestSnapshotCache(t *testing.T) {
	ctx, dir := context.Background(), t.TempDir()
	serve := func() {
		t.Helper()
		e, err := New(ctx, Options{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(ctx)
		m := compileFile(t, e, "../examples/components/c/hello.wasm")
		resp, err := e.HandleHTTP(ctx, m, &HTTPRequest{Method: "GET", PathWithQuery: "/", Scheme: "http", Authority: "x"}, 10*time.Second, 0)
		if err != nil || resp.Status != http.StatusOK {
			t.Fatalf("GET: %v, %+v", err, resp)
		}
		if !m.component.Stoppable() {
			t.Error("the C component is not linked where it stops itself")
		}
	}
	serve()
	entries, err := os.ReadDir(filepath.Join(dir, snapshotDir))
	if err != nil || len(entries) == 0 {
		t.Fatalf("no snapshots stored in %s (%v)", snapshotDir, err)
	}
	before, _ := entries[0].Info()
	serve() // from the entries: none rewritten
	after, err := os.Stat(filepath.Join(dir, snapshotDir, entries[0].Name()))
	if err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("entry %s rewritten by the second engine (%v)", entries[0].Name(), err)
	}
	// Garbage in an entry: rewritten, and the component still served.
	for _, en := range entries {
		if err := os.WriteFile(filepath.Join(dir, snapshotDir, en.Name()), []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	serve()
	b, err := os.ReadFile(filepath.Join(dir, snapshotDir, entries[0].Name()))
	if err != nil || bytes.Equal(b, []byte("garbage")) {
		t.Errorf("a garbage entry was not rewritten (%v)", err)
	}
}

// TestHeaderFuncOnlyWhenAsked: a handler that does not look at the
// request's headers (the C hello) costs no header: HeaderFunc is not
// called. (One that does look gets it: mesh's
// TestComponentFetchesInProcess, whose JavaScript component answers with
// the traceparent it was given.)
func TestHeaderFuncOnlyWhenAsked(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "../examples/components/c/hello.wasm")
	calls := 0
	resp, err := e.HandleHTTP(context.Background(), m, &HTTPRequest{Method: "GET", PathWithQuery: "/x",
		Scheme: "http", Authority: "x", HeaderFunc: func() http.Header { calls++; return nil }}, 0, 0)
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("got %v, %v", resp, err)
	}
	if calls != 0 {
		t.Errorf("HeaderFunc called %d times by a handler that does not ask for the headers", calls)
	}
}

// TestHandleHTTPCounted: a component's call counts in Stats().Active while
// it has its instance (as a module's run does), says how long taking the
// instance took, and gets what the component writes to stdout.
func TestHandleHTTPCounted(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "../examples/components/c/misbehave.wasm")
	for range 2 { // a new instance, then a reset one
		var active int64 = -1
		var out bytes.Buffer
		r := &HTTPRequest{Method: "GET", PathWithQuery: "/print", Scheme: "http", Authority: "x",
			Stdout: writerFunc(func(p []byte) (int, error) { active = e.Stats().Active; return out.Write(p) })}
		resp, err := e.HandleHTTP(context.Background(), m, r, 10*time.Second, 0)
		if err != nil || resp.Status != http.StatusOK {
			t.Fatalf("GET /print: %v, %+v", err, resp)
		}
		if active != 1 || out.String() != "misbehave: a line on stdout\n" || r.Instantiate <= 0 || e.Stats().Active != 0 {
			t.Errorf("active %d during the call (want 1), %d after (want 0); stdout %q; instantiate %s (want > 0)",
				active, e.Stats().Active, out.String(), r.Instantiate)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
