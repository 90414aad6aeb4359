package wasip2

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/wasi"
)

const ty = "wasi:http/types@0.2#"

func call(t *testing.T, h *component.Host, inst *component.Instance, fn string, args ...any) any {
	t.Helper()
	out, err := h.Funcs[fn](context.Background(), inst, args)
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return out
}

func newReq(t *testing.T, h *component.Host, inst *component.Instance) uint32 {
	fs := inst.NewObject(&fields{})
	r := call(t, h, inst, ty+"[constructor]outgoing-request", fs).(uint32)
	call(t, h, inst, ty+"[method]outgoing-request.set-authority", r, cabi.VariantValue{Case: 1, Value: "example.com"})
	return r
}

func drop(h *component.Host, inst *component.Instance, res string, rep uint32) {
	h.Drops[ty+res](inst, rep)
	inst.DropObject(rep)
}

// TestPendingDropped: a future dropped before its request's body is
// finished (an aborted fetch) is never sent, and nothing of it stays held.
func TestPendingDropped(t *testing.T) {
	inst, h := newInstance(t)
	var sent atomic.Int32
	resp := bytes.Repeat([]byte("x"), 1<<20)
	wc := &Context{Outbound: func(ctx context.Context, r *wasi.OutboundRequest) (*wasi.OutboundResponse, int) {
		sent.Add(1)
		return &wasi.OutboundResponse{Status: 200, Body: resp}, codeOK
	}, MaxHeld: 64 << 20}
	inst.State = wc
	r := newReq(t, h, inst)
	b := call(t, h, inst, ty+"[method]outgoing-request.body", r).(cabi.VariantValue).Value.(uint32)
	inst.Object(b).(*outgoingBody).Write([]byte("hello"))
	fut := call(t, h, inst, "wasi:http/outgoing-handler@0.2#handle", r, cabi.VariantValue{Case: 0}).(cabi.VariantValue).Value.(uint32)
	drop(h, inst, "future-incoming-response", fut)
	call(t, h, inst, ty+"[static]outgoing-body.finish", b, cabi.VariantValue{Case: 0})
	wc.End()
	if sent.Load() != 0 || wc.held.Load() != 0 {
		t.Errorf("dropped future: request sent %d times, %d bytes still held", sent.Load(), wc.held.Load())
	}
}

// TestConsumeThenDrop: a response's body consumed stays held while the
// body lives, though the response is dropped (wstd's pattern): fifty 1 MiB
// bodies kept under an 8 MiB limit are refused past it
// (HTTP-response-body-size), and given back as the bodies are dropped.
func TestConsumeThenDrop(t *testing.T) {
	inst, h := newInstance(t)
	resp := bytes.Repeat([]byte("x"), 1<<20)
	wc := &Context{Outbound: func(ctx context.Context, r *wasi.OutboundRequest) (*wasi.OutboundResponse, int) {
		return &wasi.OutboundResponse{Status: 200, Body: resp}, codeOK
	}, MaxHeld: 8 << 20}
	inst.State = wc
	var bodies []uint32
	refused := 0
	for i := 0; i < 50; i++ {
		r := newReq(t, h, inst)
		fut := call(t, h, inst, "wasi:http/outgoing-handler@0.2#handle", r, cabi.VariantValue{Case: 0}).(cabi.VariantValue).Value.(uint32)
		var got any
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if got = call(t, h, inst, ty+"[method]future-incoming-response.get", fut); got.(cabi.VariantValue).Case == 1 {
				break
			}
		}
		res := got.(cabi.VariantValue).Value.(cabi.VariantValue).Value.(cabi.VariantValue)
		drop(h, inst, "future-incoming-response", fut)
		if res.Case != 0 {
			refused++
			continue
		}
		ir := res.Value.(uint32)
		body := call(t, h, inst, ty+"[method]incoming-response.consume", ir).(cabi.VariantValue).Value.(uint32)
		drop(h, inst, "incoming-response", ir)
		bodies = append(bodies, body)
	}
	if held := wc.held.Load(); refused < 40 || held > 8<<20 {
		t.Errorf("%d of 50 refused, %d bytes held: want the bodies kept counted (most refused), at most 8 MiB held", refused, held)
	}
	for _, b := range bodies {
		drop(h, inst, "incoming-body", b)
	}
	wc.End()
	if held := wc.held.Load(); held != 0 {
		t.Errorf("%d bytes held once the bodies were dropped, want 0", held)
	}
}

