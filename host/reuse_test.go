package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/wasi"
)

// isolationReport is what testdata/isolation.wasm prints when it starts in
// the state a new instance has.
func isolationReport(envc, envSize uint32) []byte {
	b := []byte("pristine-memory!")
	for _, v := range []uint32{7, envc, envSize, 0} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// TestReusedInstanceStartsPristine proves that a run served by a reused
// instance sees nothing an earlier run left: not its writes to memory (a
// data segment's bytes and a page far from them), not its mutable global,
// not its environment, and not a closed standard descriptor (each run has a
// descriptor table of its own: the instance is kept, and the next run's
// stdout is open).
func TestReusedInstanceStartsPristine(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "testdata/isolation.wasm")
	if !m.Reusable {
		t.Fatalf("isolation.wasm is not reusable: %s", m.NotReusable)
	}
	run := func(env ...string) (Result, []byte) {
		t.Helper()
		var out bytes.Buffer
		res, err := e.Run(context.Background(), m, Call{Stdout: &out, MemoryLimit: 1 << 20, Capabilities: capsEnv(env)})
		if err != nil {
			t.Fatal(err)
		}
		return res, out.Bytes()
	}
	steps := []struct {
		name       string
		env        []string
		wantReused bool
		want       []byte
	}{
		{"first run, new instance", nil, false, isolationReport(0, 0)},
		{"second run, reused after the first left secrets", nil, true, isolationReport(0, 0)},
		{"a run with an environment, which closes stdout", []string{"TOKEN=hunter2"}, true, isolationReport(1, 14)},
		{"after a closed stdout, reused with stdout open", nil, true, isolationReport(0, 0)},
		{"and reused again", nil, true, isolationReport(0, 0)},
	}
	for _, st := range steps {
		res, out := run(st.env...)
		if res.Reused != st.wantReused {
			t.Errorf("%s: reused = %v, want %v", st.name, res.Reused, st.wantReused)
		}
		if !bytes.Equal(out, st.want) {
			t.Fatalf("%s: the guest started in\n%q\nwant\n%q", st.name, out, st.want)
		}
	}
	if s := e.Stats(); s.InstancesCreated != 1 || s.InstancesReused != 4 || s.InstancesDiscarded != 0 {
		t.Errorf("stats = %+v, want 1 created, 4 reused, 0 discarded", s)
	}
}

// TestReusedInstancesConcurrently: runs at once on several instances of a
// module, which are reset as they are taken again, sharing readings of the
// fault count (faults.go), each start in the state a new instance has.
func TestReusedInstancesConcurrently(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "testdata/isolation.wasm")
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 60 {
				var env []string
				want := isolationReport(0, 0)
				if (g+i)%3 == 0 {
					env, want = []string{"TOKEN=hunter2"}, isolationReport(1, 14)
				}
				var out bytes.Buffer
				if _, err := e.Run(context.Background(), m, Call{Stdout: &out, MemoryLimit: 1 << 20, Capabilities: capsEnv(env)}); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(out.Bytes(), want) {
					t.Errorf("goroutine %d, run %d: the guest started in\n%q\nwant\n%q", g, i, out.Bytes(), want)
					return
				}
			}
		})
	}
	wg.Wait()
	if s := e.Stats(); s.InstancesReused == 0 {
		t.Errorf("stats = %+v: no run was served by a reused instance", s)
	}
}

