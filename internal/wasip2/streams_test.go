package wasip2

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/component"
)

// newInstance is an instance of a small component linked with Host, for
// calling host functions with its objects.
func newInstance(t *testing.T) (*component.Instance, *component.Host) {
	t.Helper()
	ctx := context.Background()
	b, err := os.ReadFile("../component/testdata/isolation.wasm")
	if err != nil {
		t.Fatal(err)
	}
	c, err := component.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	h := Host()
	l, err := component.Link(ctx, rt, c, h)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := l.Instantiate(ctx, &Context{})
	if err != nil {
		t.Fatal(err)
	}
	return inst, h
}

// TestStreams: skip, splice and write-zeroes move what they say, and a
// stream at its end answers closed.
func TestStreams(t *testing.T) {
	inst, h := newInstance(t)
	call := func(fn string, args ...any) any {
		t.Helper()
		out, err := h.Funcs["wasi:io/streams@0.2#[method]"+fn](context.Background(), inst, args)
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		return out
	}
	ok := func(n uint64) cabi.VariantValue { return cabi.VariantValue{Case: 0, Value: n} }
	closed := cabi.VariantValue{Case: 1, Value: cabi.VariantValue{Case: 1}}
	in := inst.NewObject(&inputStream{r: strings.NewReader("0123456789")})
	var sink bytes.Buffer
	out := inst.NewObject(&outputStream{w: &sink})
	for _, step := range []struct {
		fn   string
		args []any
		want any
	}{
		{"input-stream.skip", []any{in, uint64(2)}, ok(2)},
		{"output-stream.splice", []any{out, in, uint64(5)}, ok(5)},
		{"output-stream.write-zeroes", []any{out, uint64(2)}, cabi.VariantValue{Case: 0}},
		{"output-stream.blocking-splice", []any{out, in, uint64(100)}, ok(3)},
		{"output-stream.blocking-splice", []any{out, in, uint64(100)}, closed},
		{"input-stream.blocking-skip", []any{in, uint64(1)}, closed},
	} {
		if got := call(step.fn, step.args...); got != step.want {
			t.Errorf("%s%v = %v, want %v", step.fn, step.args[1:], got, step.want)
		}
	}
	if want := "23456\x00\x00789"; sink.String() != want {
		t.Errorf("written %q, want %q", sink.String(), want)
	}
	if _, err := h.Funcs["wasi:io/streams@0.2#[method]output-stream.write-zeroes"](context.Background(), inst, []any{out, uint64(checkWrite + 1)}); err == nil {
		t.Error("write-zeroes past check-write: no trap")
	}
}

// waiter is a Waiter that counts the contexts asked of it, each ctx.
type waiter struct {
	ctx   context.Context
	asked int
}

func (w *waiter) WaitContext(context.Context) context.Context { w.asked++; return w.ctx }

// TestPollWaits: poll and pollable.block wait for a pollable not ready yet,
// within the context the host's Waiter gives (the request's deadline), and
// ask for that context only then; pollables that are ready (the streams'
// and the futures') are answered at once.
func TestPollWaits(t *testing.T) {
	inst, h := newInstance(t)
	w := &waiter{ctx: context.Background()}
	inst.State.(*Context).Wait = w
	call := func(fn string, args ...any) any {
		t.Helper()
		out, err := h.Funcs["wasi:io/poll@0.2#"+fn](context.Background(), inst, args)
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		return out
	}
	ready := inst.NewObject(&pollable{})
	if got := call("poll", []any{ready}); !reflect.DeepEqual(got, []any{uint32(0)}) {
		t.Errorf("poll of a ready pollable = %v, want [0]", got)
	}
	call("[method]pollable.block", ready)
	if w.asked != 0 {
		t.Errorf("the wait context asked for %d times for ready pollables, want 0", w.asked)
	}

	// Long enough that a poll that does not wait finishes well within it
	// on a loaded machine.
	const d = 300 * time.Millisecond
	later := func() uint32 { return inst.NewObject(&pollable{at: time.Now().Add(d)}) }
	start := time.Now()
	if got := call("poll", []any{later(), ready}); !reflect.DeepEqual(got, []any{uint32(1)}) {
		t.Errorf("poll of one ready and one not = %v, want [1]", got)
	}
	if w.asked != 0 || time.Since(start) >= d {
		t.Errorf("poll with one pollable ready waited (%v, the context asked for %d times)", time.Since(start), w.asked)
	}
	start = time.Now()
	if got := call("poll", []any{later()}); !reflect.DeepEqual(got, []any{uint32(0)}) {
		t.Errorf("poll of a pollable ready in %v = %v, want [0]", d, got)
	}
	if time.Since(start) < d || w.asked != 1 {
		t.Errorf("poll returned after %v (the context asked for %d times), want at least %v and once", time.Since(start), w.asked, d)
	}
	start = time.Now()
	call("[method]pollable.block", later())
	if time.Since(start) < d || w.asked != 2 {
		t.Errorf("block returned after %v (the context asked for %d times), want at least %v and twice", time.Since(start), w.asked, d)
	}

	// A request past its deadline: poll answers every pollable at once.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	w.ctx = done
	start = time.Now()
	if got := call("poll", []any{later(), later()}); !reflect.DeepEqual(got, []any{uint32(0), uint32(1)}) {
		t.Errorf("poll in an ended context = %v, want [0 1]", got)
	}
	if time.Since(start) >= d {
		t.Errorf("poll in an ended context waited %v", time.Since(start))
	}
}