type fixedWait struct{ ctx context.Context }

func (w fixedWait) WaitContext(context.Context) context.Context { return w.ctx }

// TestSlotsAndDrops: 16 sends that hang, a 17th waiting for a slot until
// the deadline, some futures dropped in flight: every byte comes back.
func TestSlotsAndDrops(t *testing.T) {
	inst, h := newInstance(t)
	dl, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var started atomic.Int32
	wc := &Context{Outbound: func(ctx context.Context, r *wasi.OutboundRequest) (*wasi.OutboundResponse, int) {
		started.Add(1)
		if r.URL == "http://example.com/fast" {
			return &wasi.OutboundResponse{Status: 200, Body: make([]byte, 1000)}, codeOK
		}
		<-ctx.Done()
		return &wasi.OutboundResponse{Status: 200, Body: make([]byte, 1000)}, codeOK // answers anyway
	}, MaxHeld: 1 << 20, Wait: fixedWait{dl}}
	inst.State = wc
	var futs []uint32
	for i := 0; i < 17; i++ {
		r := newReq(t, h, inst)
		b := call(t, h, inst, ty+"[method]outgoing-request.body", r).(cabi.VariantValue).Value.(uint32)
		inst.Object(b).(*outgoingBody).Write(make([]byte, 100))
		call(t, h, inst, ty+"[static]outgoing-body.finish", b, cabi.VariantValue{Case: 0})
		start := time.Now()
		fut := call(t, h, inst, "wasi:http/outgoing-handler@0.2#handle", r, cabi.VariantValue{Case: 0}).(cabi.VariantValue).Value.(uint32)
		if took := time.Since(start); i == 16 && took < 200*time.Millisecond {
			t.Errorf("the 17th handle took %v: it did not wait for a slot", took)
		}
		futs = append(futs, fut)
	}
	for i := 0; i < 8; i++ {
		drop(h, inst, "future-incoming-response", futs[i])
	}
	time.Sleep(400 * time.Millisecond)
	for i := 8; i < 17; i++ {
		got := call(t, h, inst, ty+"[method]future-incoming-response.get", futs[i])
		if res := got.(cabi.VariantValue).Value.(cabi.VariantValue).Value.(cabi.VariantValue); res.Case == 0 {
			drop(h, inst, "incoming-response", res.Value.(uint32))
		}
	}
	for i := 8; i < 17; i++ {
		drop(h, inst, "future-incoming-response", futs[i])
	}
	wc.End()
	if wc.held.Load() != 0 {
		t.Errorf("held %d at the end, want 0", wc.held.Load())
	}
	if n := started.Load(); n != 16 {
		t.Errorf("%d sends started, want 16 (the 17th's deadline passed waiting for a slot)", n)
	}
}

// TestAdmitRefusedBodyGivenBack: a request Admit refuses, its body
// written and finished before handle, gives its body's bytes back: ten
// refused 1 MiB POSTs under an 8 MiB limit all write their bodies.
func TestAdmitRefusedBodyGivenBack(t *testing.T) {
	inst, h := newInstance(t)
	wc := &Context{Outbound: func(ctx context.Context, r *wasi.OutboundRequest) (*wasi.OutboundResponse, int) {
		return nil, codeDenied
	}, Admit: func(context.Context, *wasi.OutboundRequest) int { return codeDenied }, MaxHeld: 8 << 20}
	inst.State = wc
	for i := 0; i < 10; i++ {
		r := newReq(t, h, inst)
		b := call(t, h, inst, ty+"[method]outgoing-request.body", r).(cabi.VariantValue).Value.(uint32)
		if _, err := inst.Object(b).(*outgoingBody).Write(make([]byte, 1<<20)); err != nil {
			t.Fatalf("request %d: the body's write failed: %v (held %d)", i, err, wc.held.Load())
		}
		call(t, h, inst, ty+"[static]outgoing-body.finish", b, cabi.VariantValue{Case: 0})
		got := call(t, h, inst, "wasi:http/outgoing-handler@0.2#handle", r, cabi.VariantValue{Case: 0})
		if v := got.(cabi.VariantValue); v.Case != 1 {
			t.Fatalf("request %d: handle %v, want its refusal", i, v)
		}
	}
	wc.End()
	if held := wc.held.Load(); held != 0 {
		t.Errorf("%d bytes held at the end, want 0", held)
	}
}