// TestResetFindsNewPages: each run writes an OS page no earlier run of its
// instance wrote (testdata/newpages.wasm, the page chosen by the number of
// environment variables), one instance in turn and several at once, and
// every run starts with all those pages as a new instance has them: a reset
// that took the written pages it knew, with a fault count read before the
// run's write, would leave the page behind.
func TestResetFindsNewPages(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "testdata/newpages.wasm")
	pristine := make([]byte, 15)
	run := func(vars int) error {
		env := make([]string, vars)
		for i := range env {
			env[i] = fmt.Sprintf("V%d=x", i)
		}
		var out bytes.Buffer
		if _, err := e.Run(context.Background(), m, Call{Stdout: &out, MemoryLimit: 1 << 20, Capabilities: capsEnv(env)}); err != nil {
			return err
		}
		if !bytes.Equal(out.Bytes(), pristine) {
			return fmt.Errorf("with %d variables the guest found %x at offset 100 of pages 1 to 15, want zeros", vars, out.Bytes())
		}
		return nil
	}
	for vars := range 15 {
		if err := run(vars); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 45 {
				if err := run((g*7 + i) % 15); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if s := e.Stats(); s.InstancesReused < 100 {
		t.Errorf("stats = %+v: want most runs served by reused instances", s)
	}
}

func capsEnv(env []string) wasi.Capabilities { return wasi.Capabilities{Env: env} }

// TestReuseEveryLanguage runs each hello many times in reused instances,
// alternating requests, and checks every answer: a reset that missed a page
// or a global would show as a wrong or failed answer.
func TestReuseEveryLanguage(t *testing.T) {
	e := newEngine(t)
	for _, lang := range langs {
		t.Run(lang, func(t *testing.T) {
			m, err := e.Compile(context.Background(), "", helloWasm(t, lang))
			if err != nil {
				t.Fatal(err)
			}
			if !m.Reusable {
				t.Fatalf("not reusable: %s", m.NotReusable)
			}
			if err := e.Warm(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			before := e.Stats()
			for i := range 40 {
				body := strings.Repeat("x", i*37)
				var out bytes.Buffer
				call := helloCall(&out)
				call.Env = []string{"REQUEST_METHOD=POST", "PATH_INFO=/r" + strings.Repeat("/p", i%5)}
				call.Stdin = strings.NewReader(body)
				if _, err := e.Run(context.Background(), m, call); err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
				want := "hello from " + lang + ": POST /r" + strings.Repeat("/p", i%5) + " " + strconv.Itoa(len(body)) + " bytes\n"
				if !strings.HasSuffix(out.String(), want) {
					t.Fatalf("run %d: got %q, want …%q", i, out.String(), want)
				}
			}
			after := e.Stats()
			// Every example is written to be reused: none grows its memory
			// past what the warm-up run needed.
			if reused := after.InstancesReused - before.InstancesReused; reused < 39 {
				t.Errorf("%d of 40 runs reused an instance (%d created, %d discarded), want 39", reused,
					after.InstancesCreated-before.InstancesCreated, after.InstancesDiscarded-before.InstancesDiscarded)
			}
		})
	}
}

// TestNotReusable checks that modules that keep state outside memory and
// globals run in fresh instances, and say why.
func TestNotReusable(t *testing.T) {
	e := newEngine(t)
	for _, tc := range []struct{ file, why string }{
		{"testdata/reuse_tableset.wasm", "table.set"},
		{"testdata/reuse_datadrop.wasm", "data.drop"},
		{"testdata/reuse_start.wasm", "start function"},
	} {
		m := compileFile(t, e, tc.file)
		if m.Reusable || !strings.Contains(m.NotReusable, tc.why) {
			t.Errorf("%s: reusable %v (%q), want not reusable because of %s", tc.file, m.Reusable, m.NotReusable, tc.why)
		}
		for range 2 {
			res, err := e.Run(context.Background(), m, Call{})
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			if res.Reused {
				t.Fatalf("%s: a run was served by a reused instance", tc.file)
			}
		}
	}
}

// TestReactor runs the reactor examples: initialised once, snapshotted, and
// each request served from the snapshot by wasmesh_handle, reading the
// request's own environment. With fresh instances, each run initialises its
// instance first.
func TestReactor(t *testing.T) {
	for _, tc := range []struct {
		lang  string
		fresh bool
	}{{"go", false}, {"go", true}, {"typescript", false}, {"typescript", true}} {
		lang, fresh := tc.lang, tc.fresh
		t.Run(lang+"/fresh="+strconv.FormatBool(fresh), func(t *testing.T) {
			e, err := New(context.Background(), Options{FreshInstances: fresh})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close(context.Background()) })
			m := compileFile(t, e, "../examples/reactor/"+lang+"/hello.wasm")
			if m.Reusable == fresh {
				t.Fatalf("reusable = %v (%s)", m.Reusable, m.NotReusable)
			}
			if err := e.Warm(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			for i := range 6 {
				var out bytes.Buffer
				body := strings.Repeat("b", i*100)
				res, err := e.Run(context.Background(), m, Call{
					Capabilities: capsEnv([]string{"REQUEST_METHOD=PUT", "PATH_INFO=/req/" + strconv.Itoa(i)}),
					Stdin:        strings.NewReader(body), Stdout: &out, MemoryLimit: 64 << 20,
				})
				if err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
				want := "Content-Type: text/plain\n\nhello from " + lang + " reactor: PUT /req/" + strconv.Itoa(i) + " " + strconv.Itoa(len(body)) + " bytes\n"
				if out.String() != want {
					t.Fatalf("run %d: got %q, want %q", i, out.String(), want)
				}
				if wantReused := !fresh && i > 0; res.Reused != wantReused {
					t.Errorf("run %d: reused = %v, want %v", i, res.Reused, wantReused)
				}
			}
		})
	}
}

// TestBadRunsDiscardTheirInstance runs, in one pool, a request that leaves a
// secret, a misbehaving request of each kind, and a "peek": the bad run
// fails alone with its own error, its instance is closed rather than reset
// and reused, and the next run is served, pristine, by another.
func TestBadRunsDiscardTheirInstance(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "../examples/misbehave/rust/misbehave.wasm")
	if !m.Reusable {
		t.Fatalf("misbehave is not reusable: %s", m.NotReusable)
	}
	run := func(query string, timeout time.Duration) (Result, string, error) {
		var out bytes.Buffer
		res, err := e.Run(context.Background(), m, Call{
			Capabilities: wasi.Capabilities{Args: []string{"misbehave"}, Env: []string{"QUERY_STRING=" + query}},
			Stdout:       &out, MaxStdout: 1 << 20, MemoryLimit: 16 << 20, Timeout: timeout,
		})
		return res, out.String(), err
	}
	peek := func(t *testing.T) Result {
		t.Helper()
		res, out, err := run("do=peek", 0)
		if err != nil || !strings.Contains(out, "secret=\n") || !strings.Contains(out, "counter=0") {
			t.Fatalf("peek after a bad run: %q, %v", out, err)
		}
		return res
	}
	peek(t)
	for _, tc := range []struct {
		query string
		err   error // the bad run's, by errors.Is; nil: a *TrapError
	}{
		{"do=trap", nil},
		{"do=stack", nil},
		{"do=divzero", nil},
		{"do=loop", ErrDeadline},
		{"do=sleep&arg=60000", ErrDeadline}, // in a host call, not at a yield
		{"do=oom", nil},
		{"do=big&arg=2000000", ErrOutputLimit},
	} {
		t.Run(tc.query, func(t *testing.T) {
			if _, _, err := run("do=secret&arg=leak", 0); err != nil {
				t.Fatal(err)
			}
			before := e.Stats()
			res, _, err := run(tc.query, 300*time.Millisecond)
			if res.Run >= 30*time.Second { // do=sleep asks for 60 s
				t.Errorf("the bad run took %s: its deadline did not cut it short", res.Run)
			}
			var trap *TrapError
			switch {
			case err == nil:
				t.Fatal("the bad run succeeded")
			case tc.err != nil && !errors.Is(err, tc.err), tc.err == nil && !errors.As(err, &trap):
				t.Fatalf("bad run: %v, want %v", err, tc.err)
			}
			if d := e.Stats().InstancesDiscarded - before.InstancesDiscarded; d != 1 {
				t.Errorf("%d instances discarded after the bad run, want 1", d)
			}
			peek(t)
		})
	}
}

