package warm

import (
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

// TestRun: a call runs on another goroutine and Run returns after it;
// one after another, calls run on the same kept goroutine; many at once
// each run once, and at most MaxIdle goroutines are kept.
func TestRun(t *testing.T) {
	var p Pool
	caller := testutil.GoroutineID()
	var first, second int
	if r := p.Run(func() { first = testutil.GoroutineID() }); r != nil {
		t.Fatalf("Run returned %v for a call that returned", r)
	}
	if first == 0 || first == caller {
		t.Fatalf("the call ran on goroutine %d, the caller's is %d", first, caller)
	}
	for deadline := time.Now().Add(5 * time.Second); p.idleWorkers() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no goroutine waits for calls 5 s after the first")
		}
	}
	p.Run(func() { second = testutil.GoroutineID() })
	if second != first {
		t.Errorf("the second call ran on goroutine %d, not on the kept %d", second, first)
	}

	const calls = 300
	var mu sync.Mutex
	ran := map[int]int{}
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			p.Run(func() {
				time.Sleep(time.Millisecond) // so that many run at once
				mu.Lock()
				ran[i]++
				mu.Unlock()
			})
		})
	}
	wg.Wait()
	if len(ran) != calls {
		t.Errorf("%d distinct calls ran, want %d", len(ran), calls)
	}
	for i, n := range ran {
		if n != 1 {
			t.Errorf("call %d ran %d times", i, n)
		}
	}
	if n := p.idleWorkers(); n == 0 || n > MaxIdle {
		t.Errorf("%d goroutines wait for calls, want 1 to %d", n, MaxIdle)
	}
}

// TestRunPanic: a call's panic comes back from Run with its value and the
// stack it was raised on, and the pool goes on running calls.
func TestRunPanic(t *testing.T) {
	var p Pool
	r := p.Run(func() { panicking("boom") })
	if r == nil {
		t.Fatal("Run returned nil for a call that panicked")
	}
	if r.Value != "boom" {
		t.Errorf("the panic's value %v, want boom", r.Value)
	}
	if !strings.Contains(string(r.Stack), "panicking") {
		t.Errorf("the panic's stack does not name the function that raised it:\n%s", r.Stack)
	}
	if s := r.String(); !strings.HasPrefix(s, "boom\ngoroutine ") {
		t.Errorf("String() = %q, want the value and then the stack", s)
	}
	ran := false
	if r := p.Run(func() { ran = true }); r != nil || !ran {
		t.Errorf("after a panic: Run returned %v, the call ran: %v", r, ran)
	}

	// Raise: the value and its stack as one string; http.ErrAbortHandler,
	// taken without a stack, as it is.
	raised := func(r *Panic) (v any) {
		defer func() { v = recover() }()
		r.Raise()
		return nil
	}
	if v := raised(r); v != r.String() {
		t.Errorf("Raise panicked with %v, want the panic's String", v)
	}
	abort := p.Run(func() { panic(http.ErrAbortHandler) })
	if abort == nil || abort.Stack != nil {
		t.Fatalf("http.ErrAbortHandler came back as %+v, want it without a stack", abort)
	}
	if v := raised(abort); v != http.ErrAbortHandler {
		t.Errorf("Raise of http.ErrAbortHandler panicked with %v, want it itself", v)
	}
}

//go:noinline
func panicking(v any) { panic(v) }

// TestRunGoexit: a call's runtime.Goexit ends the caller's goroutine, as
// it would have ended the call's own, after the caller's deferred calls.
func TestRunGoexit(t *testing.T) {
	var p Pool
	exited := make(chan bool)
	go func() {
		returned := false
		defer func() { exited <- returned }()
		p.Run(runtime.Goexit)
		returned = true
	}()
	select {
	case returned := <-exited:
		if returned {
			t.Error("Run returned after the call's Goexit")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still waits 5 s after the call's Goexit")
	}
	ran := false
	if p.Run(func() { ran = true }); !ran {
		t.Error("after a Goexit, a call did not run")
	}
}