// TestIdleInstancesExpire: instances and memory mappings left unused past
// the idle timeout are closed, so an unused version keeps only its compiled
// code and image; the next run gets a new instance and is served as usual.
func TestIdleInstancesExpire(t *testing.T) {
	e, err := New(context.Background(), Options{IdleTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	m := compileFile(t, e, "testdata/isolation.wasm")
	run := func() Result {
		t.Helper()
		var out bytes.Buffer
		res, err := e.Run(context.Background(), m, Call{Stdout: &out, MemoryLimit: 1 << 20})
		if err != nil || !bytes.Equal(out.Bytes(), isolationReport(0, 0)) {
			t.Fatalf("run: %q, %v", out.Bytes(), err)
		}
		return res
	}
	run()
	idle := func() (instances, spares int) {
		for _, p := range m.reusable.pools {
			instances += p.idle.len()
		}
		return instances, m.reusable.img.spares()
	}
	if n, _ := idle(); n != 1 {
		t.Fatalf("%d idle instances after a run, want 1", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, spares := idle()
		if n == 0 && spares == 0 && e.Stats().InstancesExpired == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %d idle instances, %d spare memories, %d expired; want 0, 0, 1", n, spares, e.Stats().InstancesExpired)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if res := run(); res.Reused {
		t.Error("the run after expiry was served by a reused instance")
	}
}

// TestRunAfterRelease: a run that starts after its module was released (a
// request that outlived a reload) fails with an error, not a panic, and
// does not disturb other modules.
func TestRunAfterRelease(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "testdata/isolation.wasm")
	other := compileFile(t, e, "testdata/exit7.wasm")
	if _, err := e.Run(context.Background(), m, Call{MemoryLimit: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	e.Release(context.Background(), m.Digest)
	if _, err := e.Run(context.Background(), m, Call{MemoryLimit: 2 << 20}); err == nil {
		t.Error("a run of a released module succeeded")
	}
	if res, err := e.Run(context.Background(), other, Call{}); err != nil || res.ExitCode != 7 {
		t.Errorf("another module after the release: exit %d, %v", res.ExitCode, err)
	}
}

// TestLoopingGuestYields: a guest spinning in an endless loop yields to
// the host every wasmbin.YieldEvery iterations, reused or fresh (both run
// the module instrumented), so a garbage collection (which stops the world,
// and so waits for every goroutine, the guest's too) finishes while the
// guest still runs, and cancelling its context stops it.
func TestLoopingGuestYields(t *testing.T) {
	for _, fresh := range []bool{false, true} {
		t.Run(fmt.Sprintf("fresh=%v", fresh), func(t *testing.T) {
			e, err := New(context.Background(), Options{FreshInstances: fresh})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close(context.Background())
			m := compileFile(t, e, "testdata/loop.wasm")
			if m.Reusable == fresh {
				t.Fatalf("Reusable = %v (%s)", m.Reusable, m.NotReusable)
			}
			if fresh && m.fresh.stop == "" {
				t.Fatal("the fresh module was not instrumented")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := e.Run(ctx, m, Call{})
				done <- err
			}()
			for e.Stats().Active == 0 {
				runtime.Gosched()
			}
			gc := make(chan struct{})
			go func() {
				runtime.GC()
				close(gc)
			}()
			select {
			case <-gc:
			case err := <-done:
				t.Fatalf("the guest returned before it was stopped: %v", err)
			}
			// (A guest that does not yield holds up the collection for ever, and
			// the world with it: the test then fails by timing out.)
			select {
			case err := <-done:
				t.Fatalf("the guest returned before it was stopped: %v", err)
			default:
			}
			cancel()
			if err := <-done; !errors.Is(err, ErrCanceled) {
				t.Fatalf("cancelled guest: %v, want ErrCanceled", err)
			}
			if s := e.Stats(); !fresh && s.InstancesDiscarded != 1 {
				t.Errorf("%d instances discarded, want the stopped one", s.InstancesDiscarded)
			}
		})
	}
}

// TestFreshDeadlines: a fresh run is stopped at its deadline by its
// module's instrumentation (loop.wasm, also with DWARF, which is dropped;
// loop_nomem.wasm, given a memory of 0 pages for the check). A module
// Instrument refuses (an opcode it does not know) runs as given, stopped by
// wazero's own check at loop heads.
func TestFreshDeadlines(t *testing.T) {
	e, err := New(context.Background(), Options{FreshInstances: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	for _, tc := range []struct {
		file         string
		instrumented bool
		dwarf        bool // with a .debug_line section added
	}{{"testdata/loop.wasm", true, false}, {"testdata/loop_nomem.wasm", true, false}, {"testdata/loop.wasm", true, true}} {
		t.Run(fmt.Sprintf("%s/dwarf=%v", filepath.Base(tc.file), tc.dwarf), func(t *testing.T) {
			wasm := readFile(t, tc.file)
			if tc.dwarf {
				wasm = append(wasm, 0, 15, 11) // custom section, 15 bytes, an 11-byte name
				wasm = append(wasm, ".debug_line\x00\x00\x00"...)
			}
			m, err := e.Compile(context.Background(), "", wasm)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.fresh.stop != ""; got != tc.instrumented {
				t.Fatalf("instrumented = %v, want %v", got, tc.instrumented)
			}
			if _, err := e.Run(context.Background(), m, Call{Timeout: 100 * time.Millisecond}); !errors.Is(err, ErrDeadline) {
				t.Fatalf("err = %v, want ErrDeadline", err)
			}
		})
	}
}

// TestReusedExitCodes: a guest whose _start exits from its own body (Zig's
// does; wasmbin rewrites such an exit to a return) reports each run's exit
// code, the code of one run never reaches the next (the code's global is
// reset with the others), and its instance is reused.
func TestReusedExitCodes(t *testing.T) {
	e := newEngine(t)
	m := compileFile(t, e, "../internal/wasmbin/testdata/exit_direct.wasm")
	if !m.Reusable {
		t.Fatalf("exit_direct.wasm is not reusable: %s", m.NotReusable)
	}
	for i, env := range [][]string{{"A=1"}, nil, {"A=1", "B=2"}, nil, strings.Split("a b c d e f g h i j", " ")} {
		want := uint32(len(env))
		if want > 9 {
			want = 3 // from the loop
		}
		res, err := e.Run(context.Background(), m, Call{Capabilities: capsEnv(env)})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if res.ExitCode != want {
			t.Errorf("run %d, %d variables: exit code %d, want %d", i, len(env), res.ExitCode, want)
		}
		if i > 0 && !res.Reused {
			t.Errorf("run %d: not served by a reused instance", i)
		}
	}
}
